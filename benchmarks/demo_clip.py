"""What a first run shows: each model on the bundled clip (Big Buck Bunny, ``tracker/data/demo.json``), its IoU with
the hand-drawn extents of the rabbit at the annotated frames, the lowest score and the frames flagged lost.

    python benchmarks/demo_clip.py                                   # nanotrack-v2 (default), nanotrack-v3, siamfc-effnet
    python benchmarks/demo_clip.py --models nanotrack-v2:preset=fast
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from tracker import SiamFCTracker
from tracker.apps.demo import DATA_DIR
from tracker.core import ops
from tracker.core.config import parse_model_spec
from tracker.io.video import open_source
from tracker.networks.weights import expand_preset


def run(spec: str) -> dict:
    """Track the bundled clip with ``spec`` (``NAME[:key=value,...]``): IoU per annotated frame, lowest score, lost frames."""
    meta = json.loads((DATA_DIR / "demo.json").read_text())
    checkpoints = {int(k): v for k, v in meta["checkpoints"].items()}
    name, overrides = parse_model_spec(spec)
    t = SiamFCTracker.from_pretrained(name, device="cpu", config=expand_preset(name, overrides) or None)
    ious, scores, lost = {}, [], 0
    with open_source(str(DATA_DIR / meta["video"])) as src:
        for i, frame in enumerate(src):
            if i == 0:
                t.init(frame, meta["init_box"])
                continue
            r = t.update(frame)
            scores.append(r.score)
            lost += r.lost
            if i in checkpoints:
                ious[i] = float(ops.iou(np.array([r.box]), np.array([checkpoints[i]]))[0])
    return {"model": spec, "iou": ious, "min_score": min(scores), "lost_frames": lost}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["nanotrack-v2", "nanotrack-v3", "siamfc-effnet"])
    args = p.parse_args()
    for spec in args.models:
        r = run(spec)
        ious = " / ".join(f"{v:.2f}" for v in r["iou"].values())
        print(f"{spec}: IoU at frames {' / '.join(map(str, r['iou']))}: {ious}; lowest score {r['min_score']:.2f}, "
              f"{r['lost_frames']} frame(s) flagged lost")


if __name__ == "__main__":
    main()
