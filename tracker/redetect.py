"""Full-frame re-detection for long-term tracking (``TrackerConfig.long_term``).

When the target is lost, its exemplar is correlated with the whole frame at the target's last
scale. The network is fully convolutional, so this is the ordinary search done on a grid of
search crops ("tiles") whose response maps together cover every position of the frame: one
batch through the backbone, one correlation per tile. The tracker re-acquires the best peak over
all tiles when its score clears ``redetect_threshold``.
"""
from __future__ import annotations

import math

import numpy as np

from .ops import TOTAL_STRIDE

__all__ = ["tile_centers", "locate"]


def tile_centers(frame_size: tuple[int, int], x_sz: float, instance_sz: int, response_size: int) -> np.ndarray:
    """Centres ``(T, 2)`` (x, y, image px) of the search crops (side ``x_sz`` image px, resized to
    ``instance_sz``) whose ``response_size`` x ``response_size`` response cells, :data:`TOTAL_STRIDE` crop
    px apart, together cover a frame of ``frame_size`` = (width, height): an even grid, tiles at most one
    response span apart."""
    w, h = frame_size
    span = response_size * TOTAL_STRIDE * x_sz / instance_sz  # image px one tile's response covers
    nx, ny = max(1, math.ceil(w / span)), max(1, math.ceil(h / span))
    xs = (np.arange(nx) + 0.5) * w / nx
    ys = (np.arange(ny) + 0.5) * h / ny
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


def locate(responses: np.ndarray, centers: np.ndarray, x_sz: float, instance_sz: int) -> tuple[float, np.ndarray]:
    """The highest response over all tiles (``responses`` (T, R, R), raw) and where it is in the image:
    ``(peak, (x, y))``, the cell's centre in image px (the tracker refines it on the next frames)."""
    t, row, col = np.unravel_index(int(np.argmax(responses)), responses.shape)
    r = responses.shape[-1]
    disp = (np.array([col, row], dtype=np.float64) - (r - 1) / 2) * TOTAL_STRIDE * x_sz / instance_sz
    return float(responses[t, row, col]), centers[t] + disp
