"""Several targets in one stream: one batched network pass per frame.

:class:`MultiTracker` keeps one :class:`tracker.core.siamfc.SiamFCTracker` per target, all sharing one
network (:meth:`SiamFCTracker.spawn`: no copy of the weights). A frame's path: every target's
search crops are cut into one batch (OpenCV on the CPU, one ``grid_sample`` on the device), the
backbone embeds the whole batch in one call, and each target's head (its own exemplar kernel),
peak and box update run on its slice of the features: the steps of
:meth:`SiamFCTracker.update` after its backbone call, so every target gets the boxes a tracker of
its own would give (to float rounding of the batched backbone), and its own scale, template
update and ``lost`` flag.

Ids are ints from 1, in the order targets are added, and never reused after :meth:`MultiTracker.remove`.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

try:  # a deployment install (numpy, OpenCV, ONNX Runtime) runs without torch
    import torch
except ImportError:
    torch = None

from .config import TrackerConfig
from .device import CPU_TORCH_BATCH, ONNX_BATCH, embed_in_batches, to_host
from .inputs import as_bgr_frame
from .siamfc import SiamFCTracker, TrackResult

__all__ = ["MultiTracker", "CPU_TORCH_BATCH", "ONNX_BATCH"]



class MultiTracker:
    """Track any number of targets: ``add(frame, box) -> id``, ``remove(id)``, ``update(frame) -> {id: TrackResult}``.

    Frames are BGR ``uint8`` ``(H, W, 3)`` arrays, boxes ``(x, y, w, h)`` 0-based pixels, as for
    :class:`SiamFCTracker`. Targets can be added and removed between any two frames.
    """

    def __init__(self, tracker: SiamFCTracker, batched: bool = True, max_batch: int | None = None) -> None:
        """``tracker``: its network, tracking parameters, device and back-end serve every target (its own
        target, if it has one, is not tracked). ``batched=False`` updates the targets one after another,
        one network call each, as N separate trackers would (same results; for comparison).
        ``max_batch``: search crops per backbone call (None: :data:`CPU_TORCH_BATCH` with torch on a CPU, where
        the cost per crop grows with larger batches; :data:`ONNX_BATCH` on ONNX Runtime, whose memory grows with
        them; else all of them)."""
        if not isinstance(tracker, SiamFCTracker):
            raise TypeError(f"MultiTracker needs a SiamFCTracker, got {type(tracker).__name__}")
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}")
        self._proto = tracker
        self.batched = bool(batched)
        cpu_torch = tracker.backend == "torch" and str(tracker.device) == "cpu"
        onnx = tracker.backend == "onnxruntime"
        self.max_batch = max_batch or (CPU_TORCH_BATCH if cpu_torch else ONNX_BATCH if onnx else None)
        self._targets: dict[int, SiamFCTracker] = {}
        self._next_id = 1

    @classmethod
    def from_pretrained(cls, *args, batched: bool = True, **kwargs) -> "MultiTracker":
        """Weights and options as :meth:`SiamFCTracker.from_pretrained` takes them."""
        return cls(SiamFCTracker.from_pretrained(*args, **kwargs), batched=batched)

    # -- what it runs -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._proto.name

    @property
    def device(self):
        return self._proto.device

    @property
    def backend(self) -> str:
        return self._proto.backend

    @property
    def config(self) -> TrackerConfig:
        return self._proto.config

    # -- targets ------------------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        """Ids of the targets tracked now, in the order they were added."""
        return list(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __contains__(self, target_id: object) -> bool:
        return target_id in self._targets

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def box(self, target_id: int) -> tuple[float, float, float, float]:
        """Target ``target_id``'s current box ``(x, y, w, h)``, 0-based px."""
        return self._get(target_id).box

    def add(self, frame: np.ndarray, box: Sequence[float]) -> int:
        """Start tracking the object in ``box`` of ``frame`` (the stream's current frame: the next
        :meth:`update` moves it with the others); returns its new id."""
        frame = as_bgr_frame(frame)
        size = (frame.shape[1], frame.shape[0])
        if self._targets:
            current = next(iter(self._targets.values()))._frame_size
            if size != current:
                raise ValueError(f"frame: {size[0]}x{size[1]}, but the targets tracked now are on "
                                 f"{current[0]}x{current[1]} frames; remove them first for a new stream")
        target = self._proto.spawn()
        target.init(frame, box)
        target_id = self._next_id
        self._next_id += 1
        self._targets[target_id] = target
        return target_id

    def remove(self, target_id: int) -> None:
        """Stop tracking ``target_id``; its id is not given to a later target."""
        self._get(target_id)
        del self._targets[target_id]

    def clear(self) -> None:
        """Remove every target (ids keep counting up)."""
        self._targets.clear()

    def _get(self, target_id: int) -> SiamFCTracker:
        try:
            return self._targets[target_id]
        except KeyError:
            raise KeyError(f"no target with id {target_id!r}; tracking {self.ids or 'none'}") from None

    # -- the frame loop -----------------------------------------------------------------------

    def update(self, frame: np.ndarray) -> dict[int, TrackResult]:
        """Locate every target in the next frame: ``{id: TrackResult}`` in the order they were added
        (empty when there are none)."""
        if not self._targets:
            return {}
        targets = list(self._targets.items())
        first = targets[0][1]
        frame = first._check_frame(frame, "MultiTracker.update")
        if not self.batched:
            return {i: t.update(frame) for i, t in targets}
        # Every target's local search in one batch; a lost target searching the whole frame (long_term) then
        # runs that search on its own, inside its _step, as a single tracker does.
        results = {}
        for _, t in targets:
            t._begin_frame()
        with first._inference():
            img = first._to_device(frame) if first.pipeline == "torch" else None
            sizes = [t.search_sizes() for _, t in targets]
            # scale_every > 1: targets added on different frames search their whole pyramids on different frames
            uniform = len({len(s) for s in sizes}) == 1
            x = first._cut(frame, img, [t._plan(s) for (_, t), s in zip(targets, sizes)], first.config.instance_sz)
            xf = embed_in_batches(first.net, x, self.max_batch)
            if uniform and getattr(first.net, "many_kernels", True) and not first.uses_box_head:
                return dict(zip([i for i, _ in targets], _steps_batched([t for _, t in targets], frame, img, xf)))
            start = 0
            for (i, t), s in zip(targets, sizes):
                results[i] = t._step(frame, img, xf[start:start + len(s)])
                start += len(s)
        return results

def _steps_batched(targets: list[SiamFCTracker], frame: np.ndarray, img, xf) -> list[TrackResult]:
    """:meth:`SiamFCTracker._step` for every target at once, where the head is plain cross-correlation
    (torch, or an ONNX export with ``heads.onnx``; no box-head boxes): one head call with every target's
    kernel on its own search features ``xf`` (target 0's crops first), one peak search for all of them
    (on the device, or per target from one copy to the host), then each target's own box update and state."""
    first = targets[0]
    zf = np.concatenate([t.zf for t in targets]) if first.backend == "onnxruntime" else torch.cat([t.zf for t in targets])
    resp, _ = first._respond_with(xf, zf)
    if first.pipeline == "torch":
        peaks = first._peaks_device(resp)  # scale, row, col, peak, peak-to-sidelobe ratio per target
    else:
        maps = to_host(resp)[:, 0].reshape(len(targets), -1, *resp.shape[-2:])
        peaks = []
        for t, m in zip(targets, maps):  # (S, R, R) each
            scale_id, row, col, peak = t._peak_host(m)
            peaks.append((scale_id, row, col, peak, m[scale_id]))  # the chosen map: _sharpness takes its PSR
    out = []
    for t, (scale_id, row, col, peak, sharp) in zip(targets, peaks):
        t._move(int(scale_id), float(row), float(col))
        out.append(t._after(frame, img, float(peak) * t._sharpness(sharp)))
    return out
