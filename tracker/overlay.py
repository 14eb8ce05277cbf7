"""What the demos draw on a frame: the box (solid while held, dashed when lost), its score, and a
banner with the model, device, speed, confidence and state; the stand-in for a frame that could
not be decoded."""
from __future__ import annotations

import cv2
import numpy as np

from .siamfc import TrackResult

__all__ = ["TRACKED_COLOR", "LOST_COLOR", "BANNER_COLOR", "draw_overlay", "skipped_frame"]

TRACKED_COLOR = (0, 255, 0)  # BGR: solid box while the target is held
LOST_COLOR = (0, 0, 255)  # BGR: dashed box when the score says the target is lost
BANNER_COLOR = (40, 40, 40)


def skipped_frame(last: np.ndarray, number: int) -> np.ndarray:
    """The output-video frame for source frame ``number`` (1-based) that could not be decoded: the
    last frame shown, darkened, saying so (its box-file line is :data:`tracker.demo.SKIPPED_LINE`)."""
    img = (last // 3).astype(np.uint8)
    _text(img, f"frame {number}: could not be decoded, skipped", (10, max(30, img.shape[0] // 2)),
          max(0.4, img.shape[1] / 1200), LOST_COLOR)
    return img


def _dashed_rect(img: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color: tuple, thickness: int,
                 dash: int = 8) -> None:
    (x1, y1), (x2, y2) = p1, p2
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False), (y1, y2, x2, False)):
        for s in range(a, b, 2 * dash):
            e = min(s + dash, b)
            q1, q2 = ((s, fixed), (e, fixed)) if horizontal else ((fixed, s), (fixed, e))
            cv2.line(img, q1, q2, color, thickness, cv2.LINE_8)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color: tuple = (255, 255, 255)) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def draw_overlay(frame: np.ndarray, result: TrackResult, fps: float, model: str, device: str,
                 keys: str | None = None) -> np.ndarray:
    """A copy of ``frame`` with the box, a top banner (model, device, fps, confidence, state)
    and, when ``keys`` is given, a bottom line with the key help.

    A held target gets a solid :data:`TRACKED_COLOR` box; a lost one (``result.lost``) a
    dashed :data:`LOST_COLOR` box and the word "LOST", never a confident box on nothing.
    """
    img = frame.copy()
    h, w = img.shape[:2]
    scale = float(np.clip(w / 960.0, 0.45, 1.0))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    line = th + base + 4  # one text line's height in px
    x, y, bw, bh = result.box
    p1 = (int(round(x)), int(round(y)))
    p2 = (int(round(x + bw)) - 1, int(round(y + bh)) - 1)
    thick = max(2, int(round(2 * scale)))
    if result.lost:
        _dashed_rect(img, p1, p2, LOST_COLOR, max(1, thick - 1))
        tag, color = f"lost {result.score:.2f}", LOST_COLOR
    else:
        cv2.rectangle(img, p1, p2, TRACKED_COLOR, thick, cv2.LINE_8)
        tag, color = f"{result.score:.2f}", TRACKED_COLOR
    above = p1[1] - base - 3
    org = (max(p1[0], 2), above if above - th > line else min(p2[1] + th + 6, h - base))
    tw = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    cv2.rectangle(img, (org[0] - 2, org[1] - th - 2), (org[0] + tw + 2, org[1] + base), BANNER_COLOR, -1)
    _text(img, tag, org, scale, color)
    # Top banner: model and device, fps, confidence and the state, on one or two lines.
    info = f"{model} on {device}   {fps:5.1f} fps   conf {result.score:.2f}"
    state = "LOST" if result.lost else "tracking"
    one_line = cv2.getTextSize(f"{info}   {state}", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] + 12 <= w
    cv2.rectangle(img, (0, 0), (w - 1, line * (1 if one_line else 2) - 1), BANNER_COLOR, -1)
    _text(img, info, (6, line - base - 2), scale)
    sx = 6 + cv2.getTextSize(info + "   ", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] if one_line else 6
    _text(img, state, (sx, line * (1 if one_line else 2) - base - 2), scale, color)
    if keys:
        cv2.rectangle(img, (0, h - line), (w - 1, h - 1), BANNER_COLOR, -1)
        _text(img, keys, (6, h - base - 2), scale)
    return img
