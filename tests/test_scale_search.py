"""Locate first, then the scale from small crops (``scale_crop``, :mod:`tracker.scale_search`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tracker import MultiTracker, SiamFCTracker, TrackerConfig, ops, scale_search
from tracker.models import xcorr
from tracker.synthetic import make_sequence

CROP = 97  # px: the default's scale crops


@pytest.fixture(scope="module")
def seq():
    return make_sequence(60, seed=1)


def _run(tracker, frames, box0):
    tracker.init(frames[0], box0)
    return np.array([box0] + [tracker.update(f).box for f in frames[1:]])


def test_scale_scores_are_the_peak_near_the_centre_against_the_surroundings():
    """A scale's score: the largest of the 3 x 3 central cells of the full correlation less the mean of the
    map's outer ring, on numpy and on torch alike; a map with no ring around its centre is refused."""
    rng = np.random.default_rng(0)
    xf = rng.normal(size=(3, 8, 13, 13)).astype(np.float32)
    zf = rng.normal(size=(1, 8, 7, 7)).astype(np.float32)
    full = xcorr(torch.from_numpy(zf), torch.from_numpy(xf)).numpy()[:, 0]  # (3, 7, 7)
    np.testing.assert_allclose(scale_search.correlate(xf, zf), full, rtol=1e-4, atol=1e-4)
    inner = np.zeros((7, 7), bool)
    inner[1:-1, 1:-1] = True
    want = full[:, 2:5, 2:5].reshape(3, -1).max(1) - full[:, ~inner].mean(1)
    assert not np.allclose(full[:, 2:5, 2:5].reshape(3, -1).max(1), full.reshape(3, -1).max(1))  # the centre only
    np.testing.assert_allclose(scale_search.scale_scores(xf, zf), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scale_search.scale_scores(torch.from_numpy(xf), torch.from_numpy(zf)), want,
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="scale_crop"):
        scale_search.scale_scores(xf[:, :, :10, :10], zf)
    assert scale_search.choose(np.array([1.0, 1.01, 1.02]), np.array([0.97, 1.0, 0.97])) == 1
    assert scale_search.choose(np.array([1.0, 1.01, 1.2]), np.array([0.97, 1.0, 0.97])) == 2


def test_crop_sizes_keep_the_search_crops_resolution():
    sizes = scale_search.crop_sizes(386.0, np.array([1 / 1.0375, 1.0, 1.0375]), CROP, 193)
    np.testing.assert_allclose(sizes, [194.0 / 1.0375, 194.0, 194.0 * 1.0375])


def test_one_search_crop_and_three_small_ones_follow_a_growing_target(seq):
    """Each frame: one full search crop, then three scale crops of ``scale_crop`` px around the new place;
    the box grows with the target as the joint pyramid's does (the target grows ~60% by mid-clip)."""
    frames, gt = seq
    t = SiamFCTracker.from_pretrained(device="cpu", config={"scale_crop": CROP})
    shapes = []
    t.net.backbone.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape)))
    boxes = _run(t, frames, gt[0])
    per_frame = shapes[-2:]
    assert per_frame == [(1, 3, 193, 193), (3, 3, CROP, CROP)], per_frame
    assert len(shapes) == 2 + 1 + 2 * (len(frames) - 1)  # init: exemplar, reference crop, scale-crop check
    mid = len(gt) // 2
    assert boxes[mid, 2] / boxes[0, 2] == pytest.approx(gt[mid, 2] / gt[0, 2], rel=0.15)
    assert ops.iou(boxes, gt).mean() > 0.6
    fixed = _run(SiamFCTracker.from_pretrained(device="cpu", config={"scale_crop": CROP, "scale_lr": 0.0}),
                 frames, gt[0])
    assert fixed[mid, 2] == pytest.approx(gt[0, 2])  # the growth came from the scale crops


@pytest.mark.parametrize("other", ["onnxruntime", "torch-pipeline"])
def test_backends_and_pipelines_agree(seq, other):
    """ONNX Runtime (the shipped export) and the device pipeline give the numpy pipeline's boxes."""
    frames, gt = seq
    base = _run(SiamFCTracker.from_pretrained(device="cpu", config={"scale_crop": CROP}), frames, gt[0])
    if other == "onnxruntime":
        pytest.importorskip("onnxruntime")
        t = SiamFCTracker.from_pretrained(backend="onnxruntime", config={"scale_crop": CROP})
        assert t.backend == "onnxruntime"
        np.testing.assert_allclose(_run(t, frames, gt[0]), base, atol=0.05)
    else:
        t = SiamFCTracker.from_pretrained(device="cpu", pipeline="torch", config={"scale_crop": CROP})
        assert ops.iou(_run(t, frames, gt[0]), base).min() > 0.9  # OpenCV's and grid_sample's crops differ slightly


@pytest.mark.parametrize("shared", [False, True])
def test_several_targets_batch_their_scale_crops(seq, shared):
    """MultiTracker: every target's scale crops in one backbone call; batched, the boxes are one tracker
    per target's; with the shared pass, the target is still held."""
    frames, gt = seq
    base = SiamFCTracker.from_pretrained(device="cpu", config={"scale_crop": CROP})
    multi = MultiTracker(base, shared=shared)
    calls = []
    base.net.backbone.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    second = (gt[0][0] + 150, gt[0][1] + 100, gt[0][2], gt[0][3])
    ids = [multi.add(frames[0], gt[0]), multi.add(frames[0], second)]
    single = base.spawn()
    single.init(frames[0], gt[0])
    calls.clear()
    got, want = [], []
    for f in frames[1:]:
        got.append(multi.update(f)[ids[0]].box)
        n = len(calls)
        want.append(single.update(f).box)
        del calls[n:]
    assert (6, 3, CROP, CROP) in calls and not any(c[2] == CROP and c[0] != 6 for c in calls)
    got, want = np.array(got), np.array(want)
    if shared:
        assert ops.iou(got, gt[1:]).mean() > 0.6
    else:
        np.testing.assert_allclose(got, want, atol=0.05)


def test_modes_with_their_own_scale_search_ignore_it_and_bad_sizes_are_refused():
    """Box-head boxes, the feature pyramid and the modes that read every scale's features (here the
    correlation filter) keep SiamFC's joint pyramid whatever ``scale_crop`` says; a negative or too small
    ``scale_crop`` is refused with its name."""
    for extra in ({"feature_pyramid": True}, {"dcf_weight": 0.1}, {"box_head": True}):
        t = SiamFCTracker.from_pretrained(device="cpu", config={"scale_crop": CROP, **extra})
        assert t.rescale_factors is None and len(t.scale_factors) == 3, extra
    assert len(SiamFCTracker.from_pretrained(device="cpu", config={"scale_crop": CROP}).scale_factors) == 1
    with pytest.raises(ValueError, match="scale_crop"):
        TrackerConfig(scale_crop=-1)
    frames, gt = make_sequence(3, seed=2)
    t = SiamFCTracker.from_pretrained(device="cpu", config={"scale_crop": 41})
    with pytest.raises(ValueError, match="scale_crop"):
        t.init(frames[0], gt[0])
