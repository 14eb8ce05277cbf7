"""A design tried for long-term mode and not kept: check the box with a whole-frame search on frames
whose score is low but not lost (docs/measurements.md, "Long-term: options tried and left off").

Long-term mode (``long_term=True``) searches the whole frame only on lost frames. Here, a frame that is
not lost but scores below ``--v`` also runs that search (:meth:`SiamFCTracker._search_frame`), and the
box moves to the whole-frame peak when that peak scores at least ``--r`` (``redetect_threshold``) and
``--k`` times the local raw peak, and lies more than half the box's longer side away. Implemented by
wrapping the tracker's long-term steps, so it measures exactly the shipped search plus the check.

    python benchmarks/low_score_check.py --half A --set stress --v 0.2 --r 0.3 --k 2.0
    python benchmarks/low_score_check.py --half A --set plain            # without the check (--v 0)

``--set stress`` reads the stress set (``siamtrack eval stress --root ../shared/data/dev --out
runs/stress_dev --seed 0``) and prints the long-term F-score; both sets print the success AUC on
frames where the target is present. Half A chooses, half B is held out (``eval/dev_halves.json``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tracker.siamfc as ts  # noqa: E402
from tracker import SiamFCTracker  # noqa: E402
from tracker.eval import datasets, metrics  # noqa: E402
from tracker.video import read_image  # noqa: E402


def with_check(v: float, k: float, min_dist: float = 0.5) -> None:
    """Wrap :class:`SiamFCTracker`'s long-term steps with the low-score check (see the module's docstring)."""
    long_term, search_frame, sharpness = ts.SiamFCTracker._long_term, ts.SiamFCTracker._search_frame, \
        ts.SiamFCTracker._sharpness

    def _sharpness(self, psr):
        self._last_sharp = sharpness(self, psr)  # the score is raw peak x this: the local raw peak is score / this
        return self._last_sharp

    def _long_term(self, score, lost):
        r = long_term(self, score, lost)
        self._checking = not lost and score < v
        if self._checking:
            self.state = ts.SEARCHING  # makes _after run the whole-frame search on this frame
        return r

    def _search_frame(self, frame, img, local):
        if not getattr(self, "_checking", False):
            return search_frame(self, frame, img, local)
        self._checking = False
        before = self.center.copy()
        r = search_frame(self, frame, img, local)
        near = np.linalg.norm(self.center - before) < min_dist * max(self.target_sz)
        weak = r.score < k * local.score / max(self._last_sharp, 1e-6)
        if r.state != ts.REACQUIRED or near or weak:
            self.center = before
            self.state, self._lost_run = ts.TRACKING, 0
            return local
        return r

    ts.SiamFCTracker._sharpness, ts.SiamFCTracker._long_term, ts.SiamFCTracker._search_frame = \
        _sharpness, _long_term, _search_frame


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--half", default="A", choices=["A", "B"])
    ap.add_argument("--set", default="stress", choices=["stress", "plain"])
    ap.add_argument("--stress-root", default=str(ROOT / "runs" / "stress_dev"))
    ap.add_argument("--dev-root", default=str(ROOT.parent / "shared" / "data" / "dev"))
    ap.add_argument("--v", type=float, default=0.0, help="check frames scoring below this (0: no check)")
    ap.add_argument("--r", type=float, default=None, help="redetect_threshold (default: the shipped .json's)")
    ap.add_argument("--k", type=float, default=0.0, help="the whole-frame peak must be this many times the local one")
    args = ap.parse_args()
    names = json.loads((ROOT / "eval" / "dev_halves.json").read_text())[args.half]
    root = Path(args.stress_root if args.set == "stress" else args.dev_root)
    if not root.is_dir():
        sys.exit(f"low_score_check: {root} not found")
    if args.set == "stress":
        names = [f"{n}-{kind}" for n in names for kind in ("occ", "oov") if (root / f"{n}-{kind}").is_dir()]
    if args.v > 0:
        with_check(args.v, args.k)
    cfg = {"long_term": True} | ({} if args.r is None else {"redetect_threshold": args.r})
    tracker = SiamFCTracker.from_pretrained(backend="onnxruntime", config=cfg)
    lt, present_auc, per = [], [], {}
    for s in datasets.load_otb(str(root), names):
        frames = [read_image(p) for p in s.img_files]
        tracker.init(frames[0], s.init_box)
        results = [tracker.update(f) for f in frames[1:]]
        boxes = np.array([s.init_box] + [r.box for r in results])
        conf = np.array([1.0] + [r.score for r in results])
        present = ~np.isnan(s.gt).any(axis=1)
        lt.append(metrics.long_term_sequence(boxes, s.gt, conf))
        present_auc.append(metrics.otb_sequence(boxes[present], s.gt[present]))
        per[s.name] = round(present_auc[-1].success, 3)
    print(f"{args.set} half {args.half}, V {args.v} R {tracker.config.redetect_threshold} K {args.k}: "
          f"F-score {metrics.long_term_overall(lt).f_score:.3f}, success AUC (present) "
          f"{metrics.otb_overall(present_auc).success:.3f}", per)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
