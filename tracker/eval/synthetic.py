"""Synthetic tracking sequences: a textured target moving and changing scale over a
textured background. Used by the tests and to make the demo clip that ships with the
package (``tracker/data/demo.mp4``), so nothing here depends on third-party data.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["texture", "make_sequence"]


def texture(h: int, w: int, rng: np.random.Generator, blobs: int = 60) -> np.ndarray:
    """A BGR ``uint8`` image of random coloured ellipses over smooth noise."""
    base = cv2.resize(rng.integers(0, 256, (max(h // 16, 2), max(w // 16, 2), 3), dtype=np.uint8), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    img = base.copy()
    for _ in range(blobs):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(2, max(3, w // 8))), int(rng.integers(2, max(3, h // 8))))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
    return img


def make_sequence(n_frames: int = 60, size: tuple[int, int] = (320, 240), target: tuple[int, int] = (48, 36),
                  scale_range: tuple[float, float] = (0.8, 1.3), seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (BGR ``uint8``, ``size=(W, H)``) and ground-truth boxes ``(N, 4)`` ``(x, y, w, h)`` 0-based.

    The target follows a smooth Lissajous path and its size varies between
    ``scale_range`` times ``target=(w, h)``.
    """
    rng = np.random.default_rng(seed)
    W, H = size
    bg = texture(H, W, rng, blobs=80)
    tw, th = target
    obj = _framed_object(tw, th, rng)
    frames, boxes = [], []
    t = np.linspace(0, 2 * np.pi, n_frames)
    lo, hi = scale_range
    for k in range(n_frames):
        s = lo + (hi - lo) * 0.5 * (1 - np.cos(t[k]))
        w, h = tw * s, th * s
        cx = W / 2 + (W / 2 - w) * 0.7 * np.sin(t[k])
        cy = H / 2 + (H / 2 - h) * 0.6 * np.sin(2 * t[k])
        x, y = cx - w / 2, cy - h / 2
        frame = bg.copy()
        # Warp the object into place with sub-pixel accuracy.
        m = np.array([[w / obj.shape[1], 0, x], [0, h / obj.shape[0], y]], dtype=np.float64)
        mask = cv2.warpAffine(np.full(obj.shape[:2], 255, np.uint8), m, (W, H))
        warped = cv2.warpAffine(obj, m, (W, H))
        frame[mask > 127] = warped[mask > 127]
        frames.append(frame)
        boxes.append((x, y, w, h))
    return frames, np.array(boxes)


def make_absence_sequence(n_frames: int = 80, size: tuple[int, int] = (480, 360), target: tuple[int, int] = (48, 36),
                          absent: tuple[int, int] = (25, 45), distractor: bool = False, seed: int = 0,
                          background: np.ndarray | None = None,
                          looks: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """A target that leaves and comes back elsewhere: frames (BGR ``uint8``) and ground truth ``(N, 4)``,
    NaN rows on frames ``absent[0] .. absent[1] - 1`` where it is not in the picture. Before, it drifts
    slowly near the left third of the frame; after, near the right two-thirds, far outside the area a
    local search covers. ``distractor``: while it is away, another object of the same size and frame
    style (a white border around a different texture) moves in the middle of the picture.
    ``background`` (a BGR image, resized to ``size``) and ``looks`` (the target's and the distractor's
    images, resized to ``target``) replace the random textures, e.g. with photographs."""
    rng = np.random.default_rng(seed)
    W, H = size
    bg = texture(H, W, rng, blobs=80) if background is None else cv2.resize(background, (W, H),
                                                                             interpolation=cv2.INTER_AREA)
    tw, th = target
    objects = [_framed_object(tw, th, rng) for _ in range(2)] if looks is None else list(looks)
    frames, boxes = [], []
    for k in range(n_frames):
        frame = bg.copy()
        home = (0.25, 0.35) if k < absent[0] else (0.72, 0.65)
        cx = W * home[0] + 12 * np.sin(k / 6)
        cy = H * home[1] + 8 * np.cos(k / 5)
        box = (cx - tw / 2, cy - th / 2, float(tw), float(th))
        if absent[0] <= k < absent[1]:
            boxes.append((np.nan,) * 4)
            if distractor:
                _paste(frame, objects[1], (W * 0.5 - tw / 2 + 10 * np.sin(k / 4), H * 0.45 - th / 2, tw, th))
        else:
            boxes.append(box)
            _paste(frame, objects[0], box)
        frames.append(frame)
    return frames, np.array(boxes, dtype=np.float64)


def _paste(frame: np.ndarray, obj: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Warp ``obj`` into ``box`` (x, y, w, h) of ``frame`` in place, with sub-pixel accuracy."""
    x, y, w, h = box
    H, W = frame.shape[:2]
    m = np.array([[w / obj.shape[1], 0, x], [0, h / obj.shape[0], y]], dtype=np.float64)
    mask = cv2.warpAffine(np.full(obj.shape[:2], 255, np.uint8), m, (W, H))
    warped = cv2.warpAffine(obj, m, (W, H))
    frame[mask > 127] = warped[mask > 127]


def make_morph_sequence(n_frames: int = 90, size: tuple[int, int] = (480, 360), target: tuple[int, int] = (48, 36),
                        seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """A target whose appearance changes gradually, then a look-alike of its first appearance beside it:
    frames (BGR ``uint8``) and ground truth ``(N, 4)``. Its texture blends from one random texture to another
    over the first 60% of the frames; from then on an object with the first texture (the exemplar's look)
    moves 52 px to its right. A tracker that only compares with the first frame's exemplar moves to the
    look-alike; one that learns the target's current look online keeps it."""
    rng = np.random.default_rng(seed)
    W, H = size
    tw, th = target
    bg = texture(H, W, rng, blobs=80)
    looks = [_framed_object(tw, th, rng) for _ in range(2)]
    frames, boxes = [], []
    for k in range(n_frames):
        a = min(1.0, k / (0.6 * n_frames))
        frame = bg.copy()
        cx, cy = W * 0.3 + 80 * np.sin(k / 15), H * 0.5 + 40 * np.cos(k / 11)
        box = (cx - tw / 2, cy - th / 2, float(tw), float(th))
        if k >= 0.6 * n_frames:
            _paste(frame, looks[0], (cx + 52 - tw / 2, cy - th / 2 + 10 * np.sin(k / 5), tw, th))
        _paste(frame, cv2.addWeighted(looks[0], 1 - a, looks[1], a, 0), box)
        frames.append(frame)
        boxes.append(box)
    return frames, np.array(boxes)


def _framed_object(tw: int, th: int, rng: np.random.Generator) -> np.ndarray:
    """A target's look: a random texture at twice ``(tw, th)`` inside a white border."""
    obj = texture(th * 2, tw * 2, rng, blobs=12)
    cv2.rectangle(obj, (0, 0), (tw * 2 - 1, th * 2 - 1), (255, 255, 255), 3)
    return obj
