"""The networks: the registry, SiamFC's backbones and heads, NanoTrack v2/v3, and finding and loading weights."""
