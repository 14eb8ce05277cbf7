"""Host-side response post-processing: pick the scale, blend the window, find the peak;
read a box head's edge distances at the peak.

``benchmarks/postprocess.py`` measures this numpy version against a fused numba kernel
of the same contract; numpy measured faster on a 3 x 272 x 272 response (numpy's
reductions are already vectorised), so the tracker uses it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["find_peak", "find_peak_numpy", "sample_bilinear"]


def find_peak_numpy(up: np.ndarray, penalties: np.ndarray, hann: np.ndarray, window_influence: float) -> tuple[int, float, float]:
    """``up``: upsampled responses (S, U, U); ``penalties`` (S,) scale-change penalties; ``hann``
    (U, U) window summing to 1. Returns (scale index, row, col) of the peak in ``up``."""
    raw_max = up.reshape(len(up), -1).max(axis=1)
    scale_id = int(np.argmax(raw_max * penalties))
    r = up[scale_id] - up[scale_id].min()
    r /= r.sum() + 1e-16
    r = (1 - window_influence) * r + window_influence * hann
    row, col = np.unravel_index(int(np.argmax(r)), r.shape)
    return scale_id, float(row), float(col)


find_peak = find_peak_numpy


def sample_bilinear(maps: np.ndarray, row: float, col: float) -> np.ndarray:
    """Values of ``maps`` (C, H, W) at the fractional cell ``(row, col)``, bilinear, clamped to the edges: (C,)."""
    h, w = maps.shape[-2:]
    row, col = min(max(row, 0.0), h - 1.0), min(max(col, 0.0), w - 1.0)
    r0, c0 = min(int(row), h - 2), min(int(col), w - 2)
    fr, fc = row - r0, col - c0
    top = maps[:, r0, c0] * (1 - fc) + maps[:, r0, c0 + 1] * fc
    bottom = maps[:, r0 + 1, c0] * (1 - fc) + maps[:, r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr
