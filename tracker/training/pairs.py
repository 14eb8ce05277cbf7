"""SiamFC training pairs: an exemplar and a search crop of the same target.

A :class:`Track` is one target through some frames (a video sequence, or a single
still image, in which case both crops come from that image under different
augmentation). :class:`PairSampler` draws two frames a bounded gap apart where the
target is visible and sensibly sized, crops the 127 px exemplar and 255 px search
region around it with SiamFC's context rule, random stretch and shift, and applies
colour jitter (optionally gamma and colour casts, for illumination changes), grayscale
and blur. Crops are BGR ``uint8``; the target is centred in
both (up to the shift), which is what the response-map labels assume.
:meth:`PairSampler.sample_with_box` also returns where the target lies in the search crop,
for training a box head (usually with a larger ``shift`` and ``scale_jitter``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..core import ops
from ..io.video import read_image

__all__ = ["Track", "PairConfig", "PairSampler", "valid_boxes"]


@dataclass
class Track:
    """One target: ``frames`` are image paths or BGR arrays, ``boxes`` (N, 4) 0-based ``(x, y, w, h)``
    with NaN rows where the target is absent; ``visible`` (N,) bool."""

    name: str
    frames: list
    boxes: np.ndarray
    visible: np.ndarray | None = None
    image_sizes: np.ndarray | None = None  # (N, 2) (W, H) when known, for the size filter

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.frames) != len(self.boxes):
            raise ValueError(f"track {self.name}: {len(self.frames)} frames but {len(self.boxes)} boxes")
        vis = np.all(np.isfinite(self.boxes), axis=1) & (np.nan_to_num(self.boxes[:, 2]) > 0) & (np.nan_to_num(self.boxes[:, 3]) > 0)
        self.visible = vis if self.visible is None else (np.asarray(self.visible, bool) & vis)


@dataclass(frozen=True)
class PairConfig:
    """Pair sampling and augmentation settings (sizes in pixels)."""

    exemplar_sz: int = 127
    instance_sz: int = 255
    context: float = 0.5
    max_gap: int = 10  # frames apart, in the track's own indexing
    stretch: float = 0.05  # random relative size change of each crop
    shift: float = 4.0  # max random shift of the search crop centre, in output pixels
    min_side: float = 6.0  # boxes smaller than this (px) are not used
    max_aspect: float = 4.0
    min_area_frac: float = 1e-4
    max_area_frac: float = 0.6
    gray_prob: float = 0.25
    blur_prob: float = 0.2
    jitter: float = 0.25  # colour jitter strength (brightness, contrast, saturation)
    gamma: float = 0.0  # illumination: gamma drawn log-uniformly from [exp(-gamma), exp(gamma)]
    color_cast: float = 0.0  # per-channel gain drawn from [1 - color_cast, 1 + color_cast]
    scale_jitter: float = 0.0  # search crop only: target size times exp(U(-s, s)), for box-head training
    negative_prob: float = 0.0  # chance that the search crop shows another track's target (a negative pair)

    def __post_init__(self) -> None:
        for name in ("negative_prob", "gray_prob", "blur_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"PairConfig: {name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("shift", "scale_jitter", "stretch", "jitter", "gamma", "color_cast", "context"):
            if getattr(self, name) < 0:
                raise ValueError(f"PairConfig: {name} must be >= 0, got {getattr(self, name)}")


def valid_boxes(boxes: np.ndarray, image_sizes: np.ndarray | None, cfg: PairConfig) -> np.ndarray:
    """Mask of boxes fit for training: visible, not tiny, not too elongated, sensible area."""
    b = np.nan_to_num(np.asarray(boxes, dtype=np.float64), nan=0.0)
    w, h = b[:, 2], b[:, 3]
    ok = (w >= cfg.min_side) & (h >= cfg.min_side)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.maximum(w / h, h / w)
    ok &= aspect <= cfg.max_aspect
    if image_sizes is not None:
        frac = (w * h) / (image_sizes[:, 0] * image_sizes[:, 1])
        ok &= (frac >= cfg.min_area_frac) & (frac <= cfg.max_area_frac)
    return ok


class PairSampler:
    """Draws augmented (exemplar, search) crop pairs from a list of tracks."""

    def __init__(self, tracks: Sequence[Track], cfg: PairConfig | None = None, cache_images: bool = True) -> None:
        self.cfg = cfg or PairConfig()
        self.tracks = []
        self.usable: list[np.ndarray] = []
        for t in tracks:
            ok = t.visible & valid_boxes(t.boxes, t.image_sizes, self.cfg)
            if ok.any():
                self.tracks.append(t)
                self.usable.append(np.flatnonzero(ok))
        if not self.tracks:
            raise ValueError("PairSampler: no track has a usable (visible, sensibly sized) box")
        self._cache: dict[str, np.ndarray] | None = {} if cache_images else None

    def __len__(self) -> int:
        return len(self.tracks)

    def image(self, frame) -> np.ndarray:
        if isinstance(frame, np.ndarray):
            return frame
        if self._cache is not None and frame in self._cache:
            return self._cache[frame]
        img = read_image(frame)
        if self._cache is not None:
            self._cache[frame] = img
        return img

    def pick_frames(self, rng: np.random.Generator, k: int) -> tuple[int, int]:
        """Two usable frame indices of track ``k`` at most ``max_gap`` apart (possibly equal for stills)."""
        idx = self.usable[k]
        a = int(rng.choice(idx))
        near = idx[np.abs(idx - a) <= self.cfg.max_gap]
        others = near[near != a]
        b = int(rng.choice(others)) if len(others) else a
        return (a, b) if rng.random() < 0.5 else (b, a)

    def sample(self, rng: np.random.Generator, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One pair: exemplar (127, 127, 3) and search (255, 255, 3) BGR uint8 crops."""
        z, x, _ = self.sample_with_box(rng, k)
        return z, x

    def sample_with_box(self, rng: np.random.Generator, k: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One pair and the target's box ``(x, y, w, h)`` in search-crop pixels (float64, 0-based);
        the box is all NaN for a negative pair (the search crop shows another track's target)."""
        cfg = self.cfg
        if k is None:
            k = int(rng.integers(len(self.tracks)))
        t = self.tracks[k]
        a, b = self.pick_frames(rng, k)
        z, _ = self._crop(rng, self.image(t.frames[a]), t.boxes[a], cfg.exemplar_sz, 1.0, 0.0, 0.0)
        negative = cfg.negative_prob > 0 and len(self.tracks) > 1 and rng.random() < cfg.negative_prob
        if negative:
            t, b = self._other(rng, k)
        x, box = self._search_crop(rng, t, b)
        if negative:
            box = np.full(4, np.nan)
        return self._augment(rng, z), self._augment(rng, x), box

    def _search_crop(self, rng, t: Track, b: int) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        return self._crop(rng, self.image(t.frames[b]), t.boxes[b], cfg.instance_sz, cfg.instance_sz / cfg.exemplar_sz,
                          cfg.shift, cfg.scale_jitter)

    def _other(self, rng, k: int) -> tuple[Track, int]:
        """A usable frame of a track other than ``k``."""
        j = int(rng.integers(len(self.tracks) - 1))
        j += j >= k
        return self.tracks[j], int(rng.choice(self.usable[j]))

    def sample_batch(self, rng: np.random.Generator, batch_size: int, boxes: bool = False) -> tuple[np.ndarray, ...]:
        """``batch_size`` pairs from distinct tracks where possible: (B, 127, 127, 3), (B, 255, 255, 3),
        and with ``boxes`` the (B, 4) target boxes in search-crop pixels."""
        ks = rng.choice(len(self.tracks), size=batch_size, replace=batch_size > len(self.tracks))
        pairs = [self.sample_with_box(rng, int(k)) for k in ks]
        return tuple(np.stack([p[i] for p in pairs]) for i in range(3 if boxes else 2))

    def _crop(self, rng, img, box, out_sz, ratio, shift, scale_jitter) -> tuple[np.ndarray, np.ndarray]:
        cx, cy, w, h = ops.xywh_to_cxcywh(box)
        size = ops.context_size(w, h, self.cfg.context) * ratio
        size *= 1 + rng.uniform(-self.cfg.stretch, self.cfg.stretch)
        if scale_jitter:
            size *= float(np.exp(rng.uniform(-scale_jitter, scale_jitter)))
        if shift:
            d = rng.uniform(-shift, shift, 2) * size / out_sz
            cx, cy = cx + d[0], cy + d[1]
        a = out_sz / size  # crop px per image px
        in_crop = np.array([(box[0] - (cx - size / 2)) * a, (box[1] - (cy - size / 2)) * a, w * a, h * a])
        return ops.crop(img, (cx, cy), size, out_sz), in_crop

    def _augment(self, rng, img: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        out = img.astype(np.float32)
        j = cfg.jitter
        if j:
            out *= 1 + rng.uniform(-j, j)  # brightness
            mean = out.mean()
            out = (out - mean) * (1 + rng.uniform(-j, j)) + mean  # contrast
            gray = out.mean(axis=2, keepdims=True)
            out = (out - gray) * (1 + rng.uniform(-j, j)) + gray  # saturation
        if cfg.color_cast:
            out *= 1 + rng.uniform(-cfg.color_cast, cfg.color_cast, 3).astype(np.float32)
        if cfg.gamma:
            g = float(np.exp(rng.uniform(-cfg.gamma, cfg.gamma)))
            out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** g
        if rng.random() < cfg.gray_prob:
            out[:] = out.mean(axis=2, keepdims=True)
        out = np.clip(out, 0, 255).astype(np.uint8)
        if rng.random() < cfg.blur_prob:
            out = cv2.GaussianBlur(out, (5, 5), float(rng.uniform(0.3, 1.5)))
        return out
