"""Cropping and box-format conversions shared by the tracker, training and evaluation.

Conventions (fixed project-wide):

* Images are BGR ``uint8`` arrays of shape ``(H, W, 3)``, as OpenCV returns them.
* Boxes are ``(x, y, w, h)`` in pixels, 0-based, in continuous coordinates: pixel ``i``
  covers ``[i, i + 1)``, so a box's centre is ``(x + w / 2, y + h / 2)``.
* "Centre-size" boxes are ``(cx, cy, w, h)`` in the same coordinates.

Everything here is pure: no state, no configuration.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "TOTAL_STRIDE",
    "xywh_to_cxcywh",
    "cxcywh_to_xywh",
    "one_based_to_zero_based",
    "zero_based_to_one_based",
    "context_size",
    "crop",
    "crop_multi",
    "crop_torch",
    "crop_torch_many",
    "iou",
    "center_error",
]

TOTAL_STRIDE = 8  # pixels of search crop per response cell, for every backbone


def xywh_to_cxcywh(box: Sequence[float]) -> np.ndarray:
    """``(x, y, w, h)`` -> ``(cx, cy, w, h)``; works on a box or an ``(N, 4)`` array."""
    b = np.asarray(box, dtype=np.float64)
    out = b.copy()
    out[..., 0] = b[..., 0] + b[..., 2] / 2
    out[..., 1] = b[..., 1] + b[..., 3] / 2
    return out


def cxcywh_to_xywh(box: Sequence[float]) -> np.ndarray:
    """``(cx, cy, w, h)`` -> ``(x, y, w, h)``; works on a box or an ``(N, 4)`` array."""
    b = np.asarray(box, dtype=np.float64)
    out = b.copy()
    out[..., 0] = b[..., 0] - b[..., 2] / 2
    out[..., 1] = b[..., 1] - b[..., 3] / 2
    return out


def one_based_to_zero_based(boxes: np.ndarray) -> np.ndarray:
    """OTB/GOT-10k annotation boxes (1-based ``x, y``) -> this project's 0-based boxes."""
    b = np.array(boxes, dtype=np.float64, copy=True)
    b[..., :2] -= 1
    return b


def zero_based_to_one_based(boxes: np.ndarray) -> np.ndarray:
    """This project's 0-based boxes -> 1-based ``x, y`` as OTB/GOT-10k files store them."""
    b = np.array(boxes, dtype=np.float64, copy=True)
    b[..., :2] += 1
    return b


def context_size(w, h, context: float = 0.5):
    """Side of SiamFC's square exemplar region: ``sqrt((w + p)(h + p))`` with ``p = context (w + h)``
    (floats, or numpy arrays element-wise)."""
    p = context * (w + h)
    return np.sqrt((w + p) * (h + p))


def _warp(image: np.ndarray, x0: float, y0: float, a: float, out_wh: tuple[int, int], pad_color) -> np.ndarray:
    """``image`` sampled bilinearly on an ``out_wh`` = (W, H) grid of step ``a`` image px whose first cell's
    top-left corner is at ``(x0, y0)`` (continuous coordinates: pixel centres sit at index + 0.5);
    ``pad_color`` outside the image."""
    m = np.array([[a, 0.0, x0 + 0.5 * a - 0.5], [0.0, a, y0 + 0.5 * a - 0.5]], dtype=np.float64)
    return cv2.warpAffine(image, m, (int(out_wh[0]), int(out_wh[1])), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(c) for c in pad_color))


def crop(
    image: np.ndarray,
    center: Sequence[float],
    size: float,
    out_size: int,
    pad_color: Sequence[float] | None = None,
) -> np.ndarray:
    """Square crop of side ``size`` px centred at ``center=(cx, cy)``, resized to ``out_size``.

    Parts outside the image are filled with ``pad_color`` (default: the image's mean
    colour, as in SiamFC). Bilinear interpolation. Returns ``(out_size, out_size, C)`` ``uint8``.
    """
    if pad_color is None:
        pad_color = cv2.mean(image)[:3]
    size = float(size)
    return _warp(image, float(center[0]) - size / 2, float(center[1]) - size / 2, size / out_size,
                 (out_size, out_size), pad_color)


def crop_multi(
    image: np.ndarray,
    center: Sequence[float],
    sizes: Sequence[float],
    out_size: int,
    pad_color: Sequence[float] | None = None,
) -> np.ndarray:
    """Crops at several sizes around one centre: ``(len(sizes), out_size, out_size, 3)`` ``uint8``."""
    if pad_color is None:
        pad_color = cv2.mean(image)[:3]
    return np.stack([crop(image, center, s, out_size, pad_color) for s in sizes])


def crop_torch(
    image: torch.Tensor,
    center: Sequence[float],
    sizes: Sequence[float],
    out_size: int,
    pad_color: torch.Tensor | None = None,
) -> torch.Tensor:
    """Device-side :func:`crop_multi`: all sizes in one ``grid_sample`` call.

    ``image`` is a float ``(3, H, W)`` tensor on any device; returns a float
    ``(len(sizes), 3, out_size, out_size)`` tensor on the same device. Padding is the
    mean colour (computed on the device when ``pad_color`` is None).
    """
    if pad_color is None:
        pad_color = image.mean(dim=(1, 2))
    n = len(sizes)
    return crop_torch_many(image, [center] * n, sizes, out_size, pad_color.view(1, 3).expand(n, 3))


def crop_torch_many(
    image: torch.Tensor,
    centers: Sequence[Sequence[float]],
    sizes: Sequence[float],
    out_size: int,
    pad_colors: torch.Tensor,
) -> torch.Tensor:
    """Square crops of one image, each with its own centre ``(cx, cy)``, side (px) and padding colour
    (``pad_colors`` (N, 3) on the image's device): ``(N, 3, out_size, out_size)`` float, one ``grid_sample``
    call for every crop (several targets' scales at once). Outside the image the crop takes its padding
    colour, blended at the border by the same bilinear weights (sampled from a channel of ones)."""
    import torch

    _, h, w = image.shape
    n = len(sizes)
    dev = image.device
    s = torch.as_tensor(list(sizes), device=dev, dtype=torch.float32)
    c = torch.as_tensor(np.asarray(centers, dtype=np.float64).reshape(n, 2), device=dev, dtype=torch.float32)
    # Output pixel centres in source pixel coordinates (see _warp), then to [-1, 1]
    # with align_corners=False: u = (2 * (idx + 0.5) / W) - 1.
    j = torch.arange(out_size, device=dev, dtype=torch.float32) + 0.5
    offs = (j / out_size - 0.5).view(1, -1) * s.view(-1, 1)  # (n, out) continuous offsets
    return _grid_crops(image, (c[:, :1] + offs) * (2.0 / w) - 1.0, (c[:, 1:] + offs) * (2.0 / h) - 1.0, pad_colors)


def _grid_crops(image, gx, gy, pad_colors):
    """N crops of a float ``(3, H, W)`` tensor sampled on grids ``gx`` (N, out_W) x ``gy`` (N, out_H) (columns'
    and rows' positions in ``grid_sample``'s [-1, 1] coordinates): ``(N, 3, out_H, out_W)``. Outside the image
    each crop takes its padding colour (``pad_colors`` (N, 3)), blended at the border by the same bilinear
    weights (sampled from a channel of ones)."""
    import torch
    import torch.nn.functional as F

    n, ow, oh = gx.shape[0], gx.shape[1], gy.shape[1]
    dt = image.dtype
    grid = torch.stack([gx.view(n, 1, ow).expand(n, oh, ow), gy.view(n, oh, 1).expand(n, oh, ow)], dim=-1).to(dt)
    src = torch.cat([image, torch.ones_like(image[:1])]).unsqueeze(0).expand(n, -1, -1, -1)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, :3] + pad_colors.to(dt).view(n, 3, 1, 1) * (1 - out[:, 3:])


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of ``(N, 4)`` ``(x, y, w, h)`` box arrays, row by row."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(inter / union, 0.0, 1.0)


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance in pixels between the centres of ``(N, 4)`` box arrays."""
    ca = xywh_to_cxcywh(np.asarray(a, dtype=np.float64).reshape(-1, 4))[:, :2]
    cb = xywh_to_cxcywh(np.asarray(b, dtype=np.float64).reshape(-1, 4))[:, :2]
    return np.sqrt(((ca - cb) ** 2).sum(axis=1))
