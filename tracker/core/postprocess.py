"""Host-side response post-processing.

* :func:`find_peak`: SiamFC's scale pyramid: pick the scale, blend the window, find the peak
  of the upsampled response.
* :func:`find_peaks_torch`: the same on the device for several targets' responses at once (a GPU's
  pipeline): one transfer of a few numbers per target instead of the maps.
* :func:`find_box`: networks with a box head (as SiamRPN++ / SiamFC++ / NanoTrack do): every
  response cell proposes a box from its edge distances; its score (the sigmoid of the response) is
  multiplied by a penalty on the change of size and aspect ratio it implies, blended with a cosine
  window, and the best cell wins. How far the box size moves towards it is that cell's penalised
  score times the size learning rate, so unsure proposals barely change the size.

``benchmarks/postprocess.py`` measures this numpy version against a fused numba kernel
of the same contract; numpy measured faster on a 3 x 272 x 272 response (numpy's
reductions are already vectorised), so the tracker uses it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ops import context_size

__all__ = ["cosine_window", "penalised", "find_peak", "find_peak_numpy", "find_peaks_torch", "psr", "find_box", "BoxChoice", "sample_bilinear", "size_bias"]


def penalised(peaks, penalties):
    """Scale peaks (numpy array or tensor, scales on the last axis) after the scale-change ``penalties``
    (<= 1): each loses ``1 - penalty`` of its magnitude. A plain product would favour the penalised scales
    wherever the peaks are negative logits (a weak match: ~10% of frames on the stress set)."""
    return peaks - (1 - penalties) * abs(peaks)


def find_peak_numpy(up: np.ndarray, penalties: np.ndarray, hann: np.ndarray, window_influence: float) -> tuple[int, float, float]:
    """``up``: upsampled responses (S, U, U); ``penalties`` (S,) scale-change penalties (:func:`penalised`);
    ``hann`` (U, U) window summing to 1. Returns (scale index, row, col) of the peak in ``up``."""
    raw_max = up.reshape(len(up), -1).max(axis=1)
    scale_id = int(np.argmax(penalised(raw_max, penalties)))
    r = up[scale_id] - up[scale_id].min()
    r /= r.sum() + 1e-16
    r = (1 - window_influence) * r + window_influence * hann
    row, col = np.unravel_index(int(np.argmax(r)), r.shape)
    return scale_id, float(row), float(col)


find_peak = find_peak_numpy


def psr(r: np.ndarray, exclude: int = 2) -> float:
    """Peak-to-sidelobe ratio of a raw response map ``r`` (R, R): (peak - mean) / std of the cells more
    than ``exclude`` cells (Chebyshev) from the peak. A clear, single match is high; a flat map or several
    similar peaks (an occluder, a look-alike, the target gone) is low (as MOSSE uses it to detect failure)."""
    y, x = np.unravel_index(int(np.argmax(r)), r.shape)
    side = np.ones(r.shape, dtype=bool)
    side[max(0, y - exclude):y + exclude + 1, max(0, x - exclude):x + exclude + 1] = False
    rest = r[side]
    return float((r[y, x] - rest.mean()) / max(float(rest.std()), 1e-12))


def find_peaks_torch(resp, upscale_sz: int, penalties, hann, window_influence: float, exclude: int = 2) -> np.ndarray:
    """:func:`find_peak_numpy` on the device for B targets: raw responses ``resp`` (B, S, R, R) float
    tensor, upsampled bicubically to ``upscale_sz`` here; ``penalties`` (S,) and ``hann`` (U, U) tensors on
    its device. Returns a (B, 5) float64 array: scale index, row, col (in the upsampled map), the chosen
    scale's raw (not upsampled) peak and its :func:`psr` (``exclude`` as there), one transfer for all targets."""
    import torch
    import torch.nn.functional as F

    b, s, r, _ = resp.shape
    u = upscale_sz
    up = F.interpolate(resp.reshape(b * s, 1, r, r), size=(u, u), mode="bicubic", align_corners=False)
    up = up.reshape(b, s, u * u)
    raw_max = up.amax(2)  # (B, S)
    scale_id = torch.argmax(penalised(raw_max, penalties.view(1, -1)), dim=1)  # (B,)
    rows = torch.arange(b, device=resp.device)
    m = up[rows, scale_id]  # (B, U*U)
    m = m - m.amin(1, keepdim=True)
    m = m / (m.sum(1, keepdim=True) + 1e-16)
    m = (1 - window_influence) * m + window_influence * hann.reshape(1, -1)
    loc = torch.argmax(m, dim=1)
    raw = resp.reshape(b, s, r * r)[rows, scale_id]  # (B, R*R): the chosen scales' raw maps
    peak, top = raw.max(1)
    cells = torch.arange(r, device=resp.device)
    near_y = (cells.view(1, r, 1) - (top // r).view(-1, 1, 1)).abs() <= exclude
    near_x = (cells.view(1, 1, r) - (top % r).view(-1, 1, 1)).abs() <= exclude
    side = ~(near_y & near_x).reshape(b, r * r)
    n = side.sum(1)
    mean = (raw * side).sum(1) / n
    std = ((((raw - mean[:, None]) ** 2) * side).sum(1) / n).sqrt().clamp_min(1e-12)
    out = torch.stack([scale_id.float(), (loc // u).float(), (loc % u).float(), peak.float(),
                       ((peak - mean) / std).float()], dim=1)
    return out.cpu().numpy().astype(np.float64)


def size_bias(edges: np.ndarray, true_wh: np.ndarray) -> np.ndarray:
    """The box head's size error on the first frame, where the box is known: predicted / true ``(w, h)`` at
    the centre cell (edges (4, R, R) and ``true_wh`` in crop px), kept within [0.5, 2]. Later proposals
    are divided by it, so a head that over- or under-sizes by a steady factor does not make the box grow
    or shrink frame after frame."""
    c = edges.shape[-1] // 2
    left, top, right, bottom = edges[:, c, c]
    return np.clip(np.array([left + right, top + bottom]) / true_wh, 0.5, 2.0)


def sample_bilinear(maps: np.ndarray, row: float, col: float) -> np.ndarray:
    """Values of ``maps`` (C, H, W) at the fractional cell ``(row, col)``, bilinear, clamped to the edges: (C,)."""
    h, w = maps.shape[-2:]
    row, col = min(max(row, 0.0), h - 1.0), min(max(col, 0.0), w - 1.0)
    r0, c0 = min(int(row), h - 2), min(int(col), w - 2)
    fr, fc = row - r0, col - c0
    top = maps[:, r0, c0] * (1 - fc) + maps[:, r0, c0 + 1] * fc
    bottom = maps[:, r0 + 1, c0] * (1 - fc) + maps[:, r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


@dataclass(frozen=True)
class BoxChoice:
    """The cell :func:`find_box` chose: the box's centre offset from the crop centre ``(dx, dy)`` and its
    size ``(w, h)``, all in image px; ``weight`` (penalty x score, in [0, 1]); ``logit`` (raw response)."""

    dx: float
    dy: float
    w: float
    h: float
    weight: float
    logit: float


def cosine_window(size: int, centre: float) -> np.ndarray:
    """A (size, size) cosine (Hann) window peaking at 1 on cell ``(centre, centre)`` and falling to 0 at the cell
    farthest from it: ``np.outer(np.hanning(size), np.hanning(size))`` when ``centre`` is the middle. An even
    grid whose crop centre is a cell (NanoTrack's 16 x 16: cell 8) gets its peak there, not between cells 7 and
    8, where the two would tie."""
    half = max(centre, size - 1 - centre)
    w = 0.5 + 0.5 * np.cos(np.pi * (np.arange(size) - centre) / half) if half > 0 else np.ones(size)
    return np.outer(w, w)


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def find_box(resp: np.ndarray, edges: np.ndarray, px: np.ndarray, target_sz: np.ndarray, window: np.ndarray,
             window_influence: float, penalty_k: float, stride: float, size_bias: np.ndarray = (1.0, 1.0),
             centre: float | None = None) -> BoxChoice:
    """Choose the box among the proposals of every response cell.

    ``resp`` (S, R, R): response logits of S search crops; ``edges`` (S, 4, R, R): the box head's
    distances (left, top, right, bottom) in crop px from each cell's centre; ``px`` (S,): image px per
    crop px of each crop; ``target_sz`` ``(w, h)``: the current box size, image px; ``window`` (R, R): a
    cosine window peaking at 1; ``stride``: crop px between cells (the centre cell sits at the crop centre);
    ``size_bias`` ``(w, h)``: the head's known size error, divided out of every proposal's size; ``centre``:
    the index of the cell at the crop centre (None: the middle, ``(R - 1) / 2``).
    """
    n, r = resp.shape[0], resp.shape[-1]
    cells = (np.arange(r) - ((r - 1) / 2 if centre is None else centre)) * stride
    k = np.asarray(px, dtype=np.float64).reshape(n, 1, 1)
    left, top, right, bottom = (edges[:, i].astype(np.float64) for i in range(4))
    w, h = (left + right) * k / size_bias[0], (top + bottom) * k / size_bias[1]
    dx = (cells[None, None, :] + (right - left) / 2) * k
    dy = (cells[None, :, None] + (bottom - top) / 2) * k
    tw, th = float(target_sz[0]), float(target_sz[1])
    change = _change(context_size(w, h) / context_size(tw, th)) * _change((tw / th) / (w / h))
    penalty = np.exp(-(change - 1) * penalty_k)
    score = 1.0 / (1.0 + np.exp(-resp.astype(np.float64)))
    pscore = penalty * score * (1 - window_influence) + window[None] * window_influence
    i = np.unravel_index(int(np.argmax(pscore)), pscore.shape)
    return BoxChoice(float(dx[i]), float(dy[i]), float(w[i]), float(h[i]), float(penalty[i] * score[i]),
                     float(resp[i]))
