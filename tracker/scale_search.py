"""The scale of a located target, from small crops centred on it (``TrackerConfig.scale_crop``).

SiamFC's pyramid embeds a full search crop per scale and lets the best peak over all of them choose
both the place and the scale. Here the place comes from the current scale's search crop alone (one
network pass at the full search size); then ``scale_num`` small crops of ``scale_crop`` px, with the
same pixels per image pixel as the search crop and sides ``scale_step ** k`` times the current one,
are cut around the new centre and embedded in one batch. Each scale's score is the exemplar's
best correlation over the central 3 x 3 cells of its crop (the target sits at the centre, within
the place estimate's half-cell error) less the mean over the crop's outer ring of cells (the
target against its surroundings), times SiamFC's scale penalty for the side scales; the best
scale moves the size as SiamFC's does (``scale_lr``). Three 97 px crops cost about a third of three
193 px ones, so a frame costs about two thirds of the joint pyramid's (DSST locates first and
then estimates the scale the same way, with a separate filter).

The correlation is the raw sum of the kernel's products (the head's affine map, ``out_scale * x +
bias``, is left out: the difference makes its bias cancel).
Works on numpy arrays (ONNX Runtime) and torch tensors (any device).
"""
from __future__ import annotations

import functools

import numpy as np

try:  # a deployment install (numpy, OpenCV, ONNX Runtime) runs without torch
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

__all__ = ["correlate", "scale_scores", "crop_sizes", "choose"]

RADIUS = 1  # cells around the centre whose best correlation is the target's at a scale


def crop_sizes(x_sz: float, factors: np.ndarray, scale_crop: int, instance_sz: int) -> np.ndarray:
    """Sides (image px) of the scale crops: ``scale_crop`` px crops at the search crop's resolution
    (``instance_sz`` px for ``x_sz`` image px), one per size factor."""
    return x_sz * np.asarray(factors, dtype=np.float64) * scale_crop / instance_sz


@functools.lru_cache(maxsize=8)
def _gather_index(k: int, h: int, w: int) -> np.ndarray:
    """For kernel cell (dy, dx) and response cell (y, x): the flat position of ``(dy * k + dx, y + dy, x + dx)``
    in the (k * k, h * w) products, as (k * k, rows * cols)."""
    dy, dx, y, x = np.meshgrid(np.arange(k), np.arange(k), np.arange(h - k + 1), np.arange(w - k + 1), indexing="ij")
    return ((dy * k + dx) * h * w + (y + dy) * w + (x + dx)).reshape(k * k, -1)


def correlate(xf, zf):
    """Raw correlation maps of kernel ``zf`` (1, C, k, k) over features ``xf`` (S, C, H, W): (S, H-k+1, W-k+1),
    numpy (a matrix product and a gather, as :func:`tracker.models.xcorr_gather`) or torch as given."""
    k, (n, c, h, w) = zf.shape[-1], xf.shape
    if torch is not None and torch.is_tensor(xf):
        return F.conv2d(xf.float(), zf.float())[:, 0]
    rows, cols = h - k + 1, w - k + 1
    index = _gather_index(k, h, w)
    prod = np.asarray(zf, dtype=np.float32).reshape(c, k * k).T @ np.asarray(xf, dtype=np.float32).reshape(n, c, h * w)
    return prod.reshape(n, -1)[:, index].sum(1).reshape(n, rows, cols)


def scale_scores(xf, zf, radius: int = RADIUS) -> np.ndarray:
    """How well the target stands out at each scale: the best correlation of kernel ``zf`` (1, C, k, k) over
    the central (2 radius + 1)^2 cells of each map of ``xf`` (S, C, H, W) minus the mean of the map's
    outermost ring of cells (its surroundings); (S,) float64 on the host. The peak alone favours the
    zoomed-in crop wherever the target's inside is uniform (more of it fills the window), so the box
    shrinks on a target that grows; the contrast with the surroundings does not."""
    k, h, w = zf.shape[-1], xf.shape[-2], xf.shape[-1]
    if min(h, w) - k + 1 < 2 * radius + 3:
        raise ValueError(f"scale crop features {h}x{w} give no ring of response cells around the central "
                         f"{2 * radius + 1}x{2 * radius + 1} for a {k}x{k} kernel: raise scale_crop")
    resp = correlate(xf, zf)
    r = resp.shape[-1]
    resp = resp.double().cpu().numpy() if torch is not None and torch.is_tensor(resp) else resp.astype(np.float64)
    c = r // 2
    peak = resp[:, c - radius:c + radius + 1, c - radius:c + radius + 1].reshape(len(resp), -1).max(1)
    ring = np.concatenate([resp[:, 0, :], resp[:, -1, :], resp[:, 1:-1, 0], resp[:, 1:-1, -1]], axis=1)
    return peak - ring.mean(1)


def choose(scores: np.ndarray, penalties: np.ndarray) -> int:
    """Index of the best scale: the highest score times its penalty (1 for the current scale)."""
    return int(np.argmax(np.asarray(scores) * np.asarray(penalties)))
