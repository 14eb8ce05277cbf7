"""How much of a tracker's loss is the box's size? (reads saved results; runs no tracker)

    python benchmarks/size_error.py --results eval/results/dev/results/siamfc-effnet@onnxruntime --half B

For each sequence of ``--root`` (OTB layout; optionally one half of eval/dev_halves.json), from the
tracker's result file and the ground truth: the share of frames where the box overlaps the target (IoU >
0.3), on those the median of log(box side / target side) (sides as sqrt(w h): < 0 too small, > 0 too
large) and its median absolute deviation, the target's size range over the sequence, and three success
AUCs (OTB one-pass): the tracker's boxes; the same centres and areas with the ground truth's aspect ratio;
the same centres with the ground truth's width and height. The last two are upper bounds on what a better
aspect ratio, or a better size, could gain with the centres kept.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker.core import ops  # noqa: E402
from tracker.eval import datasets, metrics  # noqa: E402
from tracker.eval.report import load_boxes  # noqa: E402


def with_size(boxes: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``boxes`` (N, 4) x, y, w, h with their centres kept and sides ``w``, ``h`` (N,)."""
    c = ops.xywh_to_cxcywh(boxes)
    return ops.cxcywh_to_xywh(np.column_stack([c[:, :2], w, h]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True, help="a tracker's OTB results folder (one <sequence>.txt each)")
    p.add_argument("--root", default="../shared/data/dev", help="OTB-layout sequences with ground truth")
    p.add_argument("--half", choices=["A", "B"], help="only this half of eval/dev_halves.json")
    args = p.parse_args()
    names = json.loads((REPO / "eval" / "dev_halves.json").read_text())[args.half] if args.half else None
    auc = {"boxes": [], "gt aspect": [], "gt size": []}
    print(f"{'sequence':18s} held  log side err (median, MAD)  target size range   AUC: boxes  gt aspect  gt size")
    for seq in datasets.load_otb(args.root, names):
        b, g = load_boxes(Path(args.results) / f"{seq.name}.txt", seq), seq.gt
        ok = np.isfinite(g).all(axis=1)  # frames where the target is present
        b, g = b[ok], g[ok]
        area = b[:, 2] * b[:, 3]
        aspect = g[:, 2] / g[:, 3]
        variants = {"boxes": b, "gt aspect": with_size(b, np.sqrt(area * aspect), np.sqrt(area / aspect)),
                    "gt size": with_size(b, g[:, 2], g[:, 3])}
        for k, v in variants.items():
            auc[k].append(metrics.otb_sequence(v, g, np.empty(0)).success)
        held = metrics.overlaps(b, g) > 0.3
        err = 0.5 * np.log(area / (g[:, 2] * g[:, 3]))[held]
        side = np.sqrt(g[:, 2] * g[:, 3] / (g[0, 2] * g[0, 3]))
        med = float(np.median(err)) if len(err) else float("nan")
        mad = float(np.median(np.abs(err - med))) if len(err) else float("nan")
        print(f"{seq.name:18s} {held.mean():4.2f}  {med:+.3f} ({mad:.3f})              {side.min():.2f}-{side.max():.2f}x"
              f"         {auc['boxes'][-1]:.3f}      {auc['gt aspect'][-1]:.3f}    {auc['gt size'][-1]:.3f}")
    print("mean success AUC: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in auc.items()))


if __name__ == "__main__":
    main()
