"""The comparison table and the selection score from saved evaluation results (no tracking run here).

    python eval/selection.py --results eval/results --trackers nanotrack-v2@onnxruntime nano

Reads ``RESULTS/training`` and ``RESULTS/training-extra`` (GOT-10k layout, ``siamtrack eval got10k --split
train``) and ``RESULTS/dev`` (OTB layout), as ``eval/run_compare.sh`` writes them, and prints per tracker:
AO on training and on training-extra, success AUC on dev half A and half B (``eval/dev_halves.json``), and
the selection score: the frame-weighted mean of AO(training), AO(training-extra) and AUC(dev half A), the
data parameters are chosen on (half B is held out). ``--json PATH`` also writes the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker.eval import datasets, report  # noqa: E402
from tracker.eval.runner import Layout  # noqa: E402


def frames(sequences: list) -> int:
    """Frames that count in a score: every frame but the first."""
    return sum(len(s) - 1 for s in sequences)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="eval/results", help="folder holding training/, training-extra/, dev/")
    p.add_argument("--shared", default="../shared", help="the shared data folder")
    p.add_argument("--trackers", nargs="+", required=True, help="result folder names (labels)")
    p.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = p.parse_args(argv)
    shared, results = Path(args.shared), Path(args.results)
    halves = json.loads((REPO / "eval" / "dev_halves.json").read_text())
    sets = {name: datasets.load_got10k(shared / "data" / name, "train") for name in ("training", "training-extra")}
    dev = {h: datasets.load_otb(shared / "data" / "dev", halves[h]) for h in ("A", "B")}
    weights = {"training": frames(sets["training"]), "training-extra": frames(sets["training-extra"]),
               "A": frames(dev["A"])}
    rows = {}
    for t in args.trackers:
        row = {}
        for name, seqs in sets.items():
            row[name] = report.score_got10k(seqs, Layout("got10k", results / name / "results"), [t])[t]["overall"].ao
        for h, seqs in dev.items():
            row[h] = report.score_otb(seqs, Layout("otb", results / "dev" / "results"), [t])[t]["overall"].success
        row["selection"] = sum(row[k] * w for k, w in weights.items()) / sum(weights.values())
        rows[t] = row
    print(f"selection score = frame-weighted mean of AO training ({weights['training']} frames), AO training-extra "
          f"({weights['training-extra']}) and AUC dev half A ({weights['A']}); dev half B held out")
    print(f"{'tracker':<34}{'AO training':>12}{'AO extra':>10}{'dev A':>8}{'dev B':>8}{'selection':>11}")
    for t, r in sorted(rows.items(), key=lambda kv: -kv[1]["selection"]):
        print(f"{t:<34}{r['training']:>12.3f}{r['training-extra']:>10.3f}{r['A']:>8.3f}{r['B']:>8.3f}"
              f"{r['selection']:>11.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"frames": weights, "trackers": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
