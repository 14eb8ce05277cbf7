"""How ``lost`` separates held from lost frames for a network with a calibrated score, on the selection data.

    python benchmarks/lost_threshold.py --weights nanotrack-v2

Tracks training + training-extra (GOT-10k layout) and dev half A (``eval/dev_halves.json``) one pass with
the weights' shipped settings and prints, for candidate thresholds on the score (the network's probability
that the target is in the box), the share of frames flagged lost where the box holds the target (IoU > 0.5)
and where it does not (IoU = 0, or the target absent), and the AUROC of the score between the two. The rule
the shipped ``lost_threshold`` follows: the highest candidate that flags at most 1% of held frames and no frame
of the bundled demo clip (where the target is held throughout).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker import SiamFCTracker, ops  # noqa: E402
from tracker.eval import datasets  # noqa: E402
from tracker.io.video import read_image  # noqa: E402

CANDIDATES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random ``pos`` value exceeds a random ``neg`` one (ties count half)."""
    both = np.concatenate([pos, neg])
    ranks = np.empty(len(both))
    order = both.argsort(kind="mergesort")
    ranks[order] = np.arange(1, len(both) + 1)
    for v in np.unique(both):  # average ranks of ties
        tie = both == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="nanotrack-v2")
    p.add_argument("--shared", default=str(REPO.parent / "shared"))
    args = p.parse_args()
    shared = Path(args.shared)
    half_a = json.loads((REPO / "eval" / "dev_halves.json").read_text())["A"]
    seqs = (datasets.load_got10k(shared / "data" / "training", "train")
            + datasets.load_got10k(shared / "data" / "training-extra", "train")
            + datasets.load_otb(shared / "data" / "dev", half_a))
    t = SiamFCTracker.from_pretrained(args.weights, device="cpu")
    if not t.calibrated:
        print(f"{args.weights}: its score is not a probability; see benchmarks/confidence.py", file=sys.stderr)
        return 2
    scores, ious, absent = [], [], []
    for s in seqs:
        t.init(read_image(s.img_files[0]), s.init_box)
        for i, f in enumerate(s.img_files[1:], 1):
            r = t.update(read_image(f))
            gone = not np.isfinite(s.gt[i]).all() or (s.absence is not None and bool(s.absence[i]))
            scores.append(r.score)
            absent.append(gone)
            ious.append(0.0 if gone else float(ops.iou(np.array([r.box]), s.gt[i:i + 1])[0]))
    score, iou, absent = np.array(scores), np.array(ious), np.array(absent)
    from tracker.apps.demo import demo_clip
    from tracker.io.video import frames as read_frames

    clip, box = demo_clip()
    clip_frames = list(read_frames(str(clip)))
    t.init(clip_frames[0], box)
    clip_scores = np.array([t.update(f).score for f in clip_frames[1:]])
    held, lost = iou > 0.5, (iou == 0) | absent
    print(f"{args.weights} ({t.backend}): {len(seqs)} sequences, {len(score)} frames: {held.sum()} held (IoU > 0.5), "
          f"{lost.sum()} lost (IoU 0 or absent, {absent.sum()} absent)")
    print(f"AUROC of the score, held against lost: {auroc(score[held], score[lost]):.3f}")
    print(f"{'threshold':>10}{'flagged held':>14}{'flagged lost':>14}{'demo clip frames flagged':>26}")
    chosen = None
    for th in CANDIDATES:
        fh, fl, fc = float(np.mean(score[held] < th)), float(np.mean(score[lost] < th)), int((clip_scores < th).sum())
        print(f"{th:>10.2f}{fh:>14.3f}{fl:>14.3f}{fc:>26d}")
        if fh <= 0.01 and fc == 0:
            chosen = th
    print(f"rule (the highest candidate flagging at most 1% of held frames and none of the demo clip's): "
          f"lost_threshold {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
