"""Adapters that let :class:`SiamFCTracker` drop into code written for other interfaces.

* :class:`GOT10kTracker` follows the GOT-10k toolkit's ``Tracker`` (``name``,
  ``is_deterministic``, ``init(image, box)``, ``update(image)``, ``track(img_files, box)``).
  The toolkit hands RGB PIL images and 0-based ``(x, y, w, h)`` boxes as numpy arrays.
* :class:`OpenCVStyleTracker` follows ``cv2.Tracker``: ``init(frame, box)``,
  ``update(frame) -> (ok, box)`` with BGR frames; ``ok`` is False while the target is lost.
"""
from __future__ import annotations

import time
from typing import Sequence

import cv2
import numpy as np

from ..core.siamfc import SiamFCTracker
from .video import read_image

__all__ = ["GOT10kTracker", "OpenCVStyleTracker"]


def _pil_rgb_to_bgr(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    return arr  # grayscale (or BGRA-like) arrays are handled by the tracker's input rules


class GOT10kTracker:
    """GOT-10k toolkit interface around a :class:`SiamFCTracker`."""

    def __init__(self, tracker: SiamFCTracker, name: str | None = None) -> None:
        self.tracker = tracker
        self.name = name or tracker.name
        self.is_deterministic = True

    def init(self, image, box: Sequence[float]) -> None:
        self.tracker.init(_pil_rgb_to_bgr(image), box)

    def update(self, image) -> np.ndarray:
        return np.array(self.tracker.update(_pil_rgb_to_bgr(image)).box)

    def track(self, img_files: Sequence[str], box: Sequence[float], visualize: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Track through image files; returns ``(boxes (N, 4), times (N,))`` like the toolkit.

        Times are seconds per frame for ``init``/``update`` only (image decoding excluded).
        """
        boxes = np.zeros((len(img_files), 4))
        times = np.zeros(len(img_files))
        boxes[0] = box
        for f, path in enumerate(img_files):
            frame = read_image(path)
            start = time.perf_counter()
            if f == 0:
                self.tracker.init(frame, box)
            else:
                boxes[f] = self.tracker.update(frame).box
            times[f] = time.perf_counter() - start
            if visualize:
                x, y, w, h = (int(round(v)) for v in boxes[f])
                cv2.rectangle(frame, (x, y), (x + w, y + h), (0, 0, 255), 2)
                cv2.imshow(self.name, frame)
                cv2.waitKey(1)
        return boxes, times


class OpenCVStyleTracker:
    """``cv2.Tracker``-style interface: ``init(frame, box)``, ``update(frame) -> (ok, box)``.

    Boxes are returned as floats ``(x, y, w, h)``; ``ok`` is False when the tracker's
    confidence says the target is lost. :meth:`getTrackingScore` gives that confidence.
    """

    def __init__(self, tracker: SiamFCTracker) -> None:
        self.tracker = tracker
        self._score = 1.0

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        self.tracker.init(frame, box)
        self._score = 1.0

    def update(self, frame: np.ndarray) -> tuple[bool, tuple[float, float, float, float]]:
        r = self.tracker.update(frame)
        self._score = r.score
        return not r.lost, r.box

    def getTrackingScore(self) -> float:  # noqa: N802 - OpenCV's spelling
        return self._score
