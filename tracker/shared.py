"""A shared backbone pass for many targets: one pass per pyramid level over the region their searches cover.

Batching (:mod:`tracker.multi`) still embeds one search crop per target and scale, so the network's
cost grows with the number of targets. The backbone is fully convolutional with total stride
:data:`tracker.ops.TOTAL_STRIDE`, so the features of a crop are, away from its border, the window of
the features of any larger image that holds the crop at a multiple of the stride. Here the frame is
resized to a few fixed levels ``scale_step ** L`` (output px per image px), each target's searches are
snapped to the nearest levels (its search size moves by at most half a scale step) and to the
nearest feature cell (its search centre by at most half a cell), and each level is embedded once
per region its targets' windows cover; each target's features are then its windows of those maps,
and its head, peak and box update run as usual. A level's windows are grouped into regions by a
greedy merge while a merged region covers less area than its parts apart, so targets far from the
others get a region of their own (a plain crop when alone).

The boxes are close to, not equal to, one tracker per target (the snapping, and the real
surroundings the windows' border cells see where a crop has padding): :class:`MultiTracker`'s
``shared=True`` is opt-in and its accuracy is measured apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Region", "SharedPlan", "plan_shared"]


@dataclass(frozen=True)
class Region:
    """One backbone input: the frame region from ``origin`` (image px, continuous coordinates), resized by
    ``scale`` (px per image px) to ``size`` = (W, H) px."""

    scale: float
    origin: tuple[float, float]
    size: tuple[int, int]


@dataclass(frozen=True)
class SharedPlan:
    """What a frame's shared pass embeds and where each target's features are.

    ``regions``: the backbone inputs. ``windows[t][s]`` = (region index, top feature cell, left feature
    cell) of target ``t``'s search ``s`` (its crop-sized window starts there). ``centres`` (N, S, 2) and
    ``factors`` (N, S): the searches' actual centres (image px) and sides relative to each target's
    ``x_sz``, what the box update needs (``where`` of :meth:`SiamFCTracker._move`)."""

    regions: list[Region]
    windows: list[list[tuple[int, int, int]]]
    centres: np.ndarray
    factors: np.ndarray


def plan_shared(centres: np.ndarray, x_sz: np.ndarray, search_factors: np.ndarray, instance_sz: int,
                scale_step: float, stride: int) -> SharedPlan:
    """Plan the shared pass for N targets with search centres ``centres`` (N, 2) and search sides ``x_sz`` (N,)
    (image px), target ``t`` searching at sides ``x_sz[t] * search_factors[t]`` (``search_factors`` (N, S) or
    (S,) for all: powers of ``scale_step``, as :attr:`TrackerConfig.scale_factors`; one factor 1 for the
    feature pyramid), cropped to ``instance_sz`` px for a network of total stride ``stride``."""
    if scale_step <= 1.0:
        raise ValueError(f"the shared pass needs scale_step > 1 (its pyramid's level ratio), got {scale_step}")
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    x_sz = np.asarray(x_sz, dtype=np.float64).reshape(-1)
    log_step = np.log(scale_step)
    exact = np.log(instance_sz / x_sz) / log_step  # each target's level, fractional
    level = np.round(exact).astype(int)
    search_factors = np.broadcast_to(np.asarray(search_factors, dtype=np.float64), (len(centres), np.shape(search_factors)[-1]))
    offsets = np.round(np.log(search_factors) / log_step).astype(int)  # (N, S)
    q = scale_step ** (exact - level)  # snapped search side / x_sz, within scale_step ** +-0.5
    n, s = offsets.shape
    windows: list[list] = [[None] * s for _ in range(n)]
    snapped = np.zeros((n, s, 2))
    regions: list[Region] = []
    need = level[:, None] - offsets  # (N, S): the level each search reads
    for lv in np.unique(need):
        who = np.argwhere(need == lv)  # (k, 2) rows of (target, search)
        k = scale_step ** float(lv)
        half = instance_sz / (2 * k)  # half a crop, image px
        c = centres[who[:, 0]]
        for rows in _clusters(c * k, instance_sz):
            origin = c[rows].min(axis=0) - half
            cells = np.round((k * (c[rows] - origin) - instance_sz / 2) / stride).astype(int)  # windows' first cells
            regions.append(Region(k, (float(origin[0]), float(origin[1])),
                                  tuple(int(v) for v in cells.max(axis=0) * stride + instance_sz)))
            for (t, j), cell in zip(who[rows], cells):
                windows[t][j] = (len(regions) - 1, int(cell[1]), int(cell[0]))
                snapped[t, j] = origin + (cell * stride + instance_sz / 2) / k
    factors = q[:, None] * search_factors
    return SharedPlan(regions, windows, snapped, factors)


def _clusters(points: np.ndarray, side: int) -> list[np.ndarray]:
    """Group windows of ``side`` px centred at ``points`` (K, 2) (one level's px) into regions: greedily merge
    the two groups whose bounding region saves the most area over embedding them apart, while any does.
    Returns index arrays, one per region."""
    groups = [np.array([i]) for i in range(len(points))]
    boxes = np.concatenate([points, points], axis=1).astype(np.float64)  # x0, y0, x1, y1 of the window centres
    while len(groups) > 1:
        area = np.prod(boxes[:, 2:] - boxes[:, :2] + side, axis=1)
        lo = np.minimum(boxes[:, None, :2], boxes[None, :, :2])
        hi = np.maximum(boxes[:, None, 2:], boxes[None, :, 2:])
        saving = area[:, None] + area[None, :] - np.prod(hi - lo + side, axis=2)
        np.fill_diagonal(saving, -np.inf)
        a, b = np.unravel_index(int(np.argmax(saving)), saving.shape)
        if saving[a, b] < 0:
            break
        a, b = min(a, b), max(a, b)
        groups[a] = np.concatenate([groups[a], groups[b]])
        boxes[a] = np.concatenate([lo[a, b], hi[a, b]])
        del groups[b]
        boxes = np.delete(boxes, b, axis=0)
    return groups
