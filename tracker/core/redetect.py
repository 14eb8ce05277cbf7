"""Full-frame re-detection for long-term tracking (``TrackerConfig.long_term``).

When the target is lost, its exemplar is correlated with the whole frame at the target's last
scale. The network is fully convolutional, so this is the ordinary search done on a grid of
search crops ("tiles") whose response maps together cover every position of the frame: one
batch through the backbone, one correlation per tile. The tracker re-acquires the best peak over
all tiles when its score clears ``redetect_threshold``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .device import CPU_TORCH_BATCH, ONNX_BATCH, embed_in_batches
from .device import to_host as _host
from .ops import TOTAL_STRIDE
from .result import REACQUIRED, SEARCHING, TRACKING, TrackResult

if TYPE_CHECKING:
    import torch

__all__ = ["tile_centers", "locate", "LongTermSearch"]


def tile_centers(frame_size: tuple[int, int], x_sz: float, instance_sz: int, response_size: int,
                 stride: int = TOTAL_STRIDE) -> np.ndarray:
    """Centres ``(T, 2)`` (x, y, image px) of the search crops (side ``x_sz`` image px, resized to
    ``instance_sz``) whose ``response_size`` x ``response_size`` response cells, ``stride`` crop
    px apart, together cover a frame of ``frame_size`` = (width, height): an even grid, tiles at most one
    response span apart."""
    w, h = frame_size
    span = response_size * stride * x_sz / instance_sz  # image px one tile's response covers
    nx, ny = max(1, math.ceil(w / span)), max(1, math.ceil(h / span))
    xs = (np.arange(nx) + 0.5) * w / nx
    ys = (np.arange(ny) + 0.5) * h / ny
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


def _cells(centers: np.ndarray, r: int, x_sz: float, instance_sz: int, stride: int = TOTAL_STRIDE,
           centre: float | None = None) -> np.ndarray:
    """Image positions (T, R, R, 2) of the response cells (``stride`` crop px apart; cell ``centre`` at the tile's
    centre, None: the middle one) of tiles centred at ``centers``."""
    offs = (np.arange(r, dtype=np.float64) - ((r - 1) / 2 if centre is None else centre)) * stride * x_sz / instance_sz
    gx, gy = np.meshgrid(offs, offs)  # gx varies along columns
    return centers[:, None, None, :] + np.stack([gx, gy], axis=-1)[None]


def locate(responses: np.ndarray, centers: np.ndarray, x_sz: float, instance_sz: int, stride: int = TOTAL_STRIDE,
           centre: float | None = None) -> tuple[float, np.ndarray]:
    """The highest response over all tiles (``responses`` (T, R, R), raw) and where it is in the image:
    ``(peak, (x, y))``, the cell's centre in image px (the tracker refines it on the next frames)."""
    cells = _cells(centers, responses.shape[-1], x_sz, instance_sz, stride, centre)
    t, row, col = np.unravel_index(int(np.argmax(responses)), responses.shape)
    return float(responses[t, row, col]), cells[t, row, col]


class LongTermSearch:
    """The long-term steps of :class:`tracker.core.siamfc.SiamFCTracker` (``config.long_term``), kept beside the
    search geometry they use; the tracker calls them after each local step (``SiamFCTracker._after``)."""

    def _long_term(self, score: float, lost: bool) -> TrackResult:
        """After a local step: count the lost frames in a row; from ``lost_frames`` of them on, the target is
        also searched for over the whole frame (:meth:`_search_frame`) until ``lost_frames`` local steps in a
        row hold it again, or the whole-frame search re-acquires it (hysteresis both ways: a score flickering
        about ``lost_threshold`` neither restarts nor ends a search)."""
        if not lost:
            if self.state == SEARCHING:
                self._held_run += 1
                if self._held_run < self.config.lost_frames:
                    return TrackResult(self.box, score, True, SEARCHING)
            self.state, self._lost_run, self._held_run = TRACKING, 0, 0
            return TrackResult(self.box, score, False, TRACKING)
        self._held_run = 0
        self._lost_run += 1
        if self._lost_run >= self.config.lost_frames:
            self.state = SEARCHING
        return TrackResult(self.box, score, True, self.state)

    def _search_frame(self, frame: np.ndarray, img: torch.Tensor | None, local: TrackResult) -> TrackResult:
        """After a lost local step (``local``) in the searching state, inside :meth:`_inference` with the frame
        on the device as ``img`` (torch pipeline) or None: the exemplar against the whole frame at
        the target's last scale (this module's grid of search crops in one batch; with
        ``search_tiles`` > 0, that many of them per frame, in turn, so a lost frame's cost is bounded); the
        best peak is re-acquired when it scores at least ``redetect_threshold``, else the local step stands."""
        cfg = self.config
        centers = tile_centers(self._frame_size, self.x_sz, cfg.instance_sz, self.upscale_sz // cfg.response_up,
                               self.stride)
        if 0 < cfg.search_tiles < len(centers):
            turn = (self._search_turn + np.arange(cfg.search_tiles)) % len(centers)
            self._search_turn = int(turn[-1] + 1) % len(centers)
            centers = centers[turn]
        x = self._cut(frame, img, [self._plan([self.x_sz], c) for c in centers], cfg.instance_sz)
        max_batch = (ONNX_BATCH if self.backend == "onnxruntime" else
                     CPU_TORCH_BATCH if self.device.type == "cpu" else None)  # all tiles at once on a GPU
        resp = _host(self.net.respond(embed_in_batches(self.net, x, max_batch), self.zf)[0])[:, 0]
        peak, where = locate(resp, centers, self.x_sz, cfg.instance_sz, self.stride, self.centre_cell)
        score = self._score_of(peak)
        self.search_score = score  # how close the whole-frame search came to re-acquiring
        if score < cfg.redetect_threshold:
            return local
        w_img, h_img = self._frame_size
        self.center = np.clip(where, [0, 0], [w_img, h_img])
        self.state, self._lost_run, self._held_run = TRACKING, 0, 0
        return TrackResult(self.box, score, False, REACQUIRED)
