"""One interface for every tracker the harness runs: ours and OpenCV's.

A tracker spec is a short name: ``csrt``, ``kcf``, ``mil``, ``nano``, ``vit`` (OpenCV's;
``nano``/``vit`` load their ONNX models from the peers folder), or anything else, which is
our SiamFC loaded by weights name or path (:meth:`SiamFCTracker.from_pretrained`), or an export
folder; ``NAME@onnxruntime`` runs NAME's network on ONNX Runtime; ``NAME:key=value,...`` sets tracking
parameters (``siamfc-effnet:long_term=true``). A spec may carry a label, ``LABEL=SPEC``, to name its
results folder (default: the short name, or the weights file's stem, with the overrides).

Every tracker answers ``init(frame, box)`` and ``update(frame) -> (x, y, w, h)`` on BGR
``uint8`` frames with 0-based pixel boxes, and after each call holds in ``confidence`` how sure it
is that the target is in the box, in [0, 1] (1 after ``init``): our score (0 while a long-term tracker
searches the whole frame); TrackerNano's and TrackerVit's tracking score; for OpenCV's other trackers 1
or 0 as they report success or failure. ``settings()`` gives ``(key, info)``: what decides its results (compared
before finished results are reused, :mod:`tracker.eval.provenance`) and what is only recorded beside them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

__all__ = ["EvalTracker", "OPENCV_TRACKERS", "PEERS_ENV", "default_peers_dir", "label_of", "make_tracker",
           "TrackerSpecError", "is_deterministic"]

PEERS_ENV = "SIAMTRACK_PEERS"
OPENCV_TRACKERS = ("csrt", "kcf", "mil", "nano", "vit")
_PEER_FILES = {
    "nano": {"backbone": "nanotrack_v2/nanotrack_backbone_sim.onnx", "neckhead": "nanotrack_v2/nanotrack_head_sim.onnx"},
    "vit": {"net": "vittrack/object_tracking_vittrack_2023sep.onnx"},
}
# OpenCV's MIL draws random samples; the others give the same output on every run.
_NON_DETERMINISTIC = {"mil"}


class TrackerSpecError(ValueError):
    """A tracker spec names nothing we can build (the message says why)."""


class EvalTracker(Protocol):
    name: str
    is_deterministic: bool

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None: ...

    def update(self, frame: np.ndarray) -> tuple[float, float, float, float]: ...

    confidence: float

    def settings(self) -> tuple[dict, dict]: ...


def default_peers_dir() -> Path:
    """``$SIAMTRACK_PEERS``, else ``../shared/peers`` relative to the current directory."""
    return Path(os.environ.get(PEERS_ENV) or Path("..") / "shared" / "peers")


def _split(spec: str) -> tuple[str | None, str]:
    label, sep, rest = spec.partition("=")
    if not sep or ":" in label:  # no label; an '=' after ':' belongs to a key=value override
        return None, spec.strip()
    return label.strip(), rest.strip()


def label_of(spec: str) -> str:
    """The results-folder name of a spec: its label, its OpenCV short name, or the weights stem."""
    label, target = _split(spec)
    if label:
        return label
    if target.lower() in OPENCV_TRACKERS:
        return target.lower()
    from ..core.config import parse_model_spec

    weights, overrides = parse_model_spec(target)
    base = Path(weights).stem if weights.endswith(".pt") else Path(weights).name
    return base + "".join(f"_{k}={v}" for k, v in overrides.items())


def is_deterministic(spec: str) -> bool:
    """Whether a spec's tracker gives the same boxes on every run (decides GOT-10k repetitions)."""
    return _split(spec)[1].lower() not in _NON_DETERMINISTIC


class OpenCVTracker:
    """An OpenCV ``cv2.Tracker*``; when OpenCV reports a failure, the last box is kept."""

    def __init__(self, kind: str, peers_dir: str | Path | None = None, name: str | None = None) -> None:
        kind = kind.lower()
        if kind not in OPENCV_TRACKERS:
            raise TrackerSpecError(f"unknown OpenCV tracker {kind!r}; choose from {', '.join(OPENCV_TRACKERS)}")
        self.kind = kind
        self.name = name or kind
        self.is_deterministic = kind not in _NON_DETERMINISTIC
        if kind in _PEER_FILES:
            peers = Path(peers_dir) if peers_dir is not None else default_peers_dir()
            files = {k: peers / v for k, v in _PEER_FILES[kind].items()}
            missing = [str(f) for f in files.values() if not f.is_file()]
            if missing:
                raise TrackerSpecError(f"tracker {kind!r}: model file(s) not found: {', '.join(missing)} "
                                       f"(set --peers or ${PEERS_ENV})")
            self._files = files
        self._make()  # fail now, not in the first sequence, if this OpenCV build lacks it
        self._last = (0.0, 0.0, 0.0, 0.0)
        self.confidence = 1.0

    def _make(self):
        if self.kind == "nano":
            p = cv2.TrackerNano_Params()
            p.backbone, p.neckhead = str(self._files["backbone"]), str(self._files["neckhead"])
            return cv2.TrackerNano_create(p)
        if self.kind == "vit":
            p = cv2.TrackerVit_Params()
            p.net = str(self._files["net"])
            return cv2.TrackerVit_create(p)
        factory = getattr(cv2, f"Tracker{self.kind.upper()}_create", None)
        if factory is None:
            raise TrackerSpecError(f"tracker {self.kind!r}: this OpenCV build has no cv2.Tracker{self.kind.upper()}_create "
                                   "(install opencv-contrib-python)")
        return factory()

    def settings(self) -> tuple[dict, dict]:
        """``(key, info)``: the tracker's name and its model files' sha256; OpenCV's version and the files' paths."""
        from ..networks.weights import sha256_of

        files = getattr(self, "_files", {})
        key = {"kind": "opencv", "tracker": self.kind, "models": {k: sha256_of(f) for k, f in files.items()}}
        return key, {"opencv": cv2.__version__, "models": {k: str(Path(f).resolve()) for k, f in files.items()}}

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        # A fresh OpenCV tracker per sequence; OpenCV wants integer pixel boxes.
        self._tracker = self._make()
        x, y, w, h = (float(v) for v in box)
        self._tracker.init(frame, (int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h)))))
        self._last = (x, y, w, h)
        self.confidence = 1.0

    def update(self, frame: np.ndarray) -> tuple[float, float, float, float]:
        ok, box = self._tracker.update(frame)
        ok = bool(ok and box[2] > 0 and box[3] > 0)
        if ok:
            self._last = tuple(float(v) for v in box)  # type: ignore[assignment]
        score = self._tracker.getTrackingScore() if ok and self.kind in ("nano", "vit") else float(ok)
        self.confidence = float(np.clip(score, 0.0, 1.0))
        return self._last


class SiamFCEvalTracker:
    """Our :class:`~tracker.core.siamfc.SiamFCTracker` behind the harness interface."""

    def __init__(self, name_or_path: str, device: str = "auto", name: str | None = None,
                 threads: int | None = None) -> None:
        from ..core.config import parse_model_spec
        from ..core.siamfc import BACKENDS, SiamFCTracker
        from ..networks.weights import WeightsError, expand_preset

        try:
            weights, overrides = parse_model_spec(name_or_path)
        except ValueError as e:
            raise TrackerSpecError(f"tracker {name_or_path!r}: {e}") from None
        backend = "torch"
        for b in BACKENDS:  # NAME@BACKEND (a path may hold '@' itself)
            if weights.endswith(f"@{b}"):
                weights, backend = weights[: -len(b) - 1], b
        try:
            self.tracker = SiamFCTracker.from_pretrained(weights, device="cpu" if backend == "onnxruntime" else device,
                                                         config=expand_preset(weights, overrides) or None,
                                                         backend=backend, threads=threads)
        except (WeightsError, ImportError, ValueError) as e:
            raise TrackerSpecError(f"tracker {name_or_path!r}: {e}") from None
        self.name = name or label_of(name_or_path)
        self.is_deterministic = True
        self.confidence = 1.0
        self._spec, self._weights = name_or_path, weights

    def settings(self) -> tuple[dict, dict]:
        """``(key, info)``: the weights' sha256 (an export folder's: its ``model.json``'s, which lists every
        file's), the back-end and the tracking parameters in effect; the weights' path, the device and the arch."""
        from ..backends.onnx_net import META_NAME, is_export
        from ..networks.weights import resolve, sha256_of

        t = self.tracker
        if is_export(self._weights):
            path = Path(self._weights)
            source = {"export_sha256": sha256_of(path / META_NAME)}
        else:
            path = resolve(self._weights).path
            source = {"weights_sha256": sha256_of(path)}
        key = {"kind": "siamfc", **source, "backend": t.backend, "config": t.config.to_dict()}
        return key, {"spec": self._spec, "weights": str(path.resolve()), "device": str(t.device),
                     "arch": getattr(t.net, "arch", None)}

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        self.tracker.init(frame, box)
        self.confidence = 1.0

    def update(self, frame: np.ndarray) -> tuple[float, float, float, float]:
        r = self.tracker.update(frame)
        # A long-term tracker's box on a lost frame is the last held one, not a detection, and its score is that of
        # a candidate it did not take: no confidence in the box.
        self.confidence = 0.0 if r.lost and self.tracker.config.long_term else r.score
        return r.box


def make_tracker(spec: str, peers_dir: str | Path | None = None, device: str = "auto",
                 threads: int | None = None) -> EvalTracker:
    """Build the tracker a spec names (see the module docstring); ``threads``: ONNX Runtime's, for ours
    on that back-end (torch and OpenCV take theirs process-wide)."""
    label, target = _split(spec)
    if not target:
        raise TrackerSpecError(f"tracker spec {spec!r}: empty")
    name = label or label_of(target)
    if target.lower() in OPENCV_TRACKERS:
        return OpenCVTracker(target, peers_dir, name)
    return SiamFCEvalTracker(target, device, name, threads)
