"""Benchmark loaders: OTB-2013/2015 (and any folder in that simple layout) and GOT-10k.

Both produce :class:`Sequence` objects with 0-based ``(x, y, w, h)`` ground truth (the
files are 1-based; converted here with :func:`tracker.core.ops.one_based_to_zero_based`).
One reader handles every annotation file (:func:`read_boxes`, :func:`read_labels`);
the two layouts differ only in where they keep images and annotations.

OTB layout: ``<root>/<Seq>/img/*.jpg`` and ``groundtruth_rect.txt`` (comma, tab or space
separated). A sequence with several targets has ``groundtruth_rect.<k>.txt`` files and
becomes ``<Seq>-<k>`` (Jogging-1/-2, Skating2-1/-2, Human4-2: its ``.1`` file is empty and
skipped). The official OTB folders of David, Football1, Freeman3, Freeman4 and Diving hold
more images than annotated frames; their documented frame ranges are applied when (and only
when) the image count does not already match the annotation.

GOT-10k layout: ``<root>/<split>/list.txt``, ``<root>/<split>/<seq>/*.jpg``,
``groundtruth.txt`` and, where present, ``absence.label``, ``cover.label``,
``cut_by_image.label``, ``meta_info.ini``. A missing label file means "all visible"; the
test split holds only the first box (later frames are NaN).
"""
from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import ops

__all__ = ["AnnotationError", "Sequence", "read_boxes", "read_labels", "load_otb", "load_got10k", "is_valid_box",
           "write_otb_sequence",
           "OTB_FRAME_RANGES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

#: 1-based inclusive frame ranges of the official OTB sequences whose ``img/`` holds extra frames.
OTB_FRAME_RANGES: dict[str, tuple[int, int]] = {
    "david": (300, 770),
    "football1": (1, 74),
    "freeman3": (1, 460),
    "freeman4": (1, 283),
    "diving": (1, 215),
}

_OTB_GT = re.compile(r"^groundtruth(?:_rect)?(?:\.(\d+))?\.txt$")
_SEP = re.compile(r"[,\s]+")
FULLY_VISIBLE = 8  # GOT-10k cover level meaning "fully visible"


class AnnotationError(ValueError):
    """A benchmark file is missing or malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class Sequence:
    """One annotated video.

    ``gt`` is ``(N, 4)`` float64 ``(x, y, w, h)`` in 0-based pixels, NaN where the target is
    absent or the box unknown (all frames after the first in GOT-10k's test split).
    ``cover`` (GOT-10k, 0..8, 0 = invisible) and ``absence`` (0/1) are ``(N,)`` arrays or None.
    ``meta`` holds ``meta_info.ini`` entries (strings). ``full_gt`` is False when only the
    first box is known.
    """

    name: str
    img_files: tuple[Path, ...]
    gt: np.ndarray
    cover: np.ndarray | None = None
    absence: np.ndarray | None = None
    cut_by_image: np.ndarray | None = None
    meta: dict[str, str] = field(default_factory=dict)
    full_gt: bool = True

    def __len__(self) -> int:
        return len(self.img_files)

    @property
    def init_box(self) -> tuple[float, float, float, float]:
        """First-frame box ``(x, y, w, h)``, 0-based pixels."""
        return tuple(float(v) for v in self.gt[0])  # type: ignore[return-value]

    @property
    def resolution(self) -> tuple[int, int] | None:
        """``(width, height)`` from ``meta_info.ini`` when it says, else None."""
        r = self.meta.get("resolution")
        if not r:
            return None
        nums = re.findall(r"\d+", r)
        return (int(nums[0]), int(nums[1])) if len(nums) >= 2 else None

    def truncated(self, max_frames: int | None) -> "Sequence":
        """The first ``max_frames`` frames (for quick tests); the whole sequence when None."""
        if max_frames is None or max_frames >= len(self):
            return self
        cut = lambda a: None if a is None else a[:max_frames]  # noqa: E731
        return Sequence(self.name, self.img_files[:max_frames], self.gt[:max_frames], cut(self.cover),
                        cut(self.absence), cut(self.cut_by_image), dict(self.meta), self.full_gt)


# -- file readers ----------------------------------------------------------------------------

def _number_rows(path: Path, min_cols: int, max_cols: int) -> list[list[float]]:
    text = _read_text(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for i, line in enumerate(lines, start=1):
        fields = [f for f in _SEP.split(line.strip()) if f]
        if not fields:
            raise AnnotationError(f"{path}, line {i}: empty line inside the annotation")
        if not (min_cols <= len(fields) <= max_cols):
            want = str(min_cols) if min_cols == max_cols else f"{min_cols}-{max_cols}"
            raise AnnotationError(f"{path}, line {i}: expected {want} values, got {len(fields)}: {line.strip()!r}")
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise AnnotationError(f"{path}, line {i}: not a number in {line.strip()!r}") from None
    return rows


def _read_text(path: Path) -> str:
    """A text annotation file's contents; AnnotationError naming the file when unreadable or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise AnnotationError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise AnnotationError(f"{path}, line {line}: not a text file in UTF-8/ASCII (byte 0x{e.object[e.start]:02x} "
                              f"at offset {e.start})") from None


def read_boxes(path: str | Path) -> np.ndarray:
    """Read a 1-based ``x,y,w,h`` annotation/result file (comma, tab or space separated).

    Returns ``(N, 4)`` float64 boxes, 0-based. ``NaN`` rows stay NaN. Raises
    :class:`AnnotationError` naming the file and line for a wrong column count or a
    non-numeric value.
    """
    rows = _number_rows(Path(path), 4, 4)
    boxes = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return ops.one_based_to_zero_based(boxes)


def read_labels(path: str | Path, n: int, valid: tuple[int, int] | None = None) -> np.ndarray:
    """Read a one-number-per-line GOT-10k label file; it must have ``n`` lines, and with ``valid=(lo, hi)``
    every value must be an integer in ``lo..hi``."""
    path = Path(path)
    rows = _number_rows(path, 1, 1)
    if len(rows) != n:
        raise AnnotationError(f"{path}: {len(rows)} lines but the sequence has {n} frames")
    values = np.array(rows, dtype=np.float64).reshape(-1)
    if valid is not None:
        lo, hi = valid
        bad = np.flatnonzero(~((values >= lo) & (values <= hi) & (values == np.round(values))))
        if len(bad):
            raise AnnotationError(f"{path}, line {bad[0] + 1}: expected an integer {lo}-{hi}, got {values[bad[0]]:g}")
    return values


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise AnnotationError(f"{folder}: image folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise AnnotationError(f"{folder}: no images (.jpg/.png) found")
    return files


def _read_meta(path: Path) -> dict[str, str]:
    meta = {}
    for i, line in enumerate(_read_text(path).splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("["):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise AnnotationError(f"{path}, line {i}: expected 'key: value', got {line!r}")
        meta[key.strip()] = value.strip()
    return meta


def _check_count(anno: Path, boxes: np.ndarray, images: list[Path], folder: Path) -> None:
    if len(boxes) != len(images):
        raise AnnotationError(f"{anno}: {len(boxes)} boxes but {folder} holds {len(images)} images "
                              "(the frame count must match)")


def _select(names: list[str], wanted: list[str] | None, what: Path) -> list[str]:
    if wanted is None:
        return names
    missing = [w for w in wanted if w not in names]
    if missing:
        raise AnnotationError(f"{what}: no sequence named {', '.join(missing)}")
    return [n for n in names if n in set(wanted)]


# -- OTB ---------------------------------------------------------------------------------------

def _otb_sequence(seq_dir: Path, anno: Path, name: str) -> Sequence:
    boxes = read_boxes(anno)
    images = _images(seq_dir / "img")
    rng = OTB_FRAME_RANGES.get(seq_dir.name.lower())
    if rng is not None and len(images) != len(boxes):
        images = images[rng[0] - 1 : rng[1]]
    _check_count(anno, boxes, images, seq_dir / "img")
    if not np.all(np.isfinite(boxes[0])) or boxes[0, 2] <= 0 or boxes[0, 3] <= 0:
        raise AnnotationError(f"{anno}, line 1: the first box must be a valid box, got {boxes[0] + [1, 1, 0, 0]}")
    return Sequence(name, tuple(images), boxes)


def load_otb(root: str | Path, names: list[str] | None = None, max_frames: int | None = None) -> list[Sequence]:
    """All sequences under an OTB-layout ``root`` (sorted by name), optionally only ``names``.

    ``max_frames`` truncates each sequence (tests only; benchmarks use all frames).
    """
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(f"{root}: benchmark folder not found")
    found: dict[str, tuple[Path, Path]] = {}
    for seq_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        annos = []
        for f in seq_dir.iterdir():
            m = _OTB_GT.match(f.name)
            if m and f.is_file() and _read_text(f).strip():  # an empty file (Human4's .1) is no target
                annos.append((m.group(1), f))
        if not annos:
            continue
        for k, f in annos:
            name = seq_dir.name if k is None else f"{seq_dir.name}-{k}"
            found[name] = (seq_dir, f)
    if not found:
        raise AnnotationError(f"{root}: no sequences found (expected <Seq>/img/*.jpg and <Seq>/groundtruth_rect.txt)")
    chosen = _select(sorted(found), names, root)
    return [_otb_sequence(*found[n], n).truncated(max_frames) for n in chosen]


# -- GOT-10k -----------------------------------------------------------------------------------

def _got10k_sequence(seq_dir: Path, name: str, split: str) -> Sequence:
    if not seq_dir.is_dir():
        raise AnnotationError(f"{seq_dir}: sequence folder listed in list.txt not found")
    images = _images(seq_dir)
    anno = seq_dir / "groundtruth.txt"
    if not anno.is_file():
        raise AnnotationError(f"{anno}: annotation not found")
    boxes = read_boxes(anno)
    n = len(images)
    full = True
    if split == "test" and len(boxes) == 1 and n > 1:
        boxes = np.vstack([boxes, np.full((n - 1, 4), np.nan)])
        full = False
    _check_count(anno, boxes, images, seq_dir)
    labels = {}
    for key, valid in (("absence", (0, 1)), ("cover", (0, FULLY_VISIBLE)), ("cut_by_image", (0, 1))):
        f = seq_dir / f"{key}.label"
        labels[key] = read_labels(f, n, valid) if f.is_file() else None
    absence = labels["absence"] if labels["absence"] is not None else np.zeros(n)
    cover = labels["cover"]
    if cover is None:  # "all visible" unless absence.label says otherwise
        cover = np.where(absence > 0, 0.0, float(FULLY_VISIBLE))
    meta_file = seq_dir / "meta_info.ini"
    meta = _read_meta(meta_file) if meta_file.is_file() else {}
    return Sequence(name, tuple(images), boxes, cover, absence, labels["cut_by_image"], meta, full)


def load_got10k(root: str | Path, split: str = "val", names: list[str] | None = None,
                max_frames: int | None = None) -> list[Sequence]:
    """Sequences of a GOT-10k ``split`` (``train``, ``val`` or ``test``) in ``list.txt`` order."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    list_file = Path(root) / split / "list.txt"
    if not list_file.is_file():
        raise AnnotationError(f"{list_file}: not found (expected the GOT-10k layout <root>/{split}/list.txt)")
    seq_names = [s.strip() for s in _read_text(list_file).splitlines() if s.strip()]
    if not seq_names:
        raise AnnotationError(f"{list_file}: lists no sequences")
    chosen = _select(seq_names, names, list_file)
    return [_got10k_sequence(list_file.parent / n, n, split).truncated(max_frames) for n in chosen]


def is_valid_box(gt: np.ndarray) -> np.ndarray:
    """Rows of an ``(N, 4)`` box array that are finite with positive width and height."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        return np.isfinite(gt).all(axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)



def write_otb_sequence(folder: Path, frames: list, gt: np.ndarray, link: bool = False) -> None:
    """``folder/img/0001.jpg...`` (each item a source path to copy, or with ``link`` to hard-link where the
    file system allows, or an image to encode) and ``groundtruth_rect.txt`` (1-based; ``nan,nan,nan,nan``
    where absent), written to a temporary folder first and renamed, so a sequence folder that exists is
    complete. For derived sets (:mod:`tracker.eval.stress`, :mod:`tracker.eval.tre`)."""
    import cv2

    from ..io.video import read_image

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / "img").mkdir(parents=True)
        for k, item in enumerate(frames, 1):
            dst = tmp / "img" / f"{k:04d}.jpg"
            if not isinstance(item, np.ndarray) and Path(item).suffix.lower() in (".jpg", ".jpeg"):
                try:
                    if not link:
                        raise OSError
                    os.link(item, dst)
                except OSError:  # another file system, or copies asked for
                    shutil.copyfile(item, dst)
            elif not cv2.imwrite(str(dst), item if isinstance(item, np.ndarray) else read_image(item),
                                 [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(errno.EIO, "could not write (a full disk?)", str(dst))
        rows = ops.zero_based_to_one_based(np.asarray(gt, dtype=np.float64).reshape(-1, 4))
        (tmp / "groundtruth_rect.txt").write_text(
            "".join(("nan,nan,nan,nan" if not np.isfinite(r).all() else ",".join(f"{v:.2f}" for v in r)) + "\n"
                    for r in rows))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as e:  # a full disk: name the sequence written (copyfile names its source, or nothing)
        if e.filename and e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OSError(e.errno, e.strerror or str(e), str(folder)) from None
    finally:  # a failed write leaves no half-written sequence behind
        shutil.rmtree(tmp, ignore_errors=True)
