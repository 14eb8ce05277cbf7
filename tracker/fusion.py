"""Two networks on one target: a tracking-trained network (NanoTrack's) and the ImageNet one (siamfc-effnet).

They fail on different video (the tracking-trained one on crowds of look-alikes and long occlusions, the
ImageNet one on fast motion, rotation and small targets), so a frame's two answers carry information neither
has alone. :class:`FusionTracker` runs both frame loops side by side. Where their boxes agree (IoU at least
``agree_iou``) it reports the primary's box. Where they part, each network scores both candidates (the
response at a candidate's centre, from a search crop centred on it: :meth:`SiamFCTracker.score_at`), the
candidate with more support (primary's probability + ``weight`` x the secondary's relative score) wins, and
the tracker that lost is moved onto the winner's box (re-synchronised), so neither drifts off for good.

Cost: both networks on every frame, and four more search crops on the frames where they disagree.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .ops import iou
from .result import TrackResult
from .siamfc import SiamFCTracker

__all__ = ["FusionTracker", "FUSION_DEFAULTS"]

FUSION_DEFAULTS = {"primary": "nanotrack-v2", "secondary": "siamfc-effnet", "agree_iou": 0.3, "weight": 1.0}


class FusionTracker:
    """Two :class:`SiamFCTracker` s on one target (see the module docstring): ``init(frame, box)`` once, then
    ``update(frame) -> TrackResult`` per frame, as a single tracker. ``score`` and ``lost`` are the primary's
    (at the box reported)."""

    def __init__(self, primary: SiamFCTracker, secondary: SiamFCTracker, agree_iou: float = 0.3,
                 weight: float = 1.0, name: str | None = None) -> None:
        if not 0 <= agree_iou <= 1:
            raise ValueError(f"agree_iou must be in [0, 1], got {agree_iou}")
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.primary, self.secondary = primary, secondary
        self.agree_iou, self.weight = float(agree_iou), float(weight)
        self.name = name or f"{primary.name}+{secondary.name}"
        self.config = primary.config
        self.disagreements = 0  # frames where the boxes parted, since init
        self.switches = 0  # of those, frames where the secondary's box won

    @classmethod
    def from_pretrained(cls, primary: str = FUSION_DEFAULTS["primary"], secondary: str = FUSION_DEFAULTS["secondary"],
                        device: str = "auto", backend: str = "auto", threads: int | None = None,
                        agree_iou: float = FUSION_DEFAULTS["agree_iou"], weight: float = FUSION_DEFAULTS["weight"],
                        primary_config: dict | None = None, secondary_config: dict | None = None) -> "FusionTracker":
        """Both trackers from weights names or paths (:meth:`SiamFCTracker.from_pretrained`)."""
        a = SiamFCTracker.from_pretrained(primary, device=device, config=primary_config, backend=backend, threads=threads)
        b = SiamFCTracker.from_pretrained(secondary, device=device, config=secondary_config, backend=backend,
                                          threads=threads)
        return cls(a, b, agree_iou, weight)

    @property
    def backend(self) -> str:
        return self.primary.backend

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        """Start both trackers on ``box`` = ``(x, y, w, h)`` (0-based px) of BGR ``frame``."""
        self.primary.init(frame, box)
        self.secondary.init(frame, box)
        self.disagreements = self.switches = 0

    def update(self, frame: np.ndarray) -> TrackResult:
        """Both trackers' next step; where they part, the better-supported box (module docstring)."""
        a = self.primary.update(frame)
        b = self.secondary.update(frame)
        if float(iou(np.array([a.box]), np.array([b.box]))[0]) >= self.agree_iou:
            return a
        self.disagreements += 1
        boxes = (a.box, b.box)
        p = [self.primary.score_at(frame, box) for box in boxes]
        s = [self.secondary.score_at(frame, box) for box in boxes]
        support = [p[i] + self.weight * s[i] for i in range(2)]
        if support[1] > support[0]:
            self.switches += 1
            self.primary.relocate(b.box)
            score = p[1]
            return TrackResult(self.primary.box, score, score < self.primary.config.lost_threshold, a.state)
        self.secondary.relocate(a.box)
        return a
