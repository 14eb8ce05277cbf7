"""The tracker core: tracking parameters, crops and boxes, the frame loop (one target, several), long-term search."""
