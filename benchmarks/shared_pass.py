"""Accuracy of the shared backbone pass (``MultiTracker(shared=True)``) against batched crops.

    python benchmarks/shared_pass.py --half A --neighbours 7          # one half of eval/dev_halves.json
    python benchmarks/shared_pass.py --neighbours 7 --out runs/shared_pass.json

Each dev sequence is tracked as a several-target stream, as ``siamtrack bench --targets`` times it:
its ground-truth target and ``--neighbours`` boxes of its size spread over the frame
(:func:`tracker.bench_multi.spread_boxes`), all added on the first frame. Only the real target is
scored (OTB success AUC and precision at 20 px, :mod:`tracker.eval.metrics`), per mode: batched
crops (the boxes of one tracker per target) and the shared pass, with the image pyramid and with
the feature pyramid. Nothing here was tuned: the shared pass has no parameter. Runs on ONNX
Runtime where it is installed (faster), else PyTorch; results are kept per sequence in ``--out``
(written atomically), so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker.bench import hardware  # noqa: E402
from tracker.bench_multi import spread_boxes  # noqa: E402
from tracker.eval import datasets, metrics  # noqa: E402
from tracker.multi import MultiTracker  # noqa: E402
from tracker.siamfc import SiamFCTracker  # noqa: E402
from tracker.video import read_image  # noqa: E402

MODES = {"image pyramid, batched": ({}, False), "image pyramid, shared pass": ({}, True),
         "feature pyramid, batched": ({"feature_pyramid": True}, False),
         "feature pyramid, shared pass": ({"feature_pyramid": True}, True)}


def track(base: SiamFCTracker, shared: bool, frames: list[np.ndarray], gt: np.ndarray, neighbours: int) -> np.ndarray:
    """The real target's boxes (N, 4) over ``frames``, tracked with ``neighbours`` spread boxes beside it."""
    multi = MultiTracker(base, shared=shared)
    size = (frames[0].shape[1], frames[0].shape[0])
    ids = [multi.add(frames[0], b) for b in spread_boxes(gt[0], size, neighbours + 1)]
    return np.array([gt[0]] + [multi.update(f)[ids[0]].box for f in frames[1:]])


def _write(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "dev"), help="OTB-layout sequences")
    p.add_argument("--half", choices=["A", "B"], default=None, help="only this half of eval/dev_halves.json")
    p.add_argument("--neighbours", type=int, default=7, help="spread boxes tracked beside the real target")
    p.add_argument("--out", default="runs/shared_pass.json", help="per-sequence results (resumed when it exists)")
    args = p.parse_args(argv)
    halves = json.loads((REPO / "eval" / "dev_halves.json").read_text())
    names = halves[args.half] if args.half else None
    try:
        import onnxruntime  # noqa: F401
        backend = "onnxruntime"
    except ImportError:
        backend = "torch"
    print(hardware())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(out.read_text()) if out.exists() else {}
    key = f"neighbours={args.neighbours}"
    done.setdefault(key, {})
    bases = {m: SiamFCTracker.from_pretrained(device="cpu", backend=backend, config=cfg) for m, (cfg, _) in MODES.items()}
    for seq in datasets.load_otb(args.root, names):
        if all(m in done[key].get(seq.name, {}) for m in MODES):
            continue
        frames = [read_image(f) for f in seq.img_files]
        row = done[key].setdefault(seq.name, {})
        for mode, (_, shared) in MODES.items():
            boxes = track(bases[mode], shared, frames, seq.gt, args.neighbours)
            r = metrics.otb_sequence(boxes, seq.gt)
            row[mode] = {"auc": r.success, "prec": r.precision}
            print(f"{seq.name:18s} {mode:30s} AUC {row[mode]['auc']:.3f}", flush=True)
        _write(out, done)
    table = {h: halves[h] for h in ("A", "B")}
    print(f"\nsuccess AUC of the real target beside {args.neighbours} spread boxes ({backend}); mean over sequences")
    print(f"{'mode':30s} " + " ".join(f"{'half ' + h:>8s}" for h in table) + f" {'all dev':>8s}")
    for mode in MODES:
        cells = []
        for seqs in [*table.values(), [s for v in table.values() for s in v]]:
            got = [done[key][s][mode]["auc"] for s in seqs if mode in done[key].get(s, {})]
            cells.append(f"{np.mean(got):8.3f}" if len(got) == len(seqs) else f"{'-':>8s}")
        print(f"{mode:30s} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
