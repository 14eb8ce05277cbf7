"""Full-frame re-detection for long-term tracking (``TrackerConfig.long_term``).

When the target is lost, its exemplar is correlated with the whole frame at the target's last
scale. The network is fully convolutional, so this is the ordinary search done on a grid of
search crops ("tiles") whose response maps together cover every position of the frame: one
batch through the backbone, one correlation per tile. The tracker re-acquires the best peak over
all tiles when its score clears ``redetect_threshold``. With ``search_growth`` > 0 the search covers a
disc around the last held position that grows with every lost frame (a target gone for longer may
be further away; a look-alike far away is not taken for it after a short occlusion), up to the
whole frame.
"""
from __future__ import annotations

import math

import numpy as np

from .ops import TOTAL_STRIDE

__all__ = ["tile_centers", "search_area", "locate", "within"]


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


def _cells(centers: np.ndarray, r: int, x_sz: float, instance_sz: int) -> np.ndarray:
    """Image positions (T, R, R, 2) of the response cells of tiles centred at ``centers``."""
    offs = (np.arange(r, dtype=np.float64) - (r - 1) / 2) * TOTAL_STRIDE * x_sz / instance_sz
    gx, gy = np.meshgrid(offs, offs)  # gx varies along columns
    return centers[:, None, None, :] + np.stack([gx, gy], axis=-1)[None]


def within(centers: np.ndarray, response_size: int, x_sz: float, instance_sz: int, origin: np.ndarray,
           radius: float) -> np.ndarray:
    """Which tiles (bool (T,)) have a response cell within ``radius`` image px of ``origin``."""
    d = np.linalg.norm(_cells(centers, response_size, x_sz, instance_sz) - origin, axis=-1)
    return (d <= radius).any(axis=(1, 2))


def search_area(frame_size: tuple[int, int], x_sz: float, instance_sz: int, response_size: int, origin: np.ndarray,
                radius: float | None) -> tuple[np.ndarray, tuple[np.ndarray, float] | None]:
    """The tiles of a lost frame's search (:func:`tile_centers`) and the disc it is limited to: all of the
    frame (``radius`` None; disc None), or the tiles with a cell within ``radius`` image px of ``origin``
    and that disc (``search_growth``: the tracker widens it with every lost frame)."""
    centers = tile_centers(frame_size, x_sz, instance_sz, response_size)
    if radius is None:
        return centers, None
    return centers[within(centers, response_size, x_sz, instance_sz, origin, radius)], (origin, radius)


def locate(responses: np.ndarray, centers: np.ndarray, x_sz: float, instance_sz: int,
           disc: tuple[np.ndarray, float] | None = None) -> tuple[float, np.ndarray]:
    """The highest response over all tiles (``responses`` (T, R, R), raw) and where it is in the image:
    ``(peak, (x, y))``, the cell's centre in image px (the tracker refines it on the next frames). With
    ``disc`` = (centre, radius), image px: only cells inside it count."""
    cells = _cells(centers, responses.shape[-1], x_sz, instance_sz)
    if disc is not None:
        far = np.linalg.norm(cells - disc[0], axis=-1) > disc[1]
        if far.all():
            return -np.inf, np.asarray(disc[0], dtype=np.float64)
        responses = np.where(far, -np.inf, responses)
    t, row, col = np.unravel_index(int(np.argmax(responses)), responses.shape)
    return float(responses[t, row, col]), cells[t, row, col]
