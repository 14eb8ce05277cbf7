"""Full-frame re-detection for long-term tracking (``TrackerConfig.long_term``).

When the target is lost, its exemplar is correlated with the whole frame at the target's last
scale. The network is fully convolutional, so this is the ordinary search done on a grid of
search crops ("tiles") whose response maps together cover every position of the frame: one
batch through the backbone, one correlation per tile. The best few peaks over all tiles are
scored again in a crop centred on each; the tracker re-acquires the best one that clears
``redetect_threshold`` there. While lost, the box stays where the target was last held.
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

__all__ = ["tile_centers", "candidates", "LongTermSearch"]

CANDIDATES = 3  # whole-frame peaks scored again in a centred crop per search


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


def candidates(responses: np.ndarray, centers: np.ndarray, x_sz: float, instance_sz: int, k: int,
               min_dist: float, stride: int = TOTAL_STRIDE, centre: float | None = None) -> list[tuple[float, np.ndarray]]:
    """The ``k`` highest responses over all tiles (``responses`` (T, R, R), raw) at least ``min_dist`` image px
    apart: ``[(peak, (x, y)), ...]``, best first, each the cell's centre in image px."""
    cells = _cells(centers, responses.shape[-1], x_sz, instance_sz, stride, centre).reshape(-1, 2)
    flat = responses.ravel()
    out: list[tuple[float, np.ndarray]] = []
    for i in np.argsort(flat)[::-1]:
        if all(np.hypot(*(cells[i] - w)) >= min_dist for _, w in out):
            out.append((float(flat[i]), cells[i]))
            if len(out) == k:
                break
    return out


class LongTermSearch:
    """The long-term steps of :class:`tracker.core.siamfc.SiamFCTracker` (``config.long_term``), kept beside the
    search geometry they use; the tracker calls them after each local step (``SiamFCTracker._after``)."""

    def _long_term(self, score: float, lost: bool) -> TrackResult:
        """After a local step (``lost``: its score below ``lost_threshold``, or once lost below
        ``redetect_threshold``): count the lost frames in a row; from ``lost_frames`` of them on, the target is
        also searched for over the whole frame (:meth:`_search_frame`) until a local step or that search holds
        it again (``REACQUIRED``)."""
        if not lost:
            was_lost = self._lost_run > 0
            self.state, self._lost_run = TRACKING, 0
            return TrackResult(self.box, score, False, REACQUIRED if was_lost else TRACKING)
        self._lost_run += 1
        if self._lost_run >= self.config.lost_frames:
            self.state = SEARCHING
        return TrackResult(self.box, score, True, self.state)

    def _search_frame(self, frame: np.ndarray, img: torch.Tensor | None, local: TrackResult) -> TrackResult:
        """After a lost local step (``local``) in the searching state, inside :meth:`_inference` with the frame
        on the device as ``img`` (torch pipeline) or None: the exemplar against the whole frame at
        the target's last scale (this module's grid of search crops in one batch; with
        ``search_tiles`` > 0, that many of them per frame, in turn, so a lost frame's cost is bounded). The best
        :data:`CANDIDATES` peaks (scoring at least ``lost_threshold`` there) are scored again in a search crop
        centred on each (with the first frame's exemplar kernel, unless ``template_lr`` changes it); the best that
        scores at least ``redetect_threshold`` there is re-acquired, else the local step stands (the box where it
        was last held)."""
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
        w_img, h_img = self._frame_size
        found = candidates(resp, centers, self.x_sz, cfg.instance_sz, CANDIDATES, float(self.target_sz.min()),
                           self.stride, self.centre_cell)
        # A tile sees a candidate off-centre with little context and can score it lower or higher than a local
        # search would: the best few are scored again in a crop centred on each.
        rescored = []
        for peak, where in found:
            if self._score_of(peak) < cfg.lost_threshold:
                break
            where = np.clip(where, [0, 0], [w_img, h_img])
            rescored.append((self._score_around(frame, img, where), where))
        score, where = max(rescored, key=lambda c: c[0], default=(self._score_of(found[0][0]), None))
        self.search_score = score  # how close the whole-frame search came to re-acquiring
        if where is None or score < cfg.redetect_threshold:
            return local
        self.center = where
        self.state, self._lost_run = TRACKING, 0
        return TrackResult(self.box, score, False, REACQUIRED)
