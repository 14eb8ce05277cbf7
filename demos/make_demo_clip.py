"""Render the demo clip that ships with the package: ``tracker/data/demo.mp4`` and
``tracker/data/demo.json`` (its initial box, ground truth and how it was made).

The clip is synthetic (:func:`tracker.synthetic.make_sequence`): a textured target that
moves along a smooth path and changes scale over a textured background, so it carries
no third-party data. Run from the repository root::

    python demos/make_demo_clip.py            # writes tracker/data/demo.{mp4,json}
    python demos/make_demo_clip.py --out-dir /tmp/clip
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from tracker.synthetic import make_sequence
from tracker.video import VideoSink

PARAMS = dict(n_frames=150, size=(480, 360), target=(64, 48), scale_range=(0.75, 1.35), seed=7)
FPS = 25.0


def make_clip(out_dir: Path) -> tuple[Path, Path]:
    """Write ``demo.mp4`` and ``demo.json`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames, gt = make_sequence(**PARAMS)
    video = out_dir / "demo.mp4"
    with VideoSink(video, fps=FPS) as sink:
        for f in frames:
            sink.write(f)
    meta = {
        "video": video.name,
        "frames": len(frames),
        "size": list(PARAMS["size"]),
        "fps": FPS,
        "init_box": [round(float(v), 2) for v in gt[0]],
        "box_format": "x,y,w,h in pixels, 0-based",
        "source": "synthetic: tracker.synthetic.make_sequence, rendered by demos/make_demo_clip.py",
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in PARAMS.items()},
        # Must stay the last key: make_clip writes it one box per line.
        "groundtruth": np.round(gt, 2).tolist(),
    }
    meta_path = out_dir / "demo.json"
    tmp = meta_path.with_suffix(".json.tmp")
    text = json.dumps(meta, indent=1)
    # One ground-truth box per line keeps the file short and readable.
    boxes = ",\n  ".join(json.dumps(b) for b in meta["groundtruth"])
    text = text[: text.index('"groundtruth"')] + '"groundtruth": [\n  ' + boxes + "\n ]\n}"
    tmp.write_text(text + "\n")
    os.replace(tmp, meta_path)
    return video, meta_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "tracker" / "data",
                    help="where to write demo.mp4 and demo.json (default: tracker/data)")
    args = ap.parse_args(argv)
    video, meta = make_clip(args.out_dir)
    print(f"wrote {video} ({video.stat().st_size / 1e6:.2f} MB) and {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
