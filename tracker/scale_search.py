"""The scale of a located target, from small crops centred on it (``TrackerConfig.scale_crop``).

SiamFC's pyramid embeds a full search crop per scale and lets the best peak over all of them choose
both the place and the scale. Here the place comes from the current scale's search crop alone (one
network pass at the full search size); then ``scale_num`` small crops of ``scale_crop`` px, with the
same pixels per image pixel as the search crop and sides ``scale_step ** k`` times the current one,
are cut around the new centre and embedded in one batch. Each scale's score is the exemplar's
best correlation over the central 3 x 3 cells of its crop (the target sits at the centre, within
the place estimate's half-cell error), times SiamFC's scale penalty for the side scales; the best
scale moves the size as SiamFC's does (``scale_lr``). Three 97 px crops cost about a third of three
193 px ones, so a frame costs about two thirds of the joint pyramid's (DSST locates first and
then estimates the scale the same way, with a separate filter).

The correlation is the raw sum of the kernel's products (the head's affine map, ``out_scale * x +
bias``, is left out): the penalty then scales the similarity itself, as SiamFC's near-zero bias did.
Works on numpy arrays (ONNX Runtime) and torch tensors (any device).
"""
from __future__ import annotations

import numpy as np

try:  # a deployment install (numpy, OpenCV, ONNX Runtime) runs without torch
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

__all__ = ["centre_scores", "crop_sizes", "choose"]

RADIUS = 1  # cells around the centre whose best correlation scores a scale


def crop_sizes(x_sz: float, factors: np.ndarray, scale_crop: int, instance_sz: int) -> np.ndarray:
    """Sides (image px) of the scale crops: ``scale_crop`` px crops at the search crop's resolution
    (``instance_sz`` px for ``x_sz`` image px), one per size factor."""
    return x_sz * np.asarray(factors, dtype=np.float64) * scale_crop / instance_sz


def centre_scores(xf, zf, radius: int = RADIUS) -> np.ndarray:
    """Best raw correlation of kernel ``zf`` (1, C, k, k) over the central (2 radius + 1)^2 positions
    of each feature map of ``xf`` (S, C, H, W), H, W >= k + 2 radius: (S,) float64 on the host."""
    k, h, w = zf.shape[-1], xf.shape[-2], xf.shape[-1]
    if min(h, w) < k + 2 * radius:
        raise ValueError(f"scale crop features {h}x{w} are smaller than the kernel ({k}) plus {radius} cells "
                         f"each side: raise scale_crop")
    top, left = (h - k) // 2 - radius, (w - k) // 2 - radius
    sub = xf[:, :, top:top + k + 2 * radius, left:left + k + 2 * radius]
    if torch is not None and torch.is_tensor(sub):
        resp = F.conv2d(sub.float(), zf.float())  # (S, 1, 2r+1, 2r+1)
        return resp.flatten(1).amax(1).double().cpu().numpy()
    win = np.lib.stride_tricks.sliding_window_view(np.asarray(sub, dtype=np.float32), (k, k), axis=(2, 3))
    resp = np.einsum("scijkl,ckl->sij", win, np.asarray(zf, dtype=np.float32)[0])
    return resp.reshape(len(resp), -1).max(1).astype(np.float64)


def choose(scores: np.ndarray, penalties: np.ndarray) -> int:
    """Index of the best scale: the highest score times its penalty (1 for the current scale)."""
    return int(np.argmax(np.asarray(scores) * np.asarray(penalties)))
