"""The scale search's cheaper modes: the image pyramid on every N-th frame (``scale_every``, the default's
2) and the kernel pyramid (``kernel_pyramid``: one crop, one exemplar kernel per scale)."""
import numpy as np
import pytest

from tracker import MultiTracker, SiamFCTracker, TrackerConfig, ops
from tracker.synthetic import make_sequence


@pytest.fixture(scope="module")
def seq():
    return make_sequence(60, seed=1)


def _crops_per_call(tracker) -> list[int]:
    calls: list[int] = []
    tracker.net.backbone.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    return calls


def _run(tracker, frames, box0):
    tracker.init(frames[0], box0)
    sizes = [tracker.target_sz.copy()]
    boxes = [box0]
    for f in frames[1:]:
        boxes.append(tracker.update(f).box)
        sizes.append(tracker.target_sz.copy())
    return np.array(boxes), np.array(sizes)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_scale_every_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="scale_every"):
        TrackerConfig(scale_every=bad)


def test_one_crop_pyramids_exclude_each_other_and_the_online_models():
    with pytest.raises(ValueError, match="exclude each other"):
        TrackerConfig(feature_pyramid=True, kernel_pyramid=True)
    for extra in ({"dcf_weight": 0.3}, {"memory_size": 2}, {"distractor_weight": 0.5}):
        with pytest.raises(ValueError, match="needs the image pyramid"):
            TrackerConfig(kernel_pyramid=True, **extra)


def test_scale_every_searches_every_scale_on_every_nth_frame_only(seq):
    """scale_every 2: three crops on the first frame after init, then one, then three...; between the scale
    frames the size is left alone, and on them it moves as far as two frames at scale_lr would."""
    frames, gt = seq
    t = SiamFCTracker.from_pretrained(device="cpu", config={"scale_every": 2, "scale_lr": 0.59})
    calls = _crops_per_call(t)
    boxes, sizes = _run(t, frames, gt[0])
    assert calls[2:] == [3, 1] * ((len(frames) - 1) // 2) + [3] * ((len(frames) - 1) % 2)  # after exemplar, reference
    ratios = sizes[1:, 0] / sizes[:-1, 0]
    assert np.all(ratios[1::2] == 1.0)  # frames 2, 4, ...: the current scale alone
    lr = 1 - (1 - 0.59) ** 2
    step = t.config.scale_step
    allowed = [1.0, (1 - lr) + lr * step, (1 - lr) + lr / step]
    # A scale frame's size: one of the three moves, or a move clipped at min_scale/max_scale (not reached here).
    assert all(min(abs(r - a) for a in allowed) < 1e-9 for r in ratios[0::2]), ratios[0::2]
    assert (ratios[0::2] != 1.0).sum() >= 5  # the target grows and shrinks: the size does follow it
    # The target grows 1.62x in 30 frames (1.6% a frame); a scale frame every second frame moves the size at most
    # 3.1% (1.55% a frame), so the box follows with a lag: more than half of the growth, not all of it.
    mid = len(gt) // 2
    assert gt[mid, 2] / gt[0, 2] > 1.6 and boxes[mid, 2] / boxes[0, 2] > 1.3
    assert ops.iou(boxes, gt).mean() > 0.6


def test_shipped_default_searches_every_scale_every_second_frame_and_the_one_crop_modes_ignore_it(seq):
    frames, gt = seq
    t = SiamFCTracker.from_pretrained(device="cpu")
    assert t.config.scale_every == 2 and t.scale_every == 2
    for config in ({"feature_pyramid": True}, {"kernel_pyramid": True}):
        one = SiamFCTracker.from_pretrained(device="cpu", config=config)
        assert one.config.scale_every == 2 and one.scale_every == 1  # the shipped value, not applied
        calls = _crops_per_call(one)
        _run(one, frames[:6], gt[0])
        assert calls[-5:] == [1] * 5


def test_kernel_pyramid_embeds_one_crop_per_frame_against_a_kernel_per_scale(seq):
    frames, gt = seq
    t = SiamFCTracker.from_pretrained(device="cpu", config={"kernel_pyramid": True, "scale_lr": 0.59})
    calls = _crops_per_call(t)
    boxes, sizes = _run(t, frames, gt[0])
    assert tuple(t.zf.shape[:1]) == (3,) and tuple(t.kernel.shape[:1]) == (1,)
    assert calls[:3] == [1, 1, 1] and calls[4:] == [1] * (len(frames) - 1)  # 3 exemplar crops, the reference, then 1
    ratios = sizes[1:, 0] / sizes[:-1, 0]
    step = t.config.scale_step
    allowed = [1.0, 0.41 + 0.59 * step, 0.41 + 0.59 / step]
    assert all(min(abs(r - a) for a in allowed) < 1e-9 for r in ratios)
    assert ops.iou(boxes, gt).mean() > 0.55


def test_kernel_pyramid_on_onnx_runtime_gives_the_torch_boxes(seq):
    pytest.importorskip("onnxruntime")
    frames, gt = seq
    a = SiamFCTracker.from_pretrained(device="cpu", config={"kernel_pyramid": True})
    b = SiamFCTracker.from_pretrained(backend="onnxruntime", config={"kernel_pyramid": True})
    ba, _ = _run(a, frames[:25], gt[0])
    bb, _ = _run(b, frames[:25], gt[0])
    assert np.abs(ba - bb).max() < 0.05


@pytest.mark.parametrize("config", [{"kernel_pyramid": True}, {"scale_every": 3}])
def test_several_targets_batched_give_each_single_trackers_boxes(seq, config):
    """MultiTracker batches targets whose scale frames fall on different frames (added on frames 0 and 1) and
    the kernel pyramid's kernels, and gives the boxes one tracker per target gives."""
    frames, gt = seq
    base = SiamFCTracker.from_pretrained(device="cpu", config=config)
    multi = MultiTracker(base)
    singles = []
    for k, f in enumerate(frames[:20]):
        if k:
            results = multi.update(f)
            for i, single in zip(multi.ids, singles):
                assert np.abs(np.subtract(results[i].box, single.update(f).box)).max() < 1e-3
        if k < 2:  # the second target's frames since init are one fewer than the first's
            box = gt[0] if k == 0 else gt[1] + np.array([60.0, 40.0, 0.0, 0.0])
            multi.add(f, box)
            singles.append(base.spawn())
            singles[-1].init(f, box)
    assert [t._updates for t in singles] == [19, 18]
