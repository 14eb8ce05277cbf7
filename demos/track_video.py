"""Track an object in a recorded video (or image folder, glob, stream): same as ``siamtrack track``.

    python demos/track_video.py                      # the bundled demo clip -> ./siamtrack_demo.mp4
    python demos/track_video.py clip.mp4 --box 10,20,50,40 --output out.mp4 --boxes out.txt
"""
import sys

from tracker.apps.demo import main

if __name__ == "__main__":
    sys.exit(main(command="track"))
