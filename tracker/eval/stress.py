"""A long-term stress set derived from an OTB-layout set or a GOT-10k split: targets that disappear and come back.

``siamtrack eval stress --root SRC --out DST [--seed S]`` writes, for each source sequence (``SRC`` in the OTB
layout, or a GOT-10k root whose ``train/list.txt`` lists them), up to two new OTB-layout sequences whose ground
truth is NaN on the frames where the target cannot be seen (where the source's is, too):

* ``<seq>-occ`` (occlusion): on one or two spans of frames the target's ground-truth box, plus a
  margin of 25% of its size on every side, is painted over with a flat colour or a random texture
  (one per span), so the target is invisible while it keeps moving.
* ``<seq>-oov`` (out of view): a virtual camera, a window half the frame's width and height, follows
  the target (centred on it, kept inside the frame), then on one span pans to the frame's corner
  farthest from the target, stays there, and pans back with an offset, so the target leaves the
  picture and re-enters elsewhere in it. Frames are the window's crops; the ground truth moves with
  the window and is NaN where less than half of the target's box is inside it. Sequences whose
  target is too large for the window (a side over half of it) get no ``-oov``.

Deterministic: the spans, colours, textures and offsets come from ``numpy.random.default_rng`` seeded
with the seed and the sequence's name. Unchanged frames are copied byte for byte; changed ones are
written as JPEG (quality 95). ``stress.json`` in ``DST`` lists what was made and where the absences are.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import cv2
import numpy as np

from ..core import ops
from ..io.video import read_image
from .datasets import Sequence, load_got10k, load_otb, write_otb_sequence
from .runner import write_atomic
from .synthetic import texture

__all__ = ["KINDS", "make_stress_set", "source_sequences", "occlusion_spans", "occlude", "camera_path"]

KINDS = ("occlusion", "out-of-view")
MARGIN = 0.25  # occluder margin, fraction of the box's width/height on each side
WINDOW = 0.5  # virtual camera: window side / frame side
MAX_TARGET = 0.5  # out of view: largest target side / window side
PAN = 8  # frames a pan away or back takes


def _rng(seed: int, name: str, kind: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{name}/{kind}".encode())])


def occlusion_spans(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Frame spans ``[start, end)`` (0-based) to hide the target on: two for sequences of 150 frames or more,
    else one; each 15-40 frames (at most a quarter of the sequence), after frame 10, 20 or more frames apart."""
    count = 2 if n >= 150 else 1
    spans: list[tuple[int, int]] = []
    for _ in range(50):  # draws until the spans fit
        spans = []
        for _ in range(count):
            length = int(rng.integers(15, 41))
            length = max(5, min(length, n // 4))
            start = int(rng.integers(10, max(11, n - length - 5)))
            spans.append((start, min(n - 1, start + length)))
        spans.sort()
        if all(b[0] - a[1] >= 20 for a, b in zip(spans, spans[1:])):
            return spans
    return spans[:1]


def occlude(frame: np.ndarray, box: np.ndarray, patch: np.ndarray | tuple) -> np.ndarray:
    """A copy of ``frame`` with ``box`` (x, y, w, h) plus :data:`MARGIN` on each side painted with ``patch``:
    a BGR colour or a texture image (resized to the painted area)."""
    out = frame.copy()
    x, y, w, h = box
    H, W = frame.shape[:2]
    x0, y0 = int(max(0, np.floor(x - MARGIN * w))), int(max(0, np.floor(y - MARGIN * h)))
    x1, y1 = int(min(W, np.ceil(x + w + MARGIN * w))), int(min(H, np.ceil(y + h + MARGIN * h)))
    if x1 <= x0 or y1 <= y0:
        return out
    if isinstance(patch, np.ndarray):
        out[y0:y1, x0:x1] = cv2.resize(patch, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    else:
        out[y0:y1, x0:x1] = patch
    return out


def camera_path(gt: np.ndarray, frame_size: tuple[int, int], span: tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
    """Top-left corners ``(N, 2)`` (int) of the virtual camera's window (:data:`WINDOW` of the frame) over
    the sequence: centred on the target, away in the farthest corner from ``span[0]`` to ``span[1]`` (the pan
    out takes :data:`PAN` frames before it, the pan back as many after), then centred on the target plus an
    offset of up to a quarter of the window, so the target comes back elsewhere in the picture."""
    W, H = frame_size
    ww, wh = int(W * WINDOW), int(H * WINDOW)
    centres = ops.xywh_to_cxcywh(gt)[:, :2]
    offset = np.array([rng.uniform(-0.25, 0.25) * ww, rng.uniform(-0.25, 0.25) * wh])
    corners = []
    last = centres[0]
    for k in range(len(gt)):
        c = centres[k] if np.isfinite(centres[k]).all() else last
        last = c
        follow = c + (offset if k >= span[1] else 0.0)
        far = np.array([0.0 if c[0] > W / 2 else W, 0.0 if c[1] > H / 2 else H])
        away = far + (np.array([ww, wh]) / 2) * np.sign(np.array([W, H]) / 2 - far)  # window tucked in that corner
        if k < span[0] - PAN:
            a = 0.0
        elif k < span[0]:
            a = (k - (span[0] - PAN)) / PAN
        elif k < span[1]:
            a = 1.0
        elif k < span[1] + PAN:
            a = 1.0 - (k - span[1]) / PAN
        else:
            a = 0.0
        centre = (1 - a) * follow + a * away
        x0 = int(round(np.clip(centre[0] - ww / 2, 0, W - ww)))
        y0 = int(round(np.clip(centre[1] - wh / 2, 0, H - wh)))
        corners.append((x0, y0))
    return np.array(corners, dtype=int)


def _visible(box: np.ndarray, x0: int, y0: int, ww: int, wh: int) -> float:
    x, y, w, h = box
    ix = max(0.0, min(x + w, x0 + ww) - max(x, x0))
    iy = max(0.0, min(y + h, y0 + wh) - max(y, y0))
    return ix * iy / max(w * h, 1e-9)


def _occlusion(seq: Sequence, seed: int) -> tuple[list, np.ndarray, dict]:
    rng = _rng(seed, seq.name, "occlusion")
    n = len(seq)
    spans = occlusion_spans(n, rng)
    gt = seq.gt.copy()
    frames: list = list(seq.img_files)
    patches = []
    for _ in spans:
        if rng.random() < 0.5:
            patches.append(tuple(int(v) for v in rng.integers(0, 256, 3)))
        else:
            patches.append(texture(64, 64, rng, blobs=20))
    for (a, b), patch in zip(spans, patches):
        for k in range(a, b):
            if np.isfinite(gt[k]).all():
                frames[k] = occlude(read_image(seq.img_files[k]), gt[k], patch)
            gt[k] = np.nan
    return frames, gt, {"spans": spans, "patches": ["flat" if isinstance(p, tuple) else "texture" for p in patches]}


def _out_of_view(seq: Sequence, seed: int) -> tuple[list, np.ndarray, dict] | None:
    rng = _rng(seed, seq.name, "out-of-view")
    first = read_image(seq.img_files[0])
    H, W = first.shape[:2]
    ww, wh = int(W * WINDOW), int(H * WINDOW)
    sizes = seq.gt[np.isfinite(seq.gt).all(axis=1), 2:]
    if len(sizes) == 0 or (sizes[:, 0].max() > MAX_TARGET * ww or sizes[:, 1].max() > MAX_TARGET * wh):
        return None
    n = len(seq)
    length = max(10, min(int(rng.integers(20, 41)), n // 4))
    start = int(rng.integers(min(PAN + 10, n - 1), max(PAN + 11, n - length - PAN - 5)))
    span = (start, min(n, start + length))
    corners = camera_path(seq.gt, (W, H), span, rng)
    frames, gt = [], np.full_like(seq.gt, np.nan)
    for k, path in enumerate(seq.img_files):
        x0, y0 = corners[k]
        frames.append(np.ascontiguousarray((first if k == 0 else read_image(path))[y0:y0 + wh, x0:x0 + ww]))
        box = seq.gt[k]
        if np.isfinite(box).all() and _visible(box, x0, y0, ww, wh) >= 0.5:
            gt[k] = box - np.array([x0, y0, 0, 0])
    if not np.isfinite(gt[0]).all():
        return None  # the first frame must show the target
    return frames, gt, {"span": list(span), "window": [ww, wh], "corners": corners.tolist()}


def source_sequences(root: str | Path, names: list[str] | None = None) -> list[Sequence]:
    """The sequences of ``root``: a GOT-10k root's ``train`` split where it has ``train/list.txt`` (the training
    sets), else an OTB-layout set."""
    if (Path(root) / "train" / "list.txt").is_file():
        return load_got10k(root, "train", names)
    return load_otb(root, names)


def make_stress_set(root: str | Path, out: str | Path, seed: int = 0, kinds: tuple[str, ...] = KINDS,
                    names: list[str] | None = None, log=print) -> dict:
    """Write the stress set of the set at ``root`` (:func:`source_sequences`) into ``out`` (see the module docstring) and
    return its manifest (also ``out/stress.json``). Sequences already written are rewritten: the result
    depends only on the source, ``seed`` and ``kinds``."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"--kinds: unknown {unknown}; choose from {', '.join(KINDS)}")
    out = Path(out)
    if out.resolve() == Path(root).resolve():
        raise ValueError(f"--out {out} is the source set itself; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"source": str(Path(root).resolve()), "seed": seed, "kinds": list(kinds), "sequences": {}}
    for seq in source_sequences(root, names):
        for kind in kinds:
            made = _occlusion(seq, seed) if kind == "occlusion" else _out_of_view(seq, seed)
            name = f"{seq.name}-{'occ' if kind == 'occlusion' else 'oov'}"
            if made is None:
                log(f"{name}: skipped (the target is too large for the {WINDOW:.0%} window)")
                continue
            frames, gt, info = made
            write_otb_sequence(out / name, frames, gt)
            absent = np.flatnonzero(~np.isfinite(gt).all(axis=1)).tolist()
            manifest["sequences"][name] = {"source": seq.name, "kind": kind, "frames": len(frames),
                                           "absent_frames": len(absent), **info}
            log(f"{name}: {len(frames)} frames, target absent on {len(absent)}")
    write_atomic(out / "stress.json", json.dumps(manifest, indent=1) + "\n")
    return manifest
