"""Distractor awareness: secondary peaks, their kernels, and the tracker's memory of them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tracker import SiamFCTracker, TrackerConfig
from tracker.distractors import kernel_at, secondary_peaks
from tracker.models import correlation_index, xcorr_gather
from tracker.synthetic import make_absence_sequence


def _bump(r: np.ndarray, cell, height: float) -> None:
    ys, xs = np.mgrid[:r.shape[0], :r.shape[1]]
    r += height * np.exp(-((ys - cell[0]) ** 2 + (xs - cell[1]) ** 2) / 2.0)


def test_secondary_peaks_are_high_far_local_maxima_highest_first():
    r = np.zeros((17, 17), np.float32)
    _bump(r, (8, 8), 1.0)    # the target
    _bump(r, (2, 3), 0.7)    # a look-alike
    _bump(r, (14, 13), 0.9)  # a stronger one
    _bump(r, (8, 11), 0.8)   # close to the target: part of it
    _bump(r, (13, 2), 0.3)   # too weak
    cells = secondary_peaks(r, (8, 8), radius=3, ratio=0.5, limit=5)
    assert cells == [(14, 13), (2, 3)]
    assert secondary_peaks(r, (8, 8), radius=3, ratio=0.5, limit=1) == [(14, 13)]
    assert secondary_peaks(r, (8, 8), radius=3, ratio=0.95, limit=5) == []
    assert secondary_peaks(r + 5.0, (8, 8), radius=3, ratio=0.5, limit=5) == cells  # offset does not matter


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_kernel_cut_at_a_cell_matches_the_features_that_gave_that_cell(kind):
    rng = np.random.default_rng(0)
    xf = rng.standard_normal((16, 20, 20)).astype(np.float32)
    feats = xf if kind == "numpy" else torch.from_numpy(xf)
    k = kernel_at(feats, (5, 9), 6)
    assert tuple(k.shape) == (1, 16, 6, 6) and type(k) is type(feats)
    kt = torch.as_tensor(np.asarray(k))
    r = xcorr_gather(kt, torch.from_numpy(xf)[None], correlation_index(6, 20, 20))[0, 0]
    assert np.isclose(float(r[5, 9]), float((kt ** 2).sum()), rtol=1e-4)  # its own window: the kernel's energy
    xf[:, 5, 9] = 0  # a copy, not a view of the features
    assert float(torch.as_tensor(np.asarray(k))[0, :, 0, 0].abs().sum()) > 0


def test_tracker_remembers_look_alikes_and_not_while_lost():
    frames, gt = make_absence_sequence(absent=(25, 45), distractor=True, seed=1)
    # siamfc-effnet: distractor memory needs the scale pyramid (box-head networks such as the default refuse it).
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu",
                                      config={"distractor_weight": 0.5, "distractor_ratio": 0.3})
    assert t.uses_features
    t.init(frames[0], gt[0])
    held = []
    for f in frames[1:60]:
        before = len(t.distractors)
        r = t.update(f)
        if r.lost:
            assert len(t.distractors) == before  # nothing is learned while the target is not held
        held.append(not r.lost)
    assert any(held) and 0 < len(t.distractors) <= 8
    assert all(tuple(d.shape) == tuple(t.zf.shape) for d in t.distractors)


def test_distractor_settings_are_validated():
    with pytest.raises(ValueError, match="distractor_weight"):
        TrackerConfig(distractor_weight=1.5)
    with pytest.raises(ValueError, match="distractor_size"):
        TrackerConfig(distractor_size=0)
    with pytest.raises(ValueError, match="image pyramid"):
        TrackerConfig(distractor_weight=0.5, feature_pyramid=True)
