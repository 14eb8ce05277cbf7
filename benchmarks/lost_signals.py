"""Which per-frame signal tells absent targets from held ones? (issue 11: a score that says "lost")

    python benchmarks/lost_signals.py --root runs/stress_dev --half A     # a stress set (siamtrack eval stress)

Tracks every sequence of the half (a stress set's sequence belongs to the dev half of its source)
with siamfc-effnet (the default when this was measured, 2026-11-27), short-term, its PSR score off, and
records per frame, from the chosen scale's raw response: the score (peak / first frame's peak, what
``lost`` read then), APCE (average peak-to-correlation
energy, LMCF's occlusion cue: (max - min)^2 / mean((r - min)^2)), the peak-to-sidelobe ratio
(PSR: (max - mean) / std outside 5 x 5 cells around the peak), each also relative to its mean over
the first 10 tracked frames, and products with the score. Prints, per signal, the ROC AUC of telling
absent frames (ground truth NaN) from held ones (IoU > 0.5): 0.5 is chance, 1.0 perfect.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker.core.siamfc import SiamFCTracker  # noqa: E402
from tracker.eval import datasets, metrics  # noqa: E402
from tracker.io.video import read_image  # noqa: E402


def apce(r: np.ndarray) -> float:
    lo = r.min()
    return float((r.max() - lo) ** 2 / max(np.mean((r - lo) ** 2), 1e-12))


def psr(r: np.ndarray, exclude: int = 2) -> float:
    y, x = np.unravel_index(int(np.argmax(r)), r.shape)
    mask = np.ones_like(r, dtype=bool)
    mask[max(0, y - exclude):y + exclude + 1, max(0, x - exclude):x + exclude + 1] = False
    side = r[mask]
    return float((r.max() - side.mean()) / max(side.std(), 1e-12))


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random ``pos`` value < a random ``neg`` value), ties counting half: how well a LOW signal flags
    ``pos`` (absent) frames against ``neg`` (held) ones."""
    lt = (pos[:, None] < neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(lt + 0.5 * eq)


def run(root: Path, names: list[str]) -> dict[str, list[np.ndarray]]:
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", backend="torch", config={"psr_score": False})
    seen: dict = {}
    orig = t._peak_host

    def spy(resp, *rest):  # resp: the raw (S, R, R) responses on the host
        out = orig(resp, *rest)
        seen["r"] = resp[out[0]]
        return out

    t._peak_host = spy
    rec: dict[str, list[np.ndarray]] = {k: [] for k in ("score", "apce", "psr", "iou", "absent")}
    for seq in datasets.load_otb(root, names):
        frames = [read_image(f) for f in seq.img_files]
        t.init(frames[0], seq.init_box)
        cols = {k: [] for k in ("score", "apce", "psr")}
        boxes = []
        for f in frames[1:]:
            res = t.update(f)
            r = seen["r"]
            cols["score"].append(res.score)
            cols["apce"].append(apce(r))
            cols["psr"].append(psr(r))
            boxes.append(res.box)
        for k, v in cols.items():
            rec[k].append(np.array(v))
        gt = seq.gt[1:]
        rec["absent"].append(~np.isfinite(gt).all(axis=1))
        rec["iou"].append(metrics.overlaps(np.array(boxes), gt))
    return rec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/stress_dev", help="stress set (OTB layout with stress.json)")
    p.add_argument("--half", choices=["A", "B"], required=True)
    args = p.parse_args()
    root = Path(args.root)
    manifest = json.loads((root / "stress.json").read_text())["sequences"]
    half = set(json.loads((REPO / "eval" / "dev_halves.json").read_text())[args.half])
    names = sorted(n for n, m in manifest.items() if m["source"] in half)
    rec = run(root, names)
    signals = {}
    for k in ("score", "apce", "psr"):
        signals[k] = rec[k]
        signals[k + " / first 10"] = [v / max(np.mean(v[:10]), 1e-12) for v in rec[k]]
    signals["score * apce / first 10"] = [s * a for s, a in zip(rec["score"], signals["apce / first 10"])]
    signals["score * sqrt(apce / first 10)"] = [s * np.sqrt(a) for s, a in zip(rec["score"], signals["apce / first 10"])]
    signals["score * psr / first 10"] = [s * a for s, a in zip(rec["score"], signals["psr / first 10"])]
    absent = np.concatenate(rec["absent"])
    iou = np.nan_to_num(np.concatenate(rec["iou"]), nan=0.0)
    held = ~absent & (iou > 0.5)
    print(f"half {args.half}: {len(names)} sequences, {len(absent)} frames, absent {absent.sum()}, held {held.sum()}")
    for name, vals in signals.items():
        v = np.concatenate(vals)
        print(f"{name:32s} ROC AUC absent vs held {roc_auc(v[absent], v[held]):.3f}   "
              f"median held {np.median(v[held]):.3f} absent {np.median(v[absent]):.3f}")


if __name__ == "__main__":
    main()
