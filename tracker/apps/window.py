"""The demos' window: showing frames, the keys, and dragging or clicking targets.

Keys: SPACE pause/resume; ``r`` re-select the target (one target: drag a new box, ENTER or
SPACE; ``c`` cancels); ``a`` add a target (drag its box); ``d`` then a click on a box removes that
target; ``q`` or Esc quit.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from ..core.multi import MultiTracker
from ..core.siamfc import TrackResult
from ..io.video import FPSMeter

__all__ = ["WINDOW", "Window", "interact", "target_at"]

WINDOW = "siamtrack"
KEY_QUIT = {ord("q"), ord("Q"), 27}
KEY_PAUSE = {ord(" ")}
KEY_RESELECT = {ord("r"), ord("R")}
KEY_ADD = {ord("a"), ord("A")}
KEY_DELETE = {ord("d"), ord("D")}
KEY_CANCEL = {ord("c"), ord("C"), 27}

Box = tuple[float, float, float, float]


class Window:
    """The OpenCV window, its keys and mouse."""

    def __init__(self) -> None:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self._click: tuple[int, int] | None = None

    def show(self, img: np.ndarray, wait_ms: int = 1) -> int:
        cv2.imshow(WINDOW, img)
        return cv2.waitKey(wait_ms) & 0xFF

    def closed(self) -> bool:
        try:
            return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def select(self, frame: np.ndarray) -> Box | None:
        """Let the user drag a box on ``frame``; ``None`` if cancelled."""
        x, y, w, h = cv2.selectROI(WINDOW, frame, True, False, False)
        return (float(x), float(y), float(w), float(h)) if w > 0 and h > 0 else None

    def select_many(self, frame: np.ndarray) -> list[Box]:
        """Let the user drag any number of boxes on ``frame`` (ENTER or SPACE after each, Esc when done)."""
        rois = cv2.selectROIs(WINDOW, frame, True, False, False)
        return [(float(x), float(y), float(w), float(h)) for x, y, w, h in np.reshape(rois, (-1, 4)) if w > 0 and h > 0]

    def click(self, img: np.ndarray) -> tuple[int, int] | None:
        """Show ``img`` until the user clicks it (returns the point, image px) or presses ``c``/Esc (None)."""
        self._click = None

        def on_mouse(event, x, y, flags, param):  # noqa: ARG001
            if event == cv2.EVENT_LBUTTONDOWN:
                self._click = (x, y)

        cv2.setMouseCallback(WINDOW, on_mouse)
        try:
            while self._click is None:
                if self.show(img, 20) in KEY_CANCEL or self.closed():
                    return None
            return self._click
        finally:
            cv2.setMouseCallback(WINDOW, lambda *a: None)

    def close(self) -> None:
        try:
            cv2.destroyWindow(WINDOW)
            cv2.waitKey(1)
        except cv2.error:
            pass


def target_at(results: dict[int, TrackResult], point: tuple[float, float]) -> int | None:
    """The id of the smallest box in ``results`` that holds ``point`` (x, y), or None."""
    px, py = point
    inside = [(w * h, i) for i, r in results.items() for x, y, w, h in [r.box] if x <= px <= x + w and y <= py <= y + h]
    return min(inside)[1] if inside else None


def interact(window: Window, tracker: MultiTracker, frame: np.ndarray, results: dict[int, TrackResult], fps: float,
             n: int, meter: FPSMeter, draw: Callable[..., np.ndarray], can_edit: bool,
             say: Callable[[str], None] = print) -> tuple[dict[int, TrackResult], bool]:
    """Show frame ``n`` (``draw(frame, results, fps, keys)``) and handle the keys: SPACE pauses here until
    pressed again, ``r`` re-selects the only target, ``a`` adds a target and ``d`` + a click removes one
    (``can_edit``: else they say why not). Returns the (possibly changed) results and whether to quit."""
    keys = "SPACE pause   r reselect   " + ("a add   d delete   " if can_edit else "") + "q/Esc quit"
    key = window.show(draw(frame, results, fps, keys))
    paused = False
    while True:
        if key in KEY_QUIT or window.closed():
            return results, True
        if key in KEY_PAUSE:
            paused = not paused
            say(f"{'paused' if paused else 'resumed'} at frame {n}")
            meter.reset()  # the pause is not tracking time
        elif key in KEY_RESELECT:
            if len(results) > 1:
                say(f"r re-selects the only target; with {len(results)}, press d to remove one and a to add one")
            else:
                say(f"re-select at frame {n}: drag a box around the target, then press ENTER or SPACE (c cancels)")
                new = window.select(frame)
                if new is not None:
                    tracker.clear()
                    results = {tracker.add(frame, new): TrackResult(new, 1.0, False)}
                    say("reselected target at frame {}: {:.0f},{:.0f},{:.0f},{:.0f}".format(n, *new))
                else:
                    say(f"reselection cancelled at frame {n}")
        elif key in KEY_ADD | KEY_DELETE and not can_edit:
            say("adding and removing targets needs the multi-target box file: run with --mot "
                "(the x,y,w,h,score file holds one target)")
        elif key in KEY_ADD:
            say(f"add at frame {n}: drag a box around the new target, then press ENTER or SPACE (c cancels)")
            new = window.select(frame)
            if new is not None:
                target_id = tracker.add(frame, new)
                results = {**results, target_id: TrackResult(new, 1.0, False)}
                say("added target #{} at frame {}: {:.0f},{:.0f},{:.0f},{:.0f}".format(target_id, n, *new))
            else:
                say(f"adding cancelled at frame {n}")
        elif key in KEY_DELETE:
            say(f"delete at frame {n}: click the target to remove (c or Esc cancels)")
            point = window.click(draw(frame, results, fps, "click a target to remove it   c/Esc cancel"))
            target_id = None if point is None else target_at(results, point)
            if target_id is None:
                say(f"no target removed at frame {n}" + ("" if point is None else f": no box at {point[0]},{point[1]}"))
            else:
                tracker.remove(target_id)
                results = {i: r for i, r in results.items() if i != target_id}
                say(f"removed target #{target_id} at frame {n}")
        if not paused:
            return results, False
        key = window.show(draw(frame, results, fps, keys.replace("SPACE pause", "PAUSED: SPACE resume")), 50)
