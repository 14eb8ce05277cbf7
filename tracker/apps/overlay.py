"""What the demos draw on a frame: the box (solid while held, dashed when lost), its score, and a
banner with the model, device, speed, confidence and state; for several targets each box in its
own colour with its id; the stand-in for a frame that could not be decoded."""
from __future__ import annotations

import re

import cv2
import numpy as np

from ..core.siamfc import TrackResult

__all__ = ["TRACKED_COLOR", "LOST_COLOR", "BANNER_COLOR", "TARGET_COLORS", "target_color", "draw_overlay",
           "draw_targets", "skipped_frame", "banner_text", "header_choices", "fps_text"]

TRACKED_COLOR = (0, 255, 0)  # BGR: solid box while the target is held
LOST_COLOR = (0, 0, 255)  # BGR: dashed box when the score says the target is lost
BANNER_COLOR = (40, 40, 40)
# BGR, one per target id in turn (several targets): bright, far from the banner's grey and from each other.
TARGET_COLORS = ((0, 255, 0), (255, 160, 0), (0, 200, 255), (255, 0, 255), (0, 255, 255), (255, 255, 0),
                 (128, 128, 255), (0, 128, 255), (255, 128, 128), (160, 255, 160))


def target_color(target_id: int) -> tuple[int, int, int]:
    """The colour of target ``target_id`` (ids from 1): :data:`TARGET_COLORS` in turn."""
    return TARGET_COLORS[(int(target_id) - 1) % len(TARGET_COLORS)]


def skipped_frame(last: np.ndarray, number: int) -> np.ndarray:
    """The output-video frame for source frame ``number`` (1-based) that could not be decoded: the
    last frame shown, darkened, saying so (its box-file line is :data:`tracker.apps.demo.SKIPPED_LINE`)."""
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


def _draw_box(img: np.ndarray, result: TrackResult, color: tuple, tag: str, scale: float, th: int, base: int,
              line: int) -> None:
    """One target's box (solid, or dashed when lost) and its tag on a dark label above it (below at the top)."""
    h = img.shape[0]
    x, y, bw, bh = result.box
    p1 = (int(round(x)), int(round(y)))
    p2 = (int(round(x + bw)) - 1, int(round(y + bh)) - 1)
    thick = max(2, int(round(2 * scale)))
    if result.lost:
        _dashed_rect(img, p1, p2, color, max(1, thick - 1))
    else:
        cv2.rectangle(img, p1, p2, color, thick, cv2.LINE_8)
    above = p1[1] - base - 3
    org = (max(p1[0], 2), above if above - th > line else min(p2[1] + th + 6, h - base))
    tw = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    cv2.rectangle(img, (org[0] - 2, org[1] - th - 2), (org[0] + tw + 2, org[1] + base), BANNER_COLOR, -1)
    _text(img, tag, org, scale, color)


def fps_text(fps: float) -> str:
    """The banner's speed: ``"-- fps"`` until it is measured (the first frame), then e.g. ``"24.8 fps"``."""
    return f"{fps:.1f} fps" if fps > 0 and np.isfinite(fps) else "-- fps"


def header_choices(model: str, device: str, fps: float, score: float | None = None) -> list[list[str]]:
    """The banner's parts from the fullest to the shortest: the device goes first, then the model, then the
    fps; the confidence (one target) stays."""
    tail = [fps_text(fps)] + ([f"conf {score:.2f}"] if score is not None else [])
    return [[f"{model} on {device}", *tail], [model, *tail], tail, tail[1:], []]


def banner_text(choices: list[list[str]], state: str, width: int, scale: float) -> tuple[str, int]:
    """The one-line header that fits ``width`` px: the first of ``choices`` (lists of parts, fullest first) that
    fits with ``state`` after it. Whether it fits is judged with room for a 4-digit fps and every digit as a
    0, so the header does not change as the numbers do. Returns the info text and the x of the state word."""
    def width_of(text: str) -> int:
        return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]

    def widest(text: str) -> str:
        return re.sub(r"\d", "0", re.sub(r"(\d+\.\d|--) fps", "0000.0 fps", text))

    for k, parts in enumerate(choices):
        info = "   ".join(parts)
        gap = "   " if info else ""
        if width_of(widest(info + gap + state)) + 12 <= width or k == len(choices) - 1:
            return info, 6 + width_of(info + gap) if info else 6
    return "", 6


def _banners(img: np.ndarray, choices: list[list[str]], state: str, state_color: tuple, keys: str | None, scale: float,
             base: int, line: int) -> None:
    """Top banner on one line of fixed height (:func:`banner_text`: the fullest of ``choices`` that fits, then
    ``state`` in its colour) and the key help at the bottom."""
    h, w = img.shape[:2]
    info, sx = banner_text(choices, state, w, scale)
    cv2.rectangle(img, (0, 0), (w - 1, line - 1), BANNER_COLOR, -1)
    if info:
        _text(img, info, (6, line - base - 2), scale)
    _text(img, state, (sx, line - base - 2), scale, state_color)
    if keys:
        cv2.rectangle(img, (0, h - line), (w - 1, h - 1), BANNER_COLOR, -1)
        _text(img, keys, (6, h - base - 2), scale)


def _metrics(img: np.ndarray) -> tuple[float, int, int, int]:
    """Text scale for this frame width, the text's height and baseline, and one text line's height (px)."""
    scale = float(np.clip(img.shape[1] / 960.0, 0.45, 1.0))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return scale, th, base, th + base + 4


def _state_word(result: TrackResult) -> str:
    """The banner's state: "tracking", "LOST", "LOST: searching the frame" (long-term mode) or "re-acquired"."""
    if result.state == "searching":
        return "LOST: searching the frame"
    if result.state == "reacquired":
        return "re-acquired"
    return "LOST" if result.lost else "tracking"


def draw_overlay(frame: np.ndarray, result: TrackResult, fps: float, model: str, device: str,
                 keys: str | None = None) -> np.ndarray:
    """A copy of ``frame`` with the box, a top banner (model, device, fps, confidence, state)
    and, when ``keys`` is given, a bottom line with the key help.

    A held target gets a solid :data:`TRACKED_COLOR` box; a lost one (``result.lost``) a
    dashed :data:`LOST_COLOR` box and the word "LOST", never a confident box on nothing.
    """
    img = frame.copy()
    scale, th, base, line = _metrics(img)
    color = LOST_COLOR if result.lost else TRACKED_COLOR
    _draw_box(img, result, color, f"lost {result.score:.2f}" if result.lost else f"{result.score:.2f}", scale, th,
              base, line)
    _banners(img, header_choices(model, device, fps, result.score), _state_word(result), color, keys, scale, base,
             line)
    return img


def draw_targets(frame: np.ndarray, results: dict[int, TrackResult], fps: float, model: str, device: str,
                 keys: str | None = None) -> np.ndarray:
    """:func:`draw_overlay` for several targets: a copy of ``frame`` with each target's box in its colour
    (:func:`target_color`), solid while held and dashed when lost, tagged ``#id score`` (``#id lost score``),
    and a banner with the model, device, fps and how many targets are tracked and lost."""
    img = frame.copy()
    scale, th, base, line = _metrics(img)
    for target_id, r in results.items():
        tag = f"#{target_id} {'searching ' if r.state == 'searching' else 'lost ' if r.lost else ''}{r.score:.2f}"
        _draw_box(img, r, target_color(target_id), tag, scale, th, base, line)
    lost = sum(r.lost for r in results.values())
    n = len(results)
    state = f"{n} target{'s' if n != 1 else ''}" + (f", {lost} LOST" if lost else "")
    _banners(img, header_choices(model, device, fps), state, LOST_COLOR if lost else TRACKED_COLOR, keys, scale,
             base, line)
    return img
