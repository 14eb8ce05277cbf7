"""Live tracking from a camera: same as ``siamtrack webcam``.

    python demos/webcam.py            # camera 0: drag a box around the target, then ENTER
    python demos/webcam.py 1 --output live.mp4
"""
import sys

from tracker.apps.demo import main

if __name__ == "__main__":
    sys.exit(main(command="webcam"))
