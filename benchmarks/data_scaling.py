"""Does accuracy grow with the amount of labelled video? Subsets of the GOT-10k-layout training sets for stage 1.

Writes, under ``--out``, a GOT-10k-layout copy of each ``--data`` root holding a random share of its sequences
(symbolic links to the sequence folders, read in place: nothing is copied), nested (a smaller share's sequences
are all in every larger one), the same for every run with the same ``--seed``; then prints the commands that train
stage 1 on each share as the model card's run B and score it (``--run`` runs them). The figures (2026-11-28):
docs/experiments.md, 2026-11-28.

    python benchmarks/data_scaling.py --out runs/data_scaling --percent 25 50            # subsets + commands
    python benchmarks/data_scaling.py --out runs/data_scaling --percent 25 50 --run      # also train and score
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DATA = [SHARED / "training", SHARED / "training-extra"]
STILLS = [SHARED / "stills" / "raccoon", SHARED / "stills" / "voc_indoor"]
# Stage 1 as the model card's run B: the frozen trunk, its schedule over 4,000 steps, the step-2,000 snapshot.
STAGE1 = ("--model effnet-lite0 --pretrained --box-head --steps 4000 --max-steps 2000 --batch-size 16 --lr 1e-2 1e-4 "
          "--warmup 200 --shift 64 --scale-jitter 0.5 --negatives 0.2 --max-gap 15 --snapshot-every 1000 --threads 2 "
          "--seed 0")
SETTINGS = ('{"instance_sz": 193, "response_up": 8, "box_head": false, "scale_every": 2, "psr_score": true, '
            '"scale_num": 3, "window_influence": 0.1, "scale_penalty": 0.9745, "scale_step": 1.0375, "scale_lr": 0.59}')


def orders(roots: list[Path], seed: int) -> list[tuple[list[str], np.ndarray]]:
    """Each root's train sequences (list.txt order) and one random permutation of them, drawn in turn from one
    generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for root in roots:
        names = (root / "train" / "list.txt").read_text().split()
        if not names:
            raise ValueError(f"{root}/train/list.txt lists no sequence")
        out.append((names, rng.permutation(len(names))))
    return out


def make_subset(names: list[str], order: np.ndarray, root: Path, out: Path, percent: float) -> list[str]:
    """``out``/train/ with links to ``percent`` % of ``root``'s train sequences ``names`` (at least one) and their
    list.txt: a prefix of the permutation ``order``, so a smaller share's sequences are in every larger one."""
    if not 0 < percent <= 100:
        raise ValueError(f"--percent must be in (0, 100], got {percent}")
    keep = [names[i] for i in sorted(order[:max(1, round(len(names) * percent / 100))])]
    split = out / "train"
    split.mkdir(parents=True, exist_ok=True)
    for name in keep:
        link = split / name
        if not link.is_symlink():
            os.symlink((root / "train" / name).resolve(), link)
    (split / "list.txt").write_text("\n".join(keep) + "\n")
    return keep


def commands(out: Path, percent: float, data: list[Path]) -> list[str]:
    """Train stage 1 on a share (``data``: its GOT-10k roots), write it with the shipped settings, score it on dev's
    TRE segments (``siamtrack eval tre`` first) and on dev in one pass."""
    run, sel = out / f"D{percent:g}", out / f"selD{percent:g}" / "siamfc-effnet.pt"
    half_a = " ".join(json.loads((REPO / "eval" / "dev_halves.json").read_text())["A"])  # chose the shipped settings
    train = ["siamtrack train", *(f"--data got10k:{d}" for d in data), *(f"--data voc:{s}" for s in STILLS),
             STAGE1, f"--out {run}"]
    tracker = shlex.quote(f"d{percent:g}={sel}@onnxruntime")
    return [" ".join(train),
            f"python -m tracker.training.select --candidates {run}/snapshots/effnet-lite0_0002000.pt --root {SHARED}/dev "
            f"--sequences {half_a} --rounds 0 --keep-scales --max-false-lost 0.05 --start {shlex.quote(SETTINGS)} "
            f"--out {sel}",
            f"siamtrack eval otb --root {out}/tre_dev --trackers {tracker} --out {out}/tre_scores",
            f"siamtrack eval otb --root {SHARED}/dev --trackers {tracker} --out {out}/dev_scores"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the subsets, runs and scores (outside ../shared)")
    p.add_argument("--percent", type=float, nargs="+", default=[25.0, 50.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", action="store_true", help="run the commands too (about 10 minutes of training per share)")
    args = p.parse_args(argv)
    args.out = args.out.resolve()  # the commands run from the repository root
    missing = [str(d) for d in DATA + STILLS if not d.is_dir()]
    if missing:
        print(f"data_scaling: not found: {', '.join(missing)} (../shared beside the repository)", file=sys.stderr)
        return 2
    todo = [f"siamtrack eval tre --root {SHARED}/dev --out {args.out}/tre_dev --segments 5"]
    perms = orders(DATA, args.seed)
    for pc in args.percent:
        roots = []
        for root, (names, order) in zip(DATA, perms):
            dest = args.out / "subsets" / f"{root.name}-{pc:g}"
            print(f"{root.name} {pc:g}%: {len(make_subset(names, order, root, dest, pc))} sequences -> {dest}")
            roots.append(dest)
        todo += commands(args.out, pc, roots)
    for cmd in todo:
        print(cmd)
        if args.run:
            subprocess.run(cmd, shell=True, check=True, cwd=REPO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
