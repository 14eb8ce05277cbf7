"""The tracker, several targets, the long-term search and training on a CUDA device give what the CPU gives.

Skipped where no GPU exists (CI has none). On a lent GPU: ``.gpu/run.sh`` (see ../shared/GPU.md) runs them with
``SIAMTRACK_SHARED`` pointing at the copy of the dev sequences that travels with the checkout.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tracker import MultiTracker, SiamFCTracker, ops
from tracker.core.ops import iou
from tracker.core.siamfc import REACQUIRED
from tracker.eval.datasets import load_otb
from tracker.eval.synthetic import make_absence_sequence
from tracker.io.video import read_image
from tracker.networks.weights import load_model
from tracker.training.pairs import PairConfig, PairSampler
from tracker.training.trainer import TrainConfig, Trainer

from .test_training import _red_box_track

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (these run on a lent GPU)")


@pytest.fixture(scope="module")
def car4(dev_root):
    seq = load_otb(dev_root, ["Car4"], max_frames=80)[0]
    return [read_image(f) for f in seq.img_files], seq.gt


def _track(t: SiamFCTracker, frames, box) -> np.ndarray:
    t.init(frames[0], box)
    return np.array([box] + [t.update(f).box for f in frames[1:]], dtype=float)


def test_device_crops_equal_the_cpu_crops():
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.integers(0, 256, (3, 120, 160)).astype(np.float32))
    centers, sizes = [(20.0, 30.0), (150.0, 110.0), (80.0, 60.0)], [50.0, 90.0, 300.0]
    pads = torch.tensor([[1.0, 2.0, 3.0], [100.0, 50.0, 0.0], [7.0, 7.0, 7.0]])
    a = ops.crop_torch_many(img, centers, sizes, 64, pads)
    b = ops.crop_torch_many(img.cuda(), centers, sizes, 64, pads.cuda()).cpu()
    assert b.shape == a.shape == (3, 3, 64, 64)
    assert float((a - b).abs().max()) < 1e-2  # of 0..255 grey levels


def test_cuda_tracks_car4_as_the_cpu_does(car4):
    frames, gt = car4
    cpu = _track(SiamFCTracker.from_pretrained(device="cpu", pipeline="torch"), frames, gt[0])
    gpu_t = SiamFCTracker.from_pretrained(device="cuda")
    assert gpu_t.device.type == "cuda"
    gpu = _track(gpu_t, frames, gt[0])
    agree = iou(cpu, gpu)
    print(f"CUDA vs CPU on Car4[:80]: IoU mean {agree.mean():.4f} min {agree.min():.4f}; "
          f"IoU with ground truth CPU {iou(cpu, gt).mean():.3f} CUDA {iou(gpu, gt).mean():.3f}")
    assert agree.mean() > 0.95
    assert iou(gpu, gt).mean() > 0.6


@pytest.mark.parametrize("config", [{}, {"psr_score": True, "long_term": True}])
def test_batched_targets_on_cuda_equal_one_tracker_per_target(car4, config):
    frames, gt = car4
    frames = frames[:30]
    base = SiamFCTracker.from_pretrained(device="cuda", config=config)
    boxes = [gt[0], gt[0] + np.array([-60.0, 20.0, 0, 0]), gt[0] + np.array([50.0, -10.0, 0, 0])]
    multi, singles = MultiTracker(base), []
    for box in boxes:
        multi.add(frames[0], box)
        singles.append(base.spawn())
        singles[-1].init(frames[0], box)
    worst = 0.0
    for frame in frames[1:]:
        results = multi.update(frame)
        for single, i in zip(singles, multi.ids):
            mine = single.update(frame)
            worst = max(worst, float(np.abs(np.array(mine.box) - np.array(results[i].box)).max()))
            assert abs(mine.score - results[i].score) <= 1e-3 and mine.state == results[i].state
    print(f"CUDA {config}: batched vs single trackers, largest box difference {worst:.2e} px")
    assert worst <= 1e-2  # a hundredth of a pixel: batch-size-dependent cuDNN kernels round differently


def test_long_term_search_reacquires_on_cuda():
    """siamfc-effnet: lost while the target is away needs a score that falls on background (the default's
    probability can stay high there; see tests/test_long_term.py)."""
    frames, gt = make_absence_sequence(absent=(25, 45), distractor=False, seed=1)
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cuda",
                                      config={"long_term": True, "redetect_threshold": 0.5, "lost_frames": 3})
    t.init(frames[0], gt[0])
    results = [t.update(f) for f in frames[1:]]
    back = 45 - 1
    first = next(k for k in range(back, len(results)) if not results[k].lost)
    assert first - back <= 2 and results[first].state == REACQUIRED
    assert iou(np.array([r.box for r in results[first:]]), gt[first + 1:]).min() > 0.5


def test_training_steps_on_cuda_save_weights_the_cpu_loads(tmp_path):
    cfg = TrainConfig(arch="lite", steps=3, batch_size=4, checkpoint_every_s=1e9)
    t = Trainer(cfg, PairSampler([_red_box_track(8)], PairConfig()), tmp_path / "run", device="cuda")
    before = {k: v.detach().cpu().clone() for k, v in t.net.state_dict().items()}
    t.run(progress=False)
    after = {k: v.detach().cpu() for k, v in t.net.state_dict().items()}
    assert any(not torch.equal(before[k], after[k]) for k in before)
    net, _ = load_model(tmp_path / "run" / "lite.pt")
    assert next(net.parameters()).device.type == "cpu"
