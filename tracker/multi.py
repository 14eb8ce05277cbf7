"""Several targets in one stream: one batched network pass per frame.

:class:`MultiTracker` keeps one :class:`tracker.siamfc.SiamFCTracker` per target, all sharing one
network (:meth:`SiamFCTracker.spawn`: no copy of the weights). A frame's path: every target's
search crops are cut into one batch (OpenCV on the CPU, one ``grid_sample`` on the device), the
backbone embeds the whole batch in one call, and each target's head (its own exemplar kernel),
peak and box update run on its slice of the features: the steps of
:meth:`SiamFCTracker.update` after its backbone call, so every target gets the boxes a tracker of
its own would give (to float rounding of the batched backbone), and its own scale, template
update and ``lost`` flag. With ``shared=True`` the backbone instead embeds each pyramid level once
over the frame region the targets' searches cover (:mod:`tracker.shared`), and each target's
features are its windows of those maps: cheaper with many targets, boxes close to (not equal to)
one tracker per target's.

Ids are ints from 1, in the order targets are added, and never reused after :meth:`MultiTracker.remove`.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

try:  # a deployment install (numpy, OpenCV, ONNX Runtime) runs without torch
    import torch
except ImportError:
    torch = None

from . import ops
from .config import TrackerConfig
from .device import CPU_TORCH_BATCH, embed_in_batches, to_host
from .inputs import as_bgr_frame
from .shared import plan_shared
from .siamfc import SiamFCTracker, TrackResult

__all__ = ["MultiTracker", "CPU_TORCH_BATCH"]


class MultiTracker:
    """Track any number of targets: ``add(frame, box) -> id``, ``remove(id)``, ``update(frame) -> {id: TrackResult}``.

    Frames are BGR ``uint8`` ``(H, W, 3)`` arrays, boxes ``(x, y, w, h)`` 0-based pixels, as for
    :class:`SiamFCTracker`. Targets can be added and removed between any two frames.
    """

    def __init__(self, tracker: SiamFCTracker, batched: bool = True, max_batch: int | None = None,
                 shared: bool = False) -> None:
        """``tracker``: its network, tracking parameters, device and back-end serve every target (its own
        target, if it has one, is not tracked). ``batched=False`` updates the targets one after another,
        one network call each, as N separate trackers would (same results; for comparison).
        ``max_batch``: search crops per backbone call (None: :data:`CPU_TORCH_BATCH` with torch on a CPU, where
        the cost per crop grows with larger batches, else all of them).
        ``shared=True``: one backbone pass per pyramid level over the frame region the targets' searches
        cover instead of one per crop (:mod:`tracker.shared`): cheaper with many targets near each other;
        boxes close to, not equal to, one tracker per target's; scale pyramids only (no box-head boxes)."""
        if not isinstance(tracker, SiamFCTracker):
            raise TypeError(f"MultiTracker needs a SiamFCTracker, got {type(tracker).__name__}")
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}")
        if shared and not batched:
            raise ValueError("shared=True needs batched=True (the shared pass embeds every target at once)")
        if shared and (tracker.uses_box_head or tracker.sizes_from_head):
            fix = ("use a network such as siamfc-effnet" if getattr(tracker.net, "own_head", False)
                   else "pass box_head=False for this box-head network")
            raise ValueError(f"shared=True needs the scale pyramid: {fix}")
        if shared and not getattr(tracker.net, "any_size", True):
            raise ValueError("shared=True needs an ONNX export whose backbone takes any size: export it again "
                             "(siamtrack export)")
        self._proto = tracker
        self.batched = bool(batched)
        self.shared = bool(shared)
        cpu_torch = tracker.backend == "torch" and str(tracker.device) == "cpu"
        self.max_batch = max_batch or (CPU_TORCH_BATCH if cpu_torch else None)
        self._targets: dict[int, SiamFCTracker] = {}
        self._next_id = 1

    @classmethod
    def from_pretrained(cls, *args, batched: bool = True, shared: bool = False, **kwargs) -> "MultiTracker":
        """Weights and options as :meth:`SiamFCTracker.from_pretrained` takes them."""
        return cls(SiamFCTracker.from_pretrained(*args, **kwargs), batched=batched, shared=shared)

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
            if self.shared and uniform:
                xf, where = self._shared_features([t for _, t in targets], frame, img)
            else:
                x = first._cut(frame, img, [t._plan(s) for (_, t), s in zip(targets, sizes)], first.config.instance_sz)
                xf, where = embed_in_batches(first.net, x, self.max_batch), [None] * len(targets)
            if uniform and getattr(first.net, "many_kernels", True) and not (first.uses_features or first.uses_box_head):
                return dict(zip([i for i, _ in targets], _steps_batched([t for _, t in targets], frame, img, xf, where)))
            start = 0
            for (i, t), s, w in zip(targets, sizes, where):
                results[i] = t._step(frame, img, xf[start:start + len(s)], w)
                start += len(s)
        return results

    def _shared_features(self, targets: list[SiamFCTracker], frame: np.ndarray, img) -> tuple:
        """The shared pass (:mod:`tracker.shared`): every target's search features (its crops' order, target 0's
        first, as the batched crops' would be) from one backbone call per region size, and each target's
        searches' geometry (``where`` of :meth:`SiamFCTracker._step`)."""
        first, cfg = targets[0], targets[0].config
        plan = plan_shared(np.array([t.center for t in targets]), np.array([t.x_sz for t in targets]),
                           np.stack([t.search_sizes() / t.x_sz for t in targets]), cfg.instance_sz, cfg.scale_step,
                           first.stride)
        feats: list = [None] * len(plan.regions)
        for size in dict.fromkeys(r.size for r in plan.regions):  # one call per size (crop-sized ones batched)
            idx = [k for k, r in enumerate(plan.regions) if r.size == size]
            if first.pipeline == "torch":
                x = torch.cat([ops.crop_region_torch(img, r.origin, r.scale, r.size, first._avg_t)
                               for r in (plan.regions[k] for k in idx)])
            else:
                x = np.stack([ops.crop_region(frame, r.origin, r.scale, r.size, first.avg_color)
                              for r in (plan.regions[k] for k in idx)])
            out = embed_in_batches(first.net, first._as_input(x), self.max_batch)
            for j, k in enumerate(idx):
                feats[k] = out[j]
        n = feats[0].shape[-1] - (plan.regions[0].size[0] - cfg.instance_sz) // first.stride  # a crop's cells
        windows = [feats[g][:, r:r + n, c:c + n] for w in plan.windows for g, r, c in w]
        xf = torch.stack(windows) if torch is not None and torch.is_tensor(windows[0]) else np.stack(windows)
        where = []
        for t, centres, factors in zip(targets, plan.centres, plan.factors):
            if len(factors) != len(t.scale_ids):  # the feature pyramid: one crop, zoomed to every scale
                centres, factors = np.repeat(centres, len(t.scale_factors), axis=0), factors[0] * t.scale_factors
            where.append((centres, factors))
        return xf, where


def _steps_batched(targets: list[SiamFCTracker], frame: np.ndarray, img, xf, where: list) -> list[TrackResult]:
    """:meth:`SiamFCTracker._step` for every target at once, where the head is plain cross-correlation
    (torch, or an ONNX export with ``heads.onnx``; no correlation filter, memory or box-head boxes): one
    head call with every target's kernel on its own search features ``xf`` (target 0's crops first), one
    peak search for all of them (on the device, or per target from one copy to the host), then each
    target's own box update and state (``where``: each target's searches' geometry, or None)."""
    first = targets[0]
    zf = np.concatenate([t.zf for t in targets]) if first.backend == "onnxruntime" else torch.cat([t.zf for t in targets])
    resp, edges = first._respond_with(xf, zf)
    if first.pipeline == "torch":
        peaks = first._peaks_device(resp)  # scale, row, col, peak, peak-to-sidelobe ratio per target
    else:
        maps = to_host(resp)[:, 0].reshape(len(targets), -1, *resp.shape[-2:])
        peaks = []
        for t, m in zip(targets, maps):  # (S, R, R) each
            scale_id, row, col, peak = t._peak_host(m, m)
            peaks.append((scale_id, row, col, peak, m[scale_id]))  # the chosen map: _sharpness takes its PSR
    edges = None if edges is None else to_host(edges)
    out = []
    for k, (t, (scale_id, row, col, peak, sharp)) in enumerate(zip(targets, peaks)):
        t._place(int(scale_id), float(row), float(col), None if edges is None else edges[k:k + 1], where[k])
        out.append(t._after(frame, img, float(peak) * t._sharpness(sharp)))
    return out
