"""SiamFC's peak search: the host version and the device version for several targets at once."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tracker.core.postprocess import find_peak_numpy, find_peaks_torch, psr

S, R, U = 3, 17, 136  # scales, response size, upsampled size


def _setup(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    # Smooth responses with a peak somewhere off-centre, one set per target.
    resp = F.avg_pool2d(torch.randn(4 * S, 1, R + 4, R + 4, generator=g), 5, stride=1).reshape(4, S, R, R)
    hann = np.outer(np.hanning(U), np.hanning(U))
    hann = (hann / hann.sum()).astype(np.float32)
    penalties = np.array([0.97, 1.0, 0.97], dtype=np.float32)
    return resp, hann, penalties


def test_device_peaks_equal_the_host_search_on_the_same_upsampled_maps():
    resp, hann, pen = _setup()
    got = find_peaks_torch(resp, U, torch.from_numpy(pen), torch.from_numpy(hann), 0.2)
    assert got.shape == (4, 5)
    for b in range(4):
        up = F.interpolate(resp[b][:, None], size=(U, U), mode="bicubic", align_corners=False)[:, 0].numpy()
        scale_id, row, col = find_peak_numpy(up, pen, hann, 0.2)
        assert (int(got[b, 0]), got[b, 1], got[b, 2]) == (scale_id, row, col)
        assert np.isclose(got[b, 3], float(resp[b, scale_id].max()))
        assert np.isclose(got[b, 4], psr(resp[b, scale_id].numpy()), rtol=1e-4)  # the same PSR as the host's


def test_a_target_alone_gets_what_it_gets_in_a_batch():
    resp, hann, pen = _setup(1)
    args = (U, torch.from_numpy(pen), torch.from_numpy(hann), 0.176)
    together = find_peaks_torch(resp, *args)
    alone = np.concatenate([find_peaks_torch(resp[b:b + 1], *args) for b in range(4)])
    assert np.array_equal(together, alone)
    assert len(set(together[:, 0].astype(int))) > 1 or len({tuple(r) for r in together[:, 1:3]}) > 1  # not all alike


def test_psr_is_high_for_one_clear_peak_and_low_for_flat_or_double_maps():
    ys, xs = np.mgrid[:17, :17]
    one = np.exp(-((ys - 8) ** 2 + (xs - 8) ** 2) / 2.0).astype(np.float32)
    two = one + np.exp(-((ys - 3) ** 2 + (xs - 13) ** 2) / 2.0)
    noise = np.random.default_rng(0).random((17, 17)).astype(np.float32)
    assert psr(one) > psr(two) > 0 and psr(one) > psr(noise)
    assert np.isclose(psr(3.0 * one + 5.0), psr(one), rtol=1e-4)  # a gain and an offset do not change it


def test_the_scale_penalty_is_a_toll_on_changing_scale_whatever_the_sign_of_the_peaks():
    """A side scale must beat the current one by more than its penalty to win, for negative logits (a weak
    match) as for positive ones; a plain product would let a slightly weaker negative side peak win."""
    hann = np.full((U, U), 1.0 / U ** 2, dtype=np.float32)
    pen = np.array([0.97, 1.0, 0.97], dtype=np.float32)
    for sign in (1.0, -1.0):
        up = np.full((S, U, U), -5.0, dtype=np.float32)
        up[:, U // 2, U // 2] = [1.01, 1.0, 0.5] if sign > 0 else [-0.99, -1.0, -2.0]
        # Side scale 0 is 1% better than the centre: less than the 3% toll, so the centre stays.
        assert find_peak_numpy(up, pen, hann, 0.0)[0] == 1
        up[0, U // 2, U // 2] = 1.05 if sign > 0 else -0.95  # 5% better: it wins
        assert find_peak_numpy(up, pen, hann, 0.0)[0] == 0
    # The device version takes the same decisions on maps of negative logits (weak matches everywhere).
    resp, hann_u, pen_u = _setup(2)
    resp = resp - 3.0
    got = find_peaks_torch(resp, U, torch.from_numpy(pen_u), torch.from_numpy(hann_u), 0.176)
    for b in range(4):
        up = F.interpolate(resp[b][:, None], size=(U, U), mode="bicubic", align_corners=False)[:, 0].numpy()
        assert int(got[b, 0]) == find_peak_numpy(up, pen_u, hann_u, 0.176)[0]
