"""What the tracker returns per frame."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrackResult", "TRACKING", "SEARCHING", "REACQUIRED"]

TRACKING, SEARCHING, REACQUIRED = "tracking", "searching", "reacquired"  # TrackResult.state


@dataclass(frozen=True)
class TrackResult:
    """One frame's output.

    ``box`` is ``(x, y, w, h)`` in 0-based pixels. ``score`` in [0, 1]: for networks with a calibrated score
    (NanoTrack's, the default) the network's probability that the target is in the box; for the ImageNet
    networks the response peak relative to the first frame's: the best match's similarity to the exemplar divided
    by the exemplar's similarity to itself in the frame it was taken from, clipped; with
    ``config.psr_score`` (on for siamfc-effnet) times the response's peak-to-sidelobe
    ratio relative to the first frame's, so that a flat or many-peaked response (an occluder,
    a look-alike, the target gone) scores lower than one clear match. Near 1 the target looks
    as it did at ``init``; it falls towards 0 as the target is occluded, leaves the view or is
    lost. ``lost`` is ``score < config.lost_threshold`` (chosen per weights file on selection
    data); the box is then the last estimate, not a detection.

    ``state``: ``"tracking"``; with ``config.long_term``, ``"searching"`` once the target has been
    lost for ``lost_frames`` frames in a row (``box`` is then the local search's best guess, as when
    lost in short-term mode, and the whole frame is searched for the target too; ``lost`` stays True
    until ``lost_frames`` frames in a row score at or above ``lost_threshold``) and ``"reacquired"``
    on the frame the whole-frame search found it again (``lost`` False).
    """

    box: tuple[float, float, float, float]
    score: float
    lost: bool
    state: str = TRACKING
