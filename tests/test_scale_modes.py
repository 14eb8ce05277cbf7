"""The image pyramid on every N-th frame (``scale_every``; siamfc-effnet ships 2): three crops on one
frame, the current scale's alone on the frames between. Scale pyramids only: the tests name siamfc-effnet, since
the default (a box-head network, one crop per frame) has no pyramid to skip."""
import numpy as np
import pytest

from tracker import MultiTracker, SiamFCTracker, TrackerConfig, ops
from tracker.eval.synthetic import make_sequence


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


def test_scale_every_searches_every_scale_on_every_nth_frame_only(seq):
    """scale_every 2: three crops on the first frame after init, then one, then three...; between the scale
    frames the size is left alone, and on them it moves as far as two frames at scale_lr would."""
    frames, gt = seq
    # siamfc-effnet: scale_every needs the scale pyramid (the default box-head network searches one crop).
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", backend="torch",
                                      config={"scale_every": 2, "scale_lr": 0.59})
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


def test_effnet_searches_every_scale_every_second_frame_and_the_one_crop_modes_ignore_it(seq):
    frames, gt = seq
    # siamfc-effnet (the default until nanotrack-v2): its shipped scale_every 2 is a scale-pyramid setting.
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", backend="torch")
    assert t.config.scale_every == 2 and t.scale_every == 2
    for config, crops in (({"box_head": True}, 3),):
        one = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", backend="torch", config=config)
        assert one.config.scale_every == 2 and one.scale_every == 1  # the shipped value, not applied
        calls = _crops_per_call(one)
        _run(one, frames[:6], gt[0])
        assert calls[-5:] == [crops] * 5


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_torch_pipeline_and_onnx_runtime_skip_the_same_frames(seq, backend):
    """The device pipeline (torch crops and peak search, as on CUDA) and ONNX Runtime give the boxes of the
    numpy pipeline on PyTorch, frame by frame from the same state."""
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    frames, gt = seq
    # siamfc-effnet: scale_every needs the scale pyramid (the default box-head network searches one crop).
    a = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config={"scale_every": 2})
    b = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config={"scale_every": 2}, backend=backend,
                                      **({"pipeline": "torch"} if backend == "torch" else {}))
    a.init(frames[0], gt[0])
    b.init(frames[0], gt[0])
    other_scale = 0
    for k, f in enumerate(frames[1:20]):
        b.center, b.target_sz, b.x_sz = a.center.copy(), a.target_sz.copy(), a.x_sz
        ra, rb = a.update(f), b.update(f)
        assert a._scale_frame == b._scale_frame == (k % 2 == 0)
        assert np.abs(np.subtract(ra.box[:2], rb.box[:2])).max() < 2.0  # a peak one upsampled cell away at most
        if np.allclose(ra.box[2:], rb.box[2:]):
            assert rb.score == pytest.approx(ra.score, abs=0.03)
        else:  # a near-tie between two scales' peaks, decided by rounding (the third frame: 2.6218 vs 2.6198)
            other_scale += 1
    assert other_scale <= 1


@pytest.mark.parametrize("config", [{"scale_every": 3}, {"scale_every": 2, "psr_score": False}])
def test_several_targets_batched_give_each_single_trackers_boxes(seq, config):
    """MultiTracker with targets whose scale frames fall on different frames (added on frames 0 and 1) gives
    the boxes one tracker per target gives."""
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
