"""Distractor awareness (as DaSiamRPN): remember what else looked like the target, and score it down.

On a frame where the target is held, other strong local maxima of the response (at least
``ratio`` times the target's peak, outside the target's own neighbourhood) are objects that
look like the target: a person beside the person, a car behind the car. Their features (the
k x k window of the search features that the exemplar kernel was matched against at that cell)
become kernels of a small memory (the newest ``size`` kept). On every later frame the response
becomes

    r - weight * mean_i r_i        (r_i: distractor i's response on the same search features)

so a place that looks like a remembered distractor at least as much as like the target loses.
Only the peak's position changes: the score that drives ``lost`` stays the target's own.
"""
from __future__ import annotations

import numpy as np

__all__ = ["secondary_peaks", "kernel_at"]


def secondary_peaks(resp: np.ndarray, peak: tuple[int, int], radius: int, ratio: float, limit: int) -> list[tuple[int, int]]:
    """Cells ``(row, col)`` of a response map ``resp`` (R, R) that are local maxima (3 x 3), at least
    ``ratio`` times the map's value at ``peak`` (the target's cell) and further than ``radius`` cells
    from it (Chebyshev distance), the highest first, at most ``limit``. Values are taken relative to
    the map's minimum, so the ratio does not depend on the response's offset."""
    r = resp - resp.min()
    top = r[peak]
    if top <= 0 or limit <= 0:
        return []
    pad = np.pad(r, 1, mode="constant", constant_values=-np.inf)
    neigh = np.max([pad[dy:dy + r.shape[0], dx:dx + r.shape[1]] for dy in range(3) for dx in range(3)
                    if (dy, dx) != (1, 1)], axis=0)
    rows, cols = np.nonzero((r > neigh) & (r >= ratio * top))
    far = np.maximum(np.abs(rows - peak[0]), np.abs(cols - peak[1])) > radius
    cells = sorted(zip(rows[far].tolist(), cols[far].tolist()), key=lambda c: -r[c])
    return cells[:limit]


def kernel_at(feats, cell: tuple[int, int], k: int):
    """The k x k window of search features ``feats`` (C, H, W) (numpy array or torch tensor) whose
    correlation with the exemplar kernel gave response cell ``cell``: a kernel (1, C, k, k) of the same
    kind, for ``net.score``."""
    row, col = cell
    return feats[None, :, row:row + k, col:col + k].copy() if isinstance(feats, np.ndarray) \
        else feats[None, :, row:row + k, col:col + k].clone()
