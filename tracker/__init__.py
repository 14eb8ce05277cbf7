"""siamtrack: a real-time SiamFC-style Siamese visual object tracker.

Images are BGR ``uint8`` arrays as OpenCV gives them; boxes are ``(x, y, w, h)`` in
0-based pixels. Start with :meth:`SiamFCTracker.from_pretrained` (one target) or
:meth:`MultiTracker.from_pretrained` (several, one batched network pass per frame).
"""
from .core import (
    ops,  # crops and box conversions, shared by the tracker, training and evaluation
)
from .core.config import TrackerConfig
from .core.multi import MultiTracker
from .core.siamfc import SiamFCTracker, TrackResult
from .networks.weights import WeightsError

__all__ = ["SiamFCTracker", "MultiTracker", "TrackResult", "TrackerConfig", "WeightsError", "ops"]
__version__ = "0.1.0"
