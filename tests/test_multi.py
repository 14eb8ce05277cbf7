"""MultiTracker: batched equals one tracker per target; ids; adding and removing mid-stream."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import MultiTracker, SiamFCTracker
from tracker.bench_multi import spread_boxes
from tracker.eval.datasets import load_otb
from tracker.synthetic import make_sequence
from tracker.video import read_image

STARTS = (0, 12, 25)  # the frames the three targets are added on


@pytest.fixture(scope="module")
def couple(dev_root):
    seq = load_otb(dev_root, ["Couple"], max_frames=45)[0]
    return [read_image(f) for f in seq.img_files], seq.gt


def _compare(base: SiamFCTracker, frames, gt, boxes) -> float:
    """Largest difference (px) between the batched MultiTracker's boxes and single trackers' over ``frames``,
    the k-th target added on frame STARTS[k] with ``boxes[k]``."""
    multi = MultiTracker(base)
    singles, ids, worst, compared = [], [], 0.0, 0
    for k, frame in enumerate(frames):
        results = multi.update(frame)
        assert list(results) == ids  # every target, in the order added
        for single, i in zip(singles, ids):
            a, b = np.array(single.update(frame).box), np.array(results[i].box)
            worst = max(worst, float(np.abs(a - b).max()))
            compared += 1
        if k in STARTS:
            box = boxes[STARTS.index(k)]
            singles.append(base.spawn())
            singles[-1].init(frame, box)
            ids.append(multi.add(frame, box))
    assert compared == sum(len(frames) - 1 - s for s in STARTS if s < len(frames))
    return worst


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_batched_equals_one_tracker_per_target(couple, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    frames, gt = couple
    base = SiamFCTracker.from_pretrained(device="cpu", backend=backend)
    # The target itself from three frames, and a neighbour shifted off it (a different patch).
    boxes = [gt[0], gt[STARTS[1]], gt[STARTS[2]] + np.array([-40.0, 0.0, 0.0, 0.0])]
    assert _compare(base, frames, gt, boxes) <= 1e-3


def test_batched_equals_single_on_the_device_pipeline_and_feature_pyramid(couple):
    """The torch pipeline (one grid_sample for every target's crops, as on CUDA) and the feature pyramid."""
    frames, gt = couple
    for kwargs in ({"pipeline": "torch"}, {"config": {"feature_pyramid": True}}):
        base = SiamFCTracker.from_pretrained(device="cpu", **kwargs)
        assert _compare(base, frames[:20], gt, [gt[0], gt[12], gt[0] + np.array([30.0, 10.0, 0, 0])]) <= 1e-3


def test_batched_targets_follow_their_objects():
    """Two targets of one synthetic clip, one of them its moving object: that one is held."""
    frames, gt = make_sequence(n_frames=30, size=(320, 240), target=(48, 36), seed=3)
    multi = MultiTracker.from_pretrained(device="cpu")
    a = multi.add(frames[0], gt[0])
    b = multi.add(frames[0], (10.0, 10.0, 40.0, 30.0))
    boxes = np.array([gt[0]] + [multi.update(f)[a].box for f in frames[1:]])
    from tracker.ops import iou

    assert iou(boxes, gt).mean() > 0.6
    assert multi.ids == [a, b]


def test_ids_are_never_reused_and_remove_works_mid_stream():
    frames, gt = make_sequence(n_frames=8, size=(320, 240), target=(48, 36), seed=5)
    multi = MultiTracker.from_pretrained(device="cpu")
    assert multi.update(frames[0]) == {}  # no targets: nothing to do
    a = multi.add(frames[0], gt[0])
    b = multi.add(frames[0], (200.0, 150.0, 40.0, 30.0))
    assert (a, b) == (1, 2)
    assert set(multi.update(frames[1])) == {a, b}
    multi.remove(a)
    assert a not in multi and len(multi) == 1
    assert set(multi.update(frames[2])) == {b}
    c = multi.add(frames[2], gt[2])
    assert c == 3  # not 1 again
    assert list(multi.update(frames[3])) == [b, c]
    multi.clear()
    assert multi.update(frames[4]) == {}
    assert multi.add(frames[4], gt[4]) == 4
    with pytest.raises(KeyError, match="no target with id 1"):
        multi.remove(1)


def test_bad_input_names_the_problem():
    frames, gt = make_sequence(n_frames=3, size=(320, 240), target=(48, 36), seed=5)
    multi = MultiTracker.from_pretrained(device="cpu")
    multi.add(frames[0], gt[0])
    with pytest.raises(ValueError, match="320x240"):
        multi.add(np.zeros((100, 100, 3), np.uint8), (1, 1, 10, 10))
    with pytest.raises(ValueError, match="size changed"):
        multi.update(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="box"):
        multi.add(frames[1], (400.0, 300.0, 10.0, 10.0))  # outside the image
    assert len(multi) == 1  # the failed add left nothing behind
    with pytest.raises(TypeError):
        MultiTracker("siamfc-effnet")


def test_spread_boxes_are_inside_the_image():
    boxes = spread_boxes((5, 6, 40, 30), (320, 240), 16)
    assert len(boxes) == 16 and tuple(boxes[0]) == (5, 6, 40, 30)
    b = np.array(boxes)
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 0] + b[:, 2] <= 320).all() and (b[:, 1] + b[:, 3] <= 240).all()
    assert len({(x, y) for x, y, _, _ in boxes}) == 16  # all different places
