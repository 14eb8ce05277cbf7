"""Video I/O for the demos: one frame source over cameras, files, image folders and
streams; an atomically finalised video writer and an FPS meter (the progress bar is
:class:`tracker.io.progress.ProgressBar`).

Frames are BGR ``uint8`` ``(H, W, 3)`` arrays, as OpenCV gives them. A *source* is

* a camera index (``0`` or ``"0"``),
* a video file (anything FFmpeg reads: ``.mp4``, ``.avi``, ``.mkv`` ...),
* a folder of images, or a glob such as ``"frames/*.jpg"`` (sorted naturally, so
  ``img2.jpg`` comes before ``img10.jpg``),
* a stream URL that OpenCV opens (``rtsp://``, ``http://`` ...).

:func:`open_source` checks the source at once (it reads the first frame) and raises
:class:`SourceError` naming it; frames that cannot be decoded later on are reported
through ``on_skip`` and skipped.
"""
from __future__ import annotations

import errno
import glob
import logging
import os
import re
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from .files import (
    SinkError,
    check_writable,
    free_bytes,
    input_files,
    kept,
    part_path,
    remove_stale_parts,
    same_file,
)
from .images import _captured_stderr, _quiet_opencv, decode_image, read_image

__all__ = ["read_image", "decode_image", "SourceError", "SinkError", "FrameSource", "check_source", "open_source",
           "frames", "natural_key",
           "VideoSink", "check_writable", "FPSMeter", "IMAGE_EXTENSIONS", "part_path", "remove_stale_parts", "same_file"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
# Output container -> codec that OpenCV's pip builds can always write.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
_MAX_BAD_IN_A_ROW = 25  # consecutive undecodable frames before a video is declared finished


class SourceError(ValueError):
    """A frame source cannot be opened or read; the message names the source."""


def natural_key(path: str) -> list:
    """Sort key that orders embedded numbers by value: ``a2`` < ``a10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


class FrameSource:
    """An opened source. Iterate it for frames; ``close()`` (or ``with``) releases it.

    Attributes: ``name`` (for messages), ``kind`` (``"camera"``, ``"video"``, ``"images"``,
    ``"stream"``), ``size`` ``(W, H)`` of the first frame, ``fps`` (``None`` when unknown),
    ``frame_count`` (``None`` for cameras and streams), ``skipped`` (messages about frames
    that were reported and skipped). Every frame yielded has the first frame's size.
    :meth:`with_gaps` also yields ``None`` in place of each skipped frame, so that outputs keep
    one entry per frame of the source.
    """

    def __init__(self, name: str, kind: str, cap: cv2.VideoCapture | None = None, paths: list[str] | None = None,
                 on_skip: Callable[[str], None] | None = None) -> None:
        self.name, self.kind = name, kind
        self._cap, self._paths = cap, paths
        self._on_skip = on_skip or log.warning
        self.skipped: list[str] = []
        self._n_skipped = 0
        self._gaps = 0  # skipped frames not yet reported to with_gaps()
        self.fps: float | None = None
        self.frame_count: int | None = None
        if cap is not None:
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if 0 < fps <= 1000 else None
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self.frame_count = n if kind == "video" and n > 0 else None
        else:
            self.frame_count = len(paths or [])
        self._index = 0  # position in the source of the next frame to read
        self._first = self._read_first()
        self.size = (self._first.shape[1], self._first.shape[0])

    def _skip(self, msg: str, n_frames: int = 1) -> None:
        self.skipped.append(msg)
        self._n_skipped += n_frames
        self._gaps += n_frames
        self._on_skip(msg)

    def _read_first(self) -> np.ndarray:
        for frame in self._raw():
            return frame
        self.close()
        if self.kind == "images":
            raise SourceError(f"{self.name}: none of its {len(self._paths or [])} image(s) could be read")
        if self.kind == "video":
            raise SourceError(f"{self.name}: video has no readable frames (empty or corrupt file)")
        raise SourceError(f"{self.name}: opened but delivered no frame")

    def _raw(self) -> Iterator[np.ndarray]:
        """Decoded frames in order, reporting (and skipping) those that cannot be decoded."""
        if self._paths is not None:
            while self._index < len(self._paths):
                p = self._paths[self._index]
                self._index += 1
                img, why = decode_image(p, strict=True)
                if img is None:
                    self._skip(f"{p}: {why}; skipped")
                    continue
                yield img
            return
        bad = 0  # undecodable frames in a row, reported once a later frame decodes
        while self._cap is not None:
            ok, frame = self._cap.read()
            self._index += 1
            if ok and frame is not None and frame.size:
                if bad:
                    first = self._index - bad
                    which = f"frame {first}" if bad == 1 else f"frames {first}-{self._index - 1}"
                    self._skip(f"{self.name}: {which} could not be decoded; skipped", bad)
                bad = 0
                if frame.ndim == 2:
                    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                yield frame
                continue
            bad += 1
            more_expected = self.frame_count is not None and self._index < self.frame_count
            retry = self.kind in ("camera", "stream") and bad < 5
            if (more_expected or retry) and bad < _MAX_BAD_IN_A_ROW:
                continue
            break

    def __iter__(self) -> Iterator[np.ndarray]:
        first, self._first = self._first, None
        if first is None:
            raise RuntimeError(f"{self.name}: a FrameSource can be iterated only once")
        yield first
        done = 1
        for frame in self._raw():
            if (frame.shape[1], frame.shape[0]) != self.size:
                self._skip(f"{self.name}: frame {self._index} is {frame.shape[1]}x{frame.shape[0]}, "
                           f"not {self.size[0]}x{self.size[1]} like the first; skipped")
                continue
            done += 1
            yield frame
        if self.kind == "video" and self.frame_count and done + self._n_skipped < self.frame_count:
            self._skip(f"{self.name}: the file lists {self.frame_count} frames but only {done} could be decoded",
                       self.frame_count - done - self._n_skipped)

    @property
    def image_paths(self) -> list[str]:
        """The image files of an ``"images"`` source, in order (empty for other kinds)."""
        return list(self._paths or [])

    def with_gaps(self) -> Iterator[np.ndarray | None]:
        """Like iterating the source, but with ``None`` in place of every frame that was skipped
        (undecodable, damaged, wrong size, or listed by the file but missing), in source order; skipped
        frames before the first readable one come first."""
        for frame in self:
            while self._gaps:
                self._gaps -= 1
                yield None
            yield frame
        while self._gaps:
            self._gaps -= 1
            yield None

    @property
    def first_frame(self) -> np.ndarray:
        """The first frame (available until iteration starts)."""
        if self._first is None:
            raise RuntimeError("first_frame is gone once iteration has started")
        return self._first

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _image_paths(pattern_or_dir: str) -> list[str]:
    if os.path.isdir(pattern_or_dir):
        cands = [os.path.join(pattern_or_dir, f) for f in os.listdir(pattern_or_dir)]
        paths = [p for p in cands if os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(p)]
    else:
        paths = [p for p in glob.glob(pattern_or_dir) if os.path.isfile(p)]
    return sorted(paths, key=natural_key)


def _local(source: str | int | os.PathLike) -> str:
    """The source as text, a ``file:`` URL as the local file it names (:class:`SourceError` if there is none)."""
    s = str(source).strip()
    if s[:5].lower() == "file:":
        found = input_files(s)
        if not found:
            raise SourceError(f"{s}: no such file")
        return found[0]
    return s


def check_source(source: str | int | os.PathLike) -> str:
    """What kind of source this is (``"camera"``, ``"stream"``, ``"images"``, ``"file"``; a ``file:`` URL is the
    file it names), after the checks that need no decoding: :class:`SourceError` naming it when the file or
    folder is missing, unreadable, empty, or the folder/glob holds no images. :func:`open_source` runs it first."""
    s = _local(source)
    if isinstance(source, int) or s.isdigit():
        return "camera"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s):
        return "stream"
    if os.path.isdir(s) or (any(c in s for c in "*?[") and not os.path.exists(s)):
        if not _image_paths(s):
            what = "folder holds no images" if os.path.isdir(s) else "pattern matches no files"
            raise SourceError(f"{s}: {what} ({', '.join(IMAGE_EXTENSIONS)})")
        return "images"
    if not os.path.exists(s):
        raise SourceError(f"{s}: no such file or directory")
    if not os.path.isfile(s):
        raise SourceError(f"{s}: not a regular file")
    if not os.access(s, os.R_OK):
        raise SourceError(f"{s}: permission denied")
    if os.path.splitext(s)[1].lower() not in IMAGE_EXTENSIONS and os.path.getsize(s) == 0:
        raise SourceError(f"{s}: empty file (0 bytes), not a video")
    return "file"


def open_source(source: str | int | os.PathLike, on_skip: Callable[[str], None] | None = None) -> FrameSource:
    """Open a camera index, video file, image folder/glob or stream URL (see module docstring).

    Reads the first frame before returning; raises :class:`SourceError` naming the source
    when it is missing, cannot be opened, or holds no readable frame. ``on_skip(message)``
    is called for each frame reported and skipped later (default: a logging warning).
    """
    kind = check_source(source)
    s = _local(source)
    if kind == "camera":
        idx = int(s)
        with _quiet_opencv():
            cap = cv2.VideoCapture(idx)
        if not cap.isOpened():
            raise SourceError(f"camera {idx}: cannot open it (no such camera, or it is in use)")
        return FrameSource(f"camera {idx}", "camera", cap=cap, on_skip=on_skip)
    if kind == "stream":
        with _quiet_opencv():
            cap = cv2.VideoCapture(s)
        if not cap.isOpened():
            raise SourceError(f"{s}: cannot open this stream URL")
        return FrameSource(s, "stream", cap=cap, on_skip=on_skip)
    if kind == "images":
        return FrameSource(s, "images", paths=_image_paths(s), on_skip=on_skip)
    if os.path.splitext(s)[1].lower() in IMAGE_EXTENSIONS:
        return FrameSource(s, "images", paths=[s], on_skip=on_skip)
    with _quiet_opencv():
        cap = cv2.VideoCapture(s)
    if not cap.isOpened():
        raise SourceError(f"{s}: not a readable video (OpenCV/FFmpeg cannot open it)")
    return FrameSource(s, "video", cap=cap, on_skip=on_skip)


def frames(source: str | int | os.PathLike, on_skip: Callable[[str], None] | None = None) -> Iterator[np.ndarray]:
    """Generator of BGR frames from any source; see :func:`open_source`."""
    with open_source(source, on_skip) as src:
        yield from src


def _no_space(where: Path) -> bool:
    free = free_bytes(where)
    return free is not None and free == 0


class VideoSink:
    """Context-managed video writer, finalised atomically.

    Frames go to a temporary file beside ``path``; ``close()`` (also on an exception or
    Ctrl-C inside ``with``) releases the encoder, which makes the file playable, checks that it
    holds every frame, then moves it onto ``path`` with ``os.replace``. A frame that cannot be
    written (a full disk: OpenCV only logs "Failed to write frame") raises :class:`SinkError`
    naming the file and the cause; so does a file that is incomplete at ``close()``. Then the
    part file is removed and a previous file at ``path`` is kept. The frame size is taken from the
    first frame; later frames must match it. The codec follows the extension: ``.mp4``/``.mov``/
    ``.mkv`` use MPEG-4 Part 2 (``mp4v``), ``.avi`` Motion-JPEG. ``path`` must be a regular file
    name: a device, FIFO or standard output is refused (the rename would replace it).
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0) -> None:
        self.path = check_writable(path, "output video", stream_ok=False)
        ext = self.path.suffix.lower()
        if ext not in _FOURCC:
            raise SinkError(f"output video {self.path}: unsupported extension {ext or '(none)'!r}; "
                            f"use one of {', '.join(_FOURCC)}")
        if not (fps > 0):
            raise SinkError(f"output video {self.path}: fps must be positive, got {fps}")
        self.fps = float(fps)
        self._fourcc = cv2.VideoWriter_fourcc(*_FOURCC[ext])
        self.removed_parts = remove_stale_parts(self.path)  # left by killed runs
        self._tmp = part_path(self.path)
        self._writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self.closed = False

    def _fail(self, why: str) -> SinkError:
        """Give up on the file: drop the part file (a previous file at ``path`` stays); the error to raise."""
        self.abort()
        return SinkError(f"output video {self.path}: {why}{kept(self.path)}")

    def _cause(self, what: str) -> str:
        return os.strerror(errno.ENOSPC) if _no_space(self._tmp.parent) else what

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR ``uint8`` frame; :class:`SinkError` when it cannot be written."""
        if self.closed:
            raise SinkError(f"output video {self.path}: already closed")
        h, w = frame.shape[:2]
        if self._writer is None:
            self.size = (w, h)
            with _quiet_opencv():
                self._writer = cv2.VideoWriter(str(self._tmp), self._fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise self._fail(self._cause(f"OpenCV cannot encode {w}x{h} video to it"))
        elif (w, h) != self.size:
            raise SinkError(f"output video {self.path}: frame is {w}x{h} but the video is {self.size[0]}x{self.size[1]}")
        with _quiet_opencv():  # a failed write is only logged by OpenCV: its result (if any) or free space tells
            ok = self._writer.write(frame)
        if ok is False or ((ok is None or self.frames_written % 10 == 0) and _no_space(self._tmp.parent)):
            raise self._fail(f"frame {self.frames_written + 1} could not be written "
                             f"({self._cause('the encoder failed')})")
        self.frames_written += 1

    def _check_complete(self) -> str:
        """Why the released part file is not a playable video of every frame written ("" if it is)."""
        try:
            with open(self._tmp, "rb+") as f:
                os.fsync(f.fileno())
        except OSError as e:
            return e.strerror or str(e)
        with _quiet_opencv(), _captured_stderr([]):  # FFmpeg's own complaints ("moov atom not found") too
            cap = cv2.VideoCapture(str(self._tmp))
            try:
                n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
                slack = 1 if self.path.suffix.lower() == ".mkv" else 0  # its count is estimated from the duration
                if n < self.frames_written - slack:
                    return f"the file holds {max(n, 0)} of {self.frames_written} frames"
                cap.set(cv2.CAP_PROP_POS_FRAMES, self.frames_written - 1 - slack)
                if not cap.read()[0]:
                    return "its last frame cannot be decoded"
            finally:
                cap.release()
        return ""

    def close(self) -> Path | None:
        """Finish the file; returns its path, or ``None`` when no frame was written. :class:`SinkError` (the
        part file removed, a previous file kept) when the file is not complete, e.g. on a full disk."""
        if self.closed:
            return self.path if self.frames_written else None
        self.closed = True
        if self._writer is not None:
            with _quiet_opencv():
                self._writer.release()
            self._writer = None
        if self.frames_written == 0:
            self._tmp.unlink(missing_ok=True)
            return None
        why = self._check_complete()
        if why:
            self.frames_written = 0
            raise self._fail(f"incomplete, not written ({self._cause(why)})")
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop what was written (the part file); a previous file at ``path`` stays."""
        self.closed = True
        if self._writer is not None:
            with _quiet_opencv(), _captured_stderr([]):
                self._writer.release()
            self._writer = None
        self.frames_written = 0
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        try:  # an exception is on its way: finalise what was written, but never mask it
            self.close()
        except SinkError:
            pass


class FPSMeter:
    """Frames per second over the last ``window`` ticks (wall clock)."""

    def __init__(self, window: int = 30) -> None:
        self._t: deque[float] = deque(maxlen=max(2, window))

    def tick(self) -> float:
        """Record one frame now; returns the current rate."""
        self._t.append(time.perf_counter())
        return self.fps

    @property
    def fps(self) -> float:
        if len(self._t) < 2 or self._t[-1] <= self._t[0]:
            return 0.0
        return (len(self._t) - 1) / (self._t[-1] - self._t[0])

    def reset(self) -> None:
        """Forget past ticks (e.g. after a pause)."""
        self._t.clear()
