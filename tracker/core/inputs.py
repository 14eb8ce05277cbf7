"""Validation of what users hand the tracker: frames and boxes.

Documented handling: a grayscale ``(H, W)`` or ``(H, W, 1)`` ``uint8`` frame is expanded
to BGR and a 4-channel BGRA frame loses its alpha channel; anything else that is not a
BGR ``uint8`` image (floats, 16-bit, other channel counts) is rejected with a ``TypeError``
or ``ValueError`` that says what was received.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

__all__ = ["as_bgr_frame", "as_box"]


def as_bgr_frame(frame: object, name: str = "frame") -> np.ndarray:
    """Return ``frame`` as a contiguous BGR ``uint8`` ``(H, W, 3)`` array, or raise."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array (BGR uint8, as cv2.imread gives), got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating):
            hint = ("for a float image scale by its range first: np.clip(img * 255, 0, 255).astype(np.uint8) when "
                    "values are in 0..1, np.clip(img, 0, 255).astype(np.uint8) when they are in 0..255")
        elif frame.dtype == np.uint16:
            hint = "for a 16-bit image: (img // 257).astype(np.uint8)"
        else:
            hint = "convert it to BGR uint8 (0-255) first"
        raise TypeError(f"{name}: expected dtype uint8 (BGR, 0-255), got {frame.dtype}; {hint}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    elif not (frame.ndim == 3 and frame.shape[2] == 3):
        raise ValueError(f"{name}: expected shape (H, W, 3) BGR, got {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"{name}: empty image of shape {frame.shape}")
    return np.ascontiguousarray(frame)


def as_box(box: Sequence[float], image_size: tuple[int, int] | None = None, name: str = "box",
           min_inside: float = 0.0) -> tuple[float, float, float, float]:
    """Validate an ``(x, y, w, h)`` box (0-based pixels) and return it as floats.

    Raises ``ValueError`` for a box that is not four finite numbers, has ``w <= 0`` or
    ``h <= 0``, or (when ``image_size=(W, H)`` is given) lies entirely outside the image, or has
    less than ``min_inside`` of its area inside it (the demos ask for half: a box mostly outside
    the frame, such as ``0,0,5000,5000`` on a 360x240 frame, holds no target to follow; the message
    suggests the box clipped to the frame).
    """
    try:
        vals = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected four numbers (x, y, w, h), got {box!r}") from None
    if len(vals) != 4:
        raise ValueError(f"{name}: expected four numbers (x, y, w, h), got {len(vals)}: {box!r}")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{name}: contains NaN or infinity: {tuple(vals)}")
    x, y, w, h = vals
    if w <= 0 or h <= 0:
        raise ValueError(f"{name}: width and height must be positive, got w={w}, h={h}")
    if image_size is not None:
        iw, ih = image_size
        if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
            raise ValueError(f"{name}: {tuple(vals)} lies outside the {iw}x{ih} image")
        x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, float(iw)), min(y + h, float(ih))
        inside = (x1 - x0) * (y1 - y0) / (w * h)
        if inside < min_inside:
            clipped = ",".join(f"{v:g}" for v in (x0, y0, x1 - x0, y1 - y0))
            share = f"{inside:.1%}" if inside < 0.1 else f"{inside:.0%}"
            raise ValueError(f"{name}: {tuple(vals)} extends past the {iw}x{ih} image: only {share} of its "
                             f"area is inside, and at least {min_inside:.0%} must be; the box clipped to the image "
                             f"is {clipped}")
    return x, y, w, h
