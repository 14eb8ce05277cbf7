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

import glob
import logging
import os
import re
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

__all__ = ["read_image", "decode_image", "SourceError", "SinkError", "FrameSource", "open_source", "frames", "natural_key",
           "VideoSink", "check_writable", "FPSMeter", "IMAGE_EXTENSIONS", "part_path", "remove_stale_parts", "same_file"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
# Output container -> codec that OpenCV's pip builds can always write.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
_MAX_BAD_IN_A_ROW = 25  # consecutive undecodable frames before a video is declared finished


def decode_image(path: str | os.PathLike) -> tuple[np.ndarray | None, str]:
    """One image file as a BGR ``uint8`` array, or ``(None, why)`` when it cannot be read or is
    damaged. A JPEG without its end-of-image marker (cut off partway, which OpenCV would decode
    into a half-grey picture with only a warning) counts as damaged."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return None, f"cannot read it ({e.strerror or e})"
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return None, "truncated JPEG (no end-of-image marker)"
    with _quiet_opencv():
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        return None, "not a readable image"
    return img, ""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file as a BGR ``uint8`` array; ``ValueError`` naming the file if it cannot be read
    or is damaged (see :func:`decode_image`)."""
    img, why = decode_image(path)
    if img is None:
        raise ValueError(f"{path}: {why}")
    return img


class SourceError(ValueError):
    """A frame source cannot be opened or read; the message names the source."""


class SinkError(ValueError):
    """An output file cannot be written; the message names the file."""


def natural_key(path: str) -> list:
    """Sort key that orders embedded numbers by value: ``a2`` < ``a10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    # OpenCV logs its backends' failures (e.g. every camera backend it tried) at WARN/ERROR;
    # the caller turns a failed open into one clear SourceError instead.
    lg = cv2.utils.logging
    old = lg.getLogLevel()
    lg.setLogLevel(lg.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        lg.setLogLevel(old)


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
                img, why = decode_image(p)
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


def open_source(source: str | int | os.PathLike, on_skip: Callable[[str], None] | None = None) -> FrameSource:
    """Open a camera index, video file, image folder/glob or stream URL (see module docstring).

    Reads the first frame before returning; raises :class:`SourceError` naming the source
    when it is missing, cannot be opened, or holds no readable frame. ``on_skip(message)``
    is called for each frame reported and skipped later (default: a logging warning).
    """
    s = str(source).strip()
    if isinstance(source, int) or s.isdigit():
        idx = int(s)
        with _quiet_opencv():
            cap = cv2.VideoCapture(idx)
        if not cap.isOpened():
            raise SourceError(f"camera {idx}: cannot open it (no such camera, or it is in use)")
        return FrameSource(f"camera {idx}", "camera", cap=cap, on_skip=on_skip)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s):
        with _quiet_opencv():
            cap = cv2.VideoCapture(s)
        if not cap.isOpened():
            raise SourceError(f"{s}: cannot open this stream URL")
        return FrameSource(s, "stream", cap=cap, on_skip=on_skip)
    if os.path.isdir(s) or (any(c in s for c in "*?[") and not os.path.exists(s)):
        paths = _image_paths(s)
        if not paths:
            what = "folder holds no images" if os.path.isdir(s) else "pattern matches no files"
            raise SourceError(f"{s}: {what} ({', '.join(IMAGE_EXTENSIONS)})")
        return FrameSource(s, "images", paths=paths, on_skip=on_skip)
    if not os.path.exists(s):
        raise SourceError(f"{s}: no such file or directory")
    if not os.path.isfile(s):
        raise SourceError(f"{s}: not a regular file")
    if not os.access(s, os.R_OK):
        raise SourceError(f"{s}: permission denied")
    if os.path.splitext(s)[1].lower() in IMAGE_EXTENSIONS:
        return FrameSource(s, "images", paths=[s], on_skip=on_skip)
    if os.path.getsize(s) == 0:
        raise SourceError(f"{s}: empty file (0 bytes), not a video")
    with _quiet_opencv():
        cap = cv2.VideoCapture(s)
    if not cap.isOpened():
        raise SourceError(f"{s}: not a readable video (OpenCV/FFmpeg cannot open it)")
    return FrameSource(s, "video", cap=cap, on_skip=on_skip)


def frames(source: str | int | os.PathLike, on_skip: Callable[[str], None] | None = None) -> Iterator[np.ndarray]:
    """Generator of BGR frames from any source; see :func:`open_source`."""
    with open_source(source, on_skip) as src:
        yield from src


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Raise :class:`SinkError` naming ``path`` unless a file can be created there."""
    p = Path(path)
    if p.is_dir():
        raise SinkError(f"{what} {p}: is a directory, not a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"{what} {p}: folder {parent} does not exist")
    probe = parent / f".{p.name}.{os.getpid()}.probe"
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as e:
        raise SinkError(f"{what} {p}: cannot write there ({e.strerror or e})") from None
    return p


def part_path(path: Path) -> Path:
    """The hidden file an output is written to until it is complete: ``.<stem>.part<PID><suffix>`` beside it."""
    return path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_parts(path: Path) -> list[Path]:
    """Delete the partial files of ``path`` left by runs that were killed (their PID is gone); returns them."""
    removed = []
    pattern = re.compile(rf"\.{re.escape(path.stem)}\.part(\d+){re.escape(path.suffix)}")
    parent = path.parent if str(path.parent) else Path(".")
    for p in parent.glob(f".{glob.escape(path.stem)}.part*"):
        m = pattern.fullmatch(p.name)
        if m and int(m[1]) != os.getpid() and not _alive(int(m[1])):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (same path, ``./x`` vs ``x``, a symlink, a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return os.path.realpath(a) == os.path.realpath(b)


class VideoSink:
    """Context-managed video writer, finalised atomically.

    Frames go to a temporary file beside ``path``; ``close()`` (also on an exception or
    Ctrl-C inside ``with``) releases the encoder, which makes the file playable, then
    moves it onto ``path`` with ``os.replace``. The frame size is taken from the first
    frame; later frames must match it. The codec follows the extension: ``.mp4``/``.mov``/
    ``.mkv`` use MPEG-4 Part 2 (``mp4v``), ``.avi`` Motion-JPEG.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0) -> None:
        self.path = check_writable(path, "output video")
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

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR ``uint8`` frame."""
        h, w = frame.shape[:2]
        if self._writer is None:
            self.size = (w, h)
            with _quiet_opencv():
                self._writer = cv2.VideoWriter(str(self._tmp), self._fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise SinkError(f"output video {self.path}: OpenCV cannot encode {w}x{h} video to it")
        elif (w, h) != self.size:
            raise SinkError(f"output video {self.path}: frame is {w}x{h} but the video is {self.size[0]}x{self.size[1]}")
        self._writer.write(frame)
        self.frames_written += 1

    def close(self) -> Path | None:
        """Finish the file; returns its path, or ``None`` when no frame was written."""
        if self.closed:
            return self.path if self.frames_written else None
        self.closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.frames_written == 0:
            self._tmp.unlink(missing_ok=True)
            return None
        os.replace(self._tmp, self.path)
        return self.path

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
