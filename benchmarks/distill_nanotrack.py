"""An experiment: run B's training recipe plus distillation from TrackerNano's response maps.

The shipped network learns from ~5.6k frames; TrackerNano (NanoTrack v2, ../shared/peers, Apache-2.0)
was trained on large tracking datasets. Here the loss of each training pair gets a second term: the
binary cross-entropy between our response logits and TrackerNano's foreground probability for the
same pair (its exemplar and search crop resized from our 129 / 257 px to its 127 / 255 px), resampled
from its 16x16 map (16 px cells, cell i at 16 (i - 8) px from the crop's centre) onto our 27x27 one
(8 px cells), weighted by ``--weight``. The teacher's files are read from ../shared in place; nothing of
them is written into this repository or into the weights it trains.

    python benchmarks/distill_nanotrack.py --weight 1.0 -- <siamtrack train arguments, --out included>

The arguments after ``--`` go to ``siamtrack train``. Run KD: run B's command (weights/README.md) with
``--max-steps 2000``. Run KDU, siamfc-effnet's stage 2 (2026-11-28): from stage 1 with the
trunk's last two blocks learning (the exact command: weights/README.md, "Training"; the same run without
the teacher scores the same on the held-out half). Prints the teacher's sanity check first: on positive
pairs its foreground peak should sit near the crop's centre.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.training import cli, trainer  # noqa: E402

PEERS = ROOT.parent / "shared" / "peers" / "nanotrack_v2"


class Teacher:
    """TrackerNano's backbone and head on ONNX Runtime, batch 1 (the files fix it), any crop size."""

    def __init__(self, folder: Path = PEERS) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(folder / "nanotrack_backbone_sim.onnx"))
        for value in [*model.graph.input, *model.graph.output]:  # free the spatial sizes: 127 and 255 px
            for d in value.type.tensor_type.shape.dim[2:]:
                d.dim_param = "s"
        del model.graph.value_info[:]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.backbone = ort.InferenceSession(model.SerializeToString(), opts)
        self.head = ort.InferenceSession(str(folder / "nanotrack_head_sim.onnx"), opts)

    def foreground(self, z: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Foreground probabilities (16, 16) for an exemplar (3, 127, 127) and a search crop (3, 255, 255),
        BGR float pixel values (pysot's input, as OpenCV's TrackerNano feeds it)."""
        zf = self.backbone.run(None, {"input": z[None].astype(np.float32)})[0]
        xf = self.backbone.run(None, {"input": x[None].astype(np.float32)})[0]
        cls = self.head.run(None, {"input1": zf, "input2": xf})[0][0]
        e = np.exp(cls - cls.max(0))
        return e[1] / e.sum(0)


def teacher_targets(teacher: Teacher, z: torch.Tensor, x: torch.Tensor, r: int) -> torch.Tensor:
    """TrackerNano's foreground map for each pair, resampled onto our ``r`` x ``r`` response (8 px cells on
    the search crop of side ``x.shape[-1]``): (B, 1, r, r)."""
    zt = F.interpolate(z.float(), size=127, mode="bilinear", align_corners=False).cpu().numpy()
    xt = F.interpolate(x.float(), size=255, mode="bilinear", align_corners=False).cpu().numpy()
    maps = torch.from_numpy(np.stack([teacher.foreground(a, b) for a, b in zip(zt, xt)]))[:, None].float()
    offs = (torch.arange(r, dtype=torch.float32) - (r - 1) / 2) * 8 * 255 / x.shape[-1]  # teacher crop px
    u = (offs / 16 + 8) / 15 * 2 - 1  # the teacher's cell indices 0..15, normalised for grid_sample
    gy, gx = torch.meshgrid(u, u, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None].expand(len(maps), r, r, 2)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True).to(x.device)


def with_distillation(weight: float) -> None:
    """Add ``weight`` x BCE(our logits, the teacher's foreground probability) to the training loss."""
    teacher = Teacher()
    forward = trainer._LossModel.forward

    def _forward(self, z, x, *rest):  # rest: the target boxes in the search crops, when the run uses them
        seen = []  # the response the loss computed, so the network runs once
        net_forward, forward_boxes = self.net.forward, self.net.forward_boxes
        self.net.forward = lambda *a: seen.append(net_forward(*a)) or seen[-1]
        self.net.forward_boxes = lambda *a: seen.append(forward_boxes(*a)) or seen[-1]
        try:
            loss = forward(self, z, x, *rest)
        finally:
            del self.net.forward, self.net.forward_boxes  # the class's methods again
        resp = seen[-1][0] if isinstance(seen[-1], tuple) else seen[-1]
        target = teacher_targets(teacher, z, x, resp.shape[-1])
        return loss + weight * F.binary_cross_entropy_with_logits(resp.float(), target)

    trainer._LossModel.forward = _forward


def sanity(n: int = 8) -> None:
    """The teacher on ``n`` positive pairs of the training data: where its foreground peak sits."""
    from tracker.training.pairs import PairConfig, PairSampler
    from tracker.training.sources import load_tracks

    tracks = load_tracks([f"got10k:{ROOT.parent / 'shared' / 'data' / 'training'}"])
    sampler = PairSampler(tracks, PairConfig(exemplar_sz=129, instance_sz=257, max_gap=15, shift=0))
    z, x = sampler.sample_batch(np.random.default_rng(0), n)[:2]
    t = teacher_targets(Teacher(), torch.from_numpy(z).permute(0, 3, 1, 2).float(),
                        torch.from_numpy(x).permute(0, 3, 1, 2).float(), 27)[:, 0]
    peaks = [np.unravel_index(int(m.argmax()), m.shape) for m in t.numpy()]
    print("teacher on centred positive pairs: peak cells (centre 13, 13):", peaks,
          "max prob", [round(float(m.max()), 2) for m in t])


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weight", type=float, default=1.0, help="weight of the distillation term")
    args = ap.parse_args(argv[:split])
    sanity()
    with_distillation(args.weight)
    return cli.main(argv[split + 1:])


if __name__ == "__main__":
    raise SystemExit(main())
