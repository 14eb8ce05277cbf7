"""Accuracy and the meaning of ``lost`` for one weights file, as ``from_pretrained`` loads it.

    python benchmarks/confidence.py --weights siamfc-effnet                 # all of ../shared/data/dev
    python benchmarks/confidence.py --weights siamfc-effnet --half B        # one half of eval/dev_halves.json

Prints success AUC (OTB one-pass) and how the ``lost`` flag agrees with the truth: the share of
frames flagged lost while the box holds the target (IoU > 0.5) and the share of frames where the
box has lost it (IoU = 0) that are flagged lost, per sequence and overall; then the frames flagged
lost on the bundled demo clip (where the target is held throughout).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker.apps.bench import hardware  # noqa: E402
from tracker.core.siamfc import SiamFCTracker  # noqa: E402
from tracker.eval import datasets, metrics  # noqa: E402
from tracker.io.video import read_image  # noqa: E402
from tracker.training.select import evaluate_tracker, lost_rates  # noqa: E402


def success_auc(ious: np.ndarray) -> float:
    """OTB success AUC of one sequence from the IoUs of frames 2.. (frame 1 counts as IoU 1, frames
    without ground truth are left out), as :func:`tracker.eval.metrics.otb_sequence` scores it."""
    iou = np.concatenate([[1.0], ious[np.isfinite(ious)]])
    return float(np.mean(np.greater(iou[:, None], metrics.SUCCESS_THRESHOLDS[None])))


def demo_clip_lost(tracker: SiamFCTracker) -> tuple[int, int]:
    """(frames flagged lost, frames tracked) on the bundled demo clip, from its start box."""
    from tracker.apps.demo import demo_clip
    from tracker.io.video import frames as read_frames

    clip, box = demo_clip()
    n = lost = 0
    for i, f in enumerate(read_frames(str(clip))):
        if i == 0:
            tracker.init(f, box)
            continue
        n += 1
        lost += tracker.update(f).lost
    return lost, n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="weights name or path (default: the shipped default)")
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "dev"), help="OTB-layout sequences")
    p.add_argument("--half", choices=["A", "B"], default=None, help="only this half of eval/dev_halves.json")
    p.add_argument("--config", default=None, metavar="JSON", help="tracking parameter overrides (a JSON object)")
    args = p.parse_args(argv)
    names = json.loads((REPO / "eval" / "dev_halves.json").read_text())[args.half] if args.half else None
    seqs = datasets.load_otb(args.root, names)
    frames = [[read_image(f) for f in s.img_files] for s in seqs]
    tracker = SiamFCTracker.from_pretrained(args.weights, device="cpu", config=json.loads(args.config or "{}"),
                                           backend="torch")
    print(hardware())
    print(f"{tracker.name} on {args.root}" + (f" half {args.half}" if args.half else "") + f": {tracker.config}")
    auc, ious, scores = evaluate_tracker(tracker, seqs, frames)
    thr = tracker.config.lost_threshold
    print(f"{'sequence':18s} {'frames':>6s} {'AUC':>6s} {'lost|held':>10s} {'lost|IoU=0':>11s}")
    for s, iou, sc in zip(seqs, ious, scores):
        fl, ca = lost_rates([iou], [sc], thr)
        print(f"{s.name:18s} {len(iou) + 1:6d} {success_auc(iou):6.3f} {fl:10.1%} {ca:11.1%}")
    fl, ca = lost_rates(ious, scores, thr)
    print(f"{'overall':18s} {sum(len(i) + 1 for i in ious):6d} {auc:6.3f} {fl:10.1%} {ca:11.1%}   (lost_threshold {thr})")
    lost, n = demo_clip_lost(tracker)
    print(f"bundled demo clip: {lost} of {n} frames flagged lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
