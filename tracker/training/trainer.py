"""The training loop: SGD on Siamese pairs, checkpoints that resume exactly, DDP via torchrun.

Pairs for step ``k`` on rank ``r`` are drawn from ``np.random.default_rng([seed, r, k])``,
so a resumed run sees exactly the pairs an uninterrupted one would have.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from ..io.progress import ProgressBar
from ..networks.effnet import load_imagenet
from ..networks.models import ARCHITECTURES, SiamNet, build_model, fold_batchnorm
from ..networks.weights import load_model, save_weights, torch_bytes, write_atomic
from .losses import LOSSES, balanced_logistic, box_giou, contrastive, triplet
from .pairs import PairConfig, PairSampler
from .runfolder import (
    LOG_HEADER,
    RunFolderError,
    fresh_run_refusal,
    named,
    remove_stale_temps,
    truncate_log,
)

__all__ = ["TrainConfig", "Trainer", "CheckpointError", "RunFolderError", "load_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated or from an incompatible run."""


# Options older versions recorded in a checkpoint's config and this one no longer has: (default, what it was).
# A checkpoint holding one at its default resumes; any other value is refused with a message.
REMOVED_OPTIONS: dict[str, tuple[Any, str]] = {
    "scale_sigma": (0.0, "scale-aware response labels, --scale-sigma"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults follow SiamFC (SGD, momentum 0.9, weight decay 5e-4,
    learning rate decaying exponentially from 1e-2 to 1e-5 over the run)."""

    arch: str = "lite"
    loss: str = "logistic"
    steps: int = 10000
    batch_size: int = 8
    lr_start: float = 1e-2
    lr_end: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 5e-4
    margin: float | None = None  # contrastive / triplet margin (defaults per loss)
    seed: int = 0
    checkpoint_every_s: float = 300.0
    log_every: int = 20
    amp: bool = True  # mixed precision, used on CUDA only
    box_head: bool = False  # add a box head, trained with 1 - GIoU (plus the logistic loss unless frozen)
    box_weight: float = 1.0  # weight of the box loss against the logistic loss
    init_weights: str | None = None  # start from these weights (name or path); a missing box head starts fresh
    freeze_backbone: bool = False  # train only the box head (backbone, BN statistics and response head fixed)
    pretrained: bool = False  # start the backbone's trunk from ImageNet and keep it frozen (BN in eval mode)
    train_blocks: int = 0  # with pretrained: the trunk's last N blocks train too (at trunk_lr_scale x the LR)
    trunk_lr_scale: float = 0.1
    warmup_steps: int = 0  # linear learning-rate warm-up before the exponential decay

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig: loss must be one of {LOSSES}, got {self.loss!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"TrainConfig: steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if self.loss != "logistic" and self.batch_size < 2:
            raise ValueError(f"TrainConfig: loss {self.loss!r} needs batch_size >= 2 (in-batch negatives)")
        if not 0 < self.lr_end <= self.lr_start:
            raise ValueError(f"TrainConfig: need 0 < lr_end <= lr_start, got {self.lr_end}, {self.lr_start}")
        if self.box_head and self.loss != "logistic":
            raise ValueError(f"TrainConfig: the box head trains with the logistic loss, not {self.loss!r}")
        if self.pretrained and not hasattr(ARCHITECTURES.get(self.arch), "trunk_modules"):
            pretrained = sorted(a for a, c in ARCHITECTURES.items() if hasattr(c, "trunk_modules"))
            raise ValueError(f"TrainConfig: pretrained (--pretrained) needs an ImageNet backbone ({', '.join(pretrained)}), "
                             f"not {self.arch!r}")
        if self.train_blocks and not self.pretrained:
            raise ValueError("TrainConfig: train_blocks (--train-blocks) applies to a pretrained trunk (--pretrained)")
        if self.train_blocks < 0 or not 0 < self.trunk_lr_scale <= 1 or not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"TrainConfig: need train_blocks >= 0, 0 < trunk_lr_scale <= 1, 0 <= warmup_steps < steps; "
                             f"got {self.train_blocks}, {self.trunk_lr_scale}, {self.warmup_steps}")
        if self.freeze_backbone and not (self.box_head and self.init_weights):
            raise ValueError("TrainConfig: freeze_backbone (--freeze-backbone) needs box_head and init_weights "
                             "(--box-head, --init WEIGHTS: a trained backbone)")


class _LossModel(nn.Module):
    """Net + loss in one module so DistributedDataParallel sees a single forward."""

    def __init__(self, net: SiamNet, cfg: TrainConfig, box_labels: bool = False) -> None:
        super().__init__()
        self.net, self.loss, self.margin = net, cfg.loss, cfg.margin
        self.instance_sz = net.instance_sz
        self.box_weight, self.cls = cfg.box_weight, not cfg.freeze_backbone
        self.box_labels = box_labels  # response labels at each target's centre, not the crop's

    def forward(self, z: torch.Tensor, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """``boxes``: the targets in the search crops (NaN rows: negative pairs), or None."""
        if self.net.has_box_head:
            resp, ltrb = self.net.forward_boxes(z, x)
            loss = self.box_weight * box_giou(ltrb, boxes, instance_sz=self.instance_sz)
            return loss + balanced_logistic(resp, boxes=boxes, instance_sz=self.instance_sz) if self.cls else loss
        if self.loss == "logistic":
            if self.box_labels:  # NaN boxes: negative pairs
                return balanced_logistic(self.net(z, x), boxes=boxes, instance_sz=self.instance_sz)
            negatives = None if boxes is None else torch.isnan(boxes[:, 0])
            return balanced_logistic(self.net(z, x), negatives=negatives)
        ze, xe = self.net.embed_exemplar(z), self.net.embed(x)
        fn = contrastive if self.loss == "contrastive" else triplet
        return fn(ze, xe) if self.margin is None else fn(ze, xe, margin=self.margin)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint, raising :class:`CheckpointError` that names the file."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e})") from None
    need = {"model", "optimizer", "scheduler", "step", "config"}
    if not isinstance(ckpt, dict) or not need <= set(ckpt):
        raise CheckpointError(f"{path}: not a siamtrack training checkpoint (missing {sorted(need - set(ckpt or {}))})")
    return ckpt


# PairConfig fields and the command-line flags that set them, for the messages of a refused resume.
_PAIR_FLAGS = {"max_gap": "--max-gap", "jitter": "--jitter", "gamma": "--gamma", "color_cast": "--color-cast",
               "shift": "--shift", "scale_jitter": "--scale-jitter", "negative_prob": "--negatives"}


class Trainer:
    """Trains a :class:`SiamNet` on pairs from a :class:`PairSampler`, writing into ``out_dir``:
    ``checkpoint.pt`` (latest, atomic), ``log.csv``, ``loss.png``, ``config.json`` and, at the
    end, ``<arch>.pt`` (+ ``.json`` with its sha256) loadable by ``SiamFCTracker.from_pretrained``.
    ``data``: the ``KIND:PATH`` specs the tracks came from, recorded (with the pair settings) in ``config.json``
    and the checkpoint, and checked on :meth:`resume`. A new trainer's first :meth:`run` refuses an ``out_dir``
    that holds another run's files (:class:`RunFolderError`); :meth:`resume` continues one. Writes that fail
    (a full disk) raise an :class:`OSError` naming the file; the last good checkpoint stays."""

    def __init__(self, cfg: TrainConfig, sampler: PairSampler, out_dir: str | Path, device: str = "auto",
                 snapshot_every: int = 0, data: list[str] | None = None) -> None:
        self.cfg, self.sampler, self.out = cfg, sampler, Path(out_dir)
        self.snapshot_every = snapshot_every
        self.data = list(data) if data is not None else None
        self._continuing = False  # resumed, or run() called before: the files in out_dir are this run's
        self.saved_step: int | None = None  # step of the last checkpoint written or resumed from
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        if device == "auto":
            if torch.cuda.is_available():
                device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            else:
                device = "cpu"
        self.device = torch.device(device)
        # Beyond the default few pixels of shift (or with scale jitter) the target leaves the crop
        # centre, so the response labels follow its box; the default keeps SiamFC's centred labels.
        box_labels = sampler.cfg.shift > PairConfig.shift or sampler.cfg.scale_jitter > 0
        self.with_boxes = cfg.box_head or sampler.cfg.negative_prob > 0 or box_labels
        if sampler.cfg.negative_prob > 0 and cfg.loss != "logistic":
            raise ValueError(f"negative pairs need the logistic loss; {cfg.loss!r} takes its negatives from the batch")
        torch.manual_seed(cfg.seed)
        self.net = build_model(cfg.arch, box_head=cfg.box_head)
        geometry = (self.net.exemplar_sz, self.net.instance_sz)
        if (sampler.cfg.exemplar_sz, sampler.cfg.instance_sz) != geometry:
            raise ValueError(f"pairs are cropped at {sampler.cfg.exemplar_sz}/{sampler.cfg.instance_sz} px but {cfg.arch} "
                             f"is built for {geometry[0]}/{geometry[1]} px (PairConfig exemplar_sz/instance_sz)")
        if cfg.pretrained:
            load_imagenet(self.net.backbone)
        if cfg.init_weights:
            self._load_init(cfg.init_weights)
        if cfg.freeze_backbone:
            for name, p in self.net.named_parameters():
                p.requires_grad_(name.startswith("box_head."))
        trunk_params: list[nn.Parameter] = []
        if cfg.pretrained:
            for m in self.net.backbone.trunk_modules():
                m.requires_grad_(False)
            if cfg.train_blocks:
                for block in list(self.net.backbone.blocks)[-cfg.train_blocks:]:
                    block.requires_grad_(True)
                    trunk_params += list(block.parameters())
            else:  # nothing in the trunk learns: run a BN-folded, channels-last copy of it (2-3x faster on a CPU)
                trunk = nn.Sequential(*self.net.backbone.trunk_modules())
                self.net.backbone.use_frozen_trunk(fold_batchnorm(trunk).to(self.device, memory_format=torch.channels_last))
        self.net.to(self.device)
        if self.distributed and self.device.type == "cuda":
            self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)  # same statistics on every GPU
        self.model: nn.Module = _LossModel(self.net, cfg, box_labels)
        if self.distributed:
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        in_trunk = {id(p) for p in trunk_params}
        groups = [{"params": [p for p in self.net.parameters() if p.requires_grad and id(p) not in in_trunk]}]
        if trunk_params:
            groups.append({"params": trunk_params, "lr": cfg.lr_start * cfg.trunk_lr_scale})
        self.opt = torch.optim.SGD(groups, lr=cfg.lr_start, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        gamma = (cfg.lr_end / cfg.lr_start) ** (1.0 / max(cfg.steps - 1, 1))
        if cfg.warmup_steps:
            w = cfg.warmup_steps
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda k: min(1.0, (k + 1) / w) * gamma ** k)
        else:
            self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0

    def _load_init(self, name_or_path: str) -> None:
        """Copy trained weights in; only a box head the file lacks may stay freshly initialised."""
        src, info = load_model(name_or_path)
        if src.arch != self.cfg.arch:
            raise ValueError(f"init_weights {info.path}: holds {src.arch!r} weights, this run trains {self.cfg.arch!r}")
        missing, unexpected = self.net.load_state_dict(src.state_dict(), strict=False)
        if unexpected or any(not k.startswith("box_head.") for k in missing):
            raise ValueError(f"init_weights {info.path}: does not fit this model (missing {missing}, unexpected {unexpected})")

    # -- checkpoints ---------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def state(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "config": dataclasses.asdict(self.cfg),
            **self.settings(),
            "torch_rng": torch.get_rng_state(),
        }

    def settings(self) -> dict[str, Any]:
        """What shapes the data stream besides :class:`TrainConfig`: the pair sampling and augmentation
        (:class:`PairConfig`), the data specs and the number of tracks they gave."""
        return {"pairs": dataclasses.asdict(self.sampler.cfg), "data": self.data, "tracks": len(self.sampler)}

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` atomically (an :class:`OSError` naming it on failure, the previous one kept)."""
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.checkpoint_path, torch_bytes(self.state()))
            self.saved_step = self.step

    def resume(self, path: str | Path | None = None) -> None:
        path = Path(path) if path else self.checkpoint_path
        if self.rank == 0:
            remove_stale_temps(self.out)  # a write cut short (a kill, a full disk): never read, and holds space
        ckpt = load_checkpoint(path)
        # Everything that shapes the model, the data stream or the schedule must be as the checkpoint's run had it.
        keys = ("arch", "loss", "box_head", "freeze_backbone", "pretrained", "train_blocks", "warmup_steps", "steps",
                "batch_size", "lr_start", "lr_end", "momentum", "weight_decay", "seed", "trunk_lr_scale", "margin",
                "box_weight", "init_weights")
        # A removed option in an older run's checkpoint: at its default that run trained as this code does.
        gone = [f"{k}={ckpt['config'][k]!r} ({why})" for k, (default, why) in REMOVED_OPTIONS.items()
                if ckpt["config"].get(k, default) != default]
        if gone:
            raise CheckpointError(f"{path}: this run was started with {'; '.join(gone)}, an option since removed "
                                  "(docs/experiments.md); this version cannot continue it the same way: start a new "
                                  "run in another --out")
        defaults = dataclasses.asdict(TrainConfig())
        theirs = {k: ckpt["config"].get(k, defaults[k]) for k in keys}
        ours = {k: getattr(self.cfg, k) for k in keys}
        diff = [f"{k}: {theirs[k]!r} in the checkpoint, {ours[k]!r} now" for k in keys if theirs[k] != ours[k]]
        diff += self._settings_diff(ckpt)
        if diff:
            raise CheckpointError(f"{path}: this run's settings differ from the checkpoint's ({'; '.join(diff)}); "
                                  "resume with the original settings, or start a new run in another --out")
        try:
            self.net.load_state_dict(ckpt["model"])
            self.opt.load_state_dict(ckpt["optimizer"])
            self.sched.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):
                self.scaler.load_state_dict(ckpt["scaler"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: does not match this model/optimiser ({e})") from None
        if "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])
        self.step = self.saved_step = int(ckpt["step"])
        self._continuing = True
        if self.rank == 0:
            truncate_log(self.out / "log.csv", self.step)

    def _settings_diff(self, ckpt: dict[str, Any]) -> list[str]:
        """The pair settings and data that differ from the checkpoint's (checkpoints of older versions, which
        did not record them, are not checked)."""
        diff = []
        ours = self.settings()
        for k, theirs in (ckpt.get("pairs") or {}).items():
            now = ours["pairs"].get(k)
            if theirs != now:
                flag = f" ({_PAIR_FLAGS[k]})" if k in _PAIR_FLAGS else ""
                diff.append(f"{k}{flag}: {theirs!r} in the checkpoint, {now!r} now")
        if ckpt.get("data") is not None and ours["data"] is not None and list(ckpt["data"]) != ours["data"]:
            diff.append(f"data (--data): {list(ckpt['data'])} in the checkpoint, {ours['data']} now")
        if ckpt.get("tracks") is not None and ckpt["tracks"] != ours["tracks"]:
            diff.append(f"tracks in the data: {ckpt['tracks']} in the checkpoint, {ours['tracks']} now")
        return diff

    def _truncate_log(self, step: int) -> None:
        """Drop ``log.csv`` rows past ``step`` (:func:`tracker.training.runfolder.truncate_log`)."""
        truncate_log(self.out / "log.csv", step)

    # -- the loop ------------------------------------------------------------------------

    def _batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """Step ``step``'s pairs: exemplars, search crops and, with a box head, box labels or negative pairs,
        the target boxes in the crops."""
        rng = np.random.default_rng([self.cfg.seed, self.rank, step])
        arrays = self.sampler.sample_batch(rng, self.cfg.batch_size, boxes=self.with_boxes)
        to = lambda a: torch.from_numpy(a).to(self.device).permute(0, 3, 1, 2).float()  # noqa: E731
        batch = (to(arrays[0]), to(arrays[1]))
        return batch + tuple(torch.from_numpy(a).float().to(self.device) for a in arrays[2:])

    def train_step(self) -> float:
        self.model.train()
        if self.cfg.freeze_backbone:
            self.net.backbone.eval()  # keep the trained BatchNorm statistics
        if self.cfg.pretrained:
            for m in self.net.backbone.trunk_modules():
                m.eval()  # ImageNet's BatchNorm statistics stay (a few pairs per batch would spoil them)
        batch = self._batch(self.step)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            loss = self.model(*batch)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        self.step += 1
        return float(loss.detach())

    def run(self, steps: int | None = None, progress: bool = True) -> list[float]:
        """Train until ``cfg.steps`` (or ``steps`` more); returns the losses of this call."""
        if not self._continuing:
            refusal = fresh_run_refusal(self.out)
            if self.distributed:
                dist.barrier()  # every rank looks before rank 0 writes, so they agree
            if refusal:
                raise RunFolderError(refusal)
        self._continuing = True
        end = self.cfg.steps if steps is None else min(self.cfg.steps, self.step + steps)
        log_path = self.out / "log.csv"
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            record = {**dataclasses.asdict(self.cfg), **self.settings()}
            write_atomic(self.out / "config.json", (json.dumps(record, indent=2) + "\n").encode())
            print(f"training {self.cfg.arch} ({self.cfg.loss} loss) on {self.device}, world size {self.world}, "
                  f"seed {self.cfg.seed}, steps {self.step}->{end}, batch {self.cfg.batch_size}/rank, "
                  f"{len(self.sampler)} tracks", flush=True)
        losses: list[float] = []
        t_ckpt = t_start = time.monotonic()
        start_step = self.step
        log = open(log_path, "a", newline="") if self.rank == 0 else None
        writer = csv.writer(log) if log else None
        pairs_per_step = self.cfg.batch_size * self.world
        bar = ProgressBar(end * pairs_per_step, rate_unit="pairs/s", initial=start_step * pairs_per_step,
                          enabled=progress and self.rank == 0)
        try:
            if log and log.tell() == 0:
                self._log_row(log, writer, LOG_HEADER)
            while self.step < end:
                lr = self.opt.param_groups[0]["lr"]
                losses.append(self.train_step())
                now = time.monotonic()
                window = losses[-self.cfg.log_every:]
                if self.rank == 0 and (self.step % self.cfg.log_every == 0 or self.step == end):
                    rate = (self.step - start_step) * pairs_per_step / max(now - t_start, 1e-9)
                    self._log_row(log, writer, [self.step, f"{np.mean(window):.5f}", f"{lr:.3e}", f"{rate:.1f}",
                                                f"{now - t_start:.1f}"])
                if bar.enabled:
                    bar.update(self.step * pairs_per_step,
                               note=f"step {self.step}/{end}  loss {np.mean(window):.4f}  lr {lr:.2e}")
                if self.snapshot_every and self.step % self.snapshot_every == 0 and self.rank == 0:
                    save_weights(self.net, self.out / "snapshots" / f"{self.cfg.arch}_{self.step:07d}.pt", step=self.step)
                if now - t_ckpt >= self.cfg.checkpoint_every_s:
                    self.save_checkpoint()
                    t_ckpt = now
        except BaseException as e:
            # Ctrl-C, a crash or a full disk: keep everything up to the last finished step where it fits. A first
            # file-system error is the one reported; one saving the checkpoint is reported in place of any other.
            bar.close()
            self._close_log(log, log_path, quiet=True)
            try:
                self.save_checkpoint()
            except OSError as saving:
                if not isinstance(e, OSError):
                    raise saving from e
            raise
        bar.close()
        self.save_checkpoint()
        self._close_log(log, log_path)
        if self.rank == 0 and self.step >= self.cfg.steps:
            save_weights(self.net, self.out / f"{self.cfg.arch}.pt", step=self.step, train_config=dataclasses.asdict(self.cfg))
            self.plot_losses()
        return losses

    def _log_row(self, log, writer, row: list) -> None:
        """One row of ``log.csv``, flushed (an :class:`OSError` naming the file when it cannot be written)."""
        try:
            writer.writerow(row)
            log.flush()
        except OSError as e:
            raise named(e, self.out / "log.csv") from None

    @staticmethod
    def _close_log(log, path: Path, quiet: bool = False) -> None:
        if log is None:
            return
        try:
            log.close()
        except OSError as e:
            if not quiet:
                raise named(e, path) from None

    def plot_losses(self) -> Path | None:
        """Write ``loss.png`` from ``log.csv``."""
        path = self.out / "log.csv"
        if not path.exists():
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = list(csv.DictReader(open(path)))
        if not rows:
            return None
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows])
        ax.set_xlabel("step")
        ax.set_ylabel(f"{self.cfg.loss} loss")
        ax.set_title(f"siamtrack {self.cfg.arch}")
        ax.grid(alpha=0.3)
        out = self.out / "loss.png"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        write_atomic(out, buf.getvalue())
        return out
