"""Which per-frame signal says the target is gone, for the tracking-trained default? (issue 30: a ``lost`` that means it)

    siamtrack eval stress --root ../shared/data/dev --out runs/stress_dev --seed 0
    python benchmarks/lost_verify.py --root runs/stress_dev [--weights nanotrack-v2] [--half A|B]

Tracks every sequence of a stress set (targets painted out or panned out of view; NaN ground truth while absent)
one pass, short-term, with the weights' shipped settings, and records per frame:

* ``score``: the network's probability that the target is in the box (what ``lost`` reads today);
* ``verify``: the cosine similarity between the first frame's exemplar kernel and the kernel of an exemplar crop cut
  at the current box (one more exemplar embedding per frame): does the box still look like the target?

Frames are labelled *held* (IoU > 0.5), *absent* (the ground truth says the target is not in the picture) or *lost*
(present, IoU = 0). Prints, per signal, the AUROC between held and absent frames and, for thresholds, the share of
held and of absent frames it would flag.
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

sys.path.insert(0, str(REPO / "benchmarks"))
from lost_threshold import auroc  # noqa: E402


def kernel_at(t: SiamFCTracker, frame: np.ndarray) -> np.ndarray:
    """The exemplar kernel of a crop cut at the tracker's current box (as ``init`` cuts the first one), flattened
    and unit-normalised."""
    cfg = t.config
    z_sz = ops.context_size(*t.target_sz, cfg.context)
    k = t.net.embed_exemplar(t._crops(frame, None, [z_sz], cfg.exemplar_sz))
    k = np.asarray(k.detach().cpu().numpy() if hasattr(k, "detach") else k, dtype=np.float64).ravel()
    return k / max(np.linalg.norm(k), 1e-12)


def kernel_around(t: SiamFCTracker, frame: np.ndarray, centre: np.ndarray, size: np.ndarray) -> np.ndarray:
    """:func:`kernel_at` for a box of ``size`` (w, h) centred at ``centre``."""
    cfg = t.config
    z_sz = ops.context_size(*size, cfg.context)
    k = t.net.embed_exemplar(t._cut(frame, None, [t._plan([z_sz], centre)], cfg.exemplar_sz))
    k = np.asarray(k.detach().cpu().numpy() if hasattr(k, "detach") else k, dtype=np.float64).ravel()
    return k / max(np.linalg.norm(k), 1e-12)


def ridge_verifier(t: SiamFCTracker, frame: np.ndarray, box, rng: np.random.Generator, lam: float = 0.1):
    """A per-target linear classifier on exemplar kernels, trained on the first frame: positives the target
    (shifted by up to 10% and scaled by up to 10%), negatives boxes of its size elsewhere in the frame (IoU < 0.2).
    Returns ``f(kernel) -> score`` (about 1 on the target, 0 elsewhere)."""
    x, y, w, h = box
    H, W = frame.shape[:2]
    c, size = np.array([x + w / 2, y + h / 2]), np.array([w, h])
    pos = [kernel_around(t, frame, c, size)]
    for _ in range(11):
        pos.append(kernel_around(t, frame, c + rng.uniform(-0.1, 0.1, 2) * size, size * rng.uniform(0.9, 1.1)))
    neg = []
    for _ in range(200):
        if len(neg) == 36:
            break
        cc = rng.uniform([0, 0], [W, H])
        if ops.iou(np.array([[*(cc - size / 2), *size]]), np.array([box]))[0] < 0.2:
            neg.append(kernel_around(t, frame, cc, size))
    X = np.array(pos + neg)
    yv = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    mean = X.mean(axis=0)
    Xc = X - mean
    alpha = np.linalg.solve(Xc @ Xc.T + lam * np.eye(len(X)), yv - yv.mean())
    wv, b = Xc.T @ alpha, yv.mean()
    return lambda k: float((k - mean) @ wv + b)


def run(root: Path, weights: str, sequences: list[str] | None, judge: str | None = None) -> dict[str, np.ndarray]:
    out: dict[str, list] = {"score": [], "verify": [], "ridge": [], "judge": [], "label": [], "seq": []}
    for seq in datasets.load_otb(root, sequences):
        t = SiamFCTracker.from_pretrained(weights, device="cpu")
        frames = (read_image(f) for f in seq.img_files)
        first = next(frames)
        t.init(first, seq.init_box)
        other = None
        if judge:  # a second network, started on the same first box, scores the first one's box on every frame
            other = SiamFCTracker.from_pretrained(judge, device="cpu")
            other.init(first, seq.init_box)
        k0 = kernel_at(t, first)
        ridge = ridge_verifier(t, first, seq.init_box, np.random.default_rng(0))
        for i, frame in enumerate(frames, 1):
            r = t.update(frame)
            gt = seq.gt[i]
            if np.isnan(gt).any():
                label = "absent"
            else:
                iou = float(ops.iou(np.array([r.box]), gt[None])[0])
                label = "held" if iou > 0.5 else "lost" if iou == 0 else "partial"
            out["score"].append(r.score)
            k = kernel_at(t, frame)
            out["verify"].append(float(k @ k0))
            out["ridge"].append(ridge(k))
            out["judge"].append(other.score_at(frame, r.box) if other is not None else np.nan)
            out["label"].append(label)
            out["seq"].append(seq.name)
    return {k: np.array(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="runs/stress_dev", help="a stress set (siamtrack eval stress)")
    p.add_argument("--weights", default="nanotrack-v2")
    p.add_argument("--half", choices=["A", "B"], help="only the stress sequences of one dev half (eval/dev_halves.json)")
    p.add_argument("--out", help="also save the per-frame signals here (.npz)")
    p.add_argument("--judge", help="also a second network's score of the box (e.g. siamfc-effnet: its peak relative "
                                   "to the first frame's, at the box's centre)")
    args = p.parse_args()
    root = Path(args.root)
    sequences = None
    if args.half:
        half = set(json.loads((REPO / "eval" / "dev_halves.json").read_text())[args.half])
        sequences = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name.rsplit("-", 1)[0] in half)
    r = run(root, args.weights, sequences, args.judge)
    if args.out:
        np.savez(args.out, **r)
    held, absent, lost = (r["label"] == k for k in ("held", "absent", "lost"))
    print(f"{args.weights} on {root}{' half ' + args.half if args.half else ''}: {len(r['label'])} frames, "
          f"{held.sum()} held, {absent.sum()} absent, {lost.sum()} lost while present")
    for name in ("score", "verify", "ridge") + (("judge",) if args.judge else ()):
        v = r[name]
        print(f"\n{name}: AUROC held vs absent {auroc(v[held], v[absent]):.3f}, held vs absent+lost "
              f"{auroc(v[held], v[absent | lost]):.3f}; median held {np.median(v[held]):.3f}, absent "
              f"{np.median(v[absent]):.3f}")
        print(f"  {'threshold':>9s} {'held flagged':>12s} {'absent flagged':>14s} {'lost flagged':>12s}")
        for q in (0.01, 0.02, 0.05, 0.10):  # thresholds at quantiles of the held frames
            thr = float(np.quantile(v[held], q))
            print(f"  {thr:9.3f} {np.mean(v[held] < thr):12.3f} {np.mean(v[absent] < thr):14.3f} "
                  f"{np.mean(v[lost] < thr) if lost.any() else float('nan'):12.3f}")


if __name__ == "__main__":
    main()
