"""Input and output: video sources and writer, box files, progress bars, adapters to other trackers' interfaces."""
