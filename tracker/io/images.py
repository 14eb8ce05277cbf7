"""Decoding image files for the trackers, with damaged files caught rather than tracked.

:func:`decode_image` reads one file as a BGR ``uint8`` array. OpenCV decodes a damaged JPEG into a partly
wrong picture with, at most, libjpeg's bare warning on stderr ("Corrupt JPEG data: ...", naming no file);
here such a file is reported as damaged instead: cut off (no end-of-image marker), or, with ``strict`` (the
demos' frames), reported as corrupt by libjpeg (its warning is caught), or holding a long run of zero bytes
in its coded data where the standard Huffman tables cannot produce one (zero-filled or overwritten).
"""
from __future__ import annotations

import atexit
import functools
import os
import tempfile
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

__all__ = ["decode_image", "read_image"]

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


_JPEG_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file")  # libjpeg's warnings about damaged data
_capture_lock = threading.Lock()
_capture_file = None  # a temporary file that receives fd 2 while libjpeg decodes (see _captured_stderr)


@contextmanager
def _captured_stderr(out: list[str]) -> Iterator[None]:
    """Collect what C code prints on fd 2 inside the block (libjpeg's warnings, which name no file) into ``out``.
    Where fd 2 cannot be redirected this is a no-op."""
    global _capture_file
    with _capture_lock:
        try:
            if _capture_file is None:
                _capture_file = tempfile.TemporaryFile()
                atexit.register(_capture_file.close)
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            os.dup2(_capture_file.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if os.fstat(_capture_file.fileno()).st_size:
                _capture_file.seek(0)
                out.append(_capture_file.read().decode("utf-8", "replace"))
                _capture_file.seek(0)
                _capture_file.truncate()


_ZERO_RUN = bytes(64)  # 512 zero bits: more than a block of the standard tables' longest zero code words


@functools.lru_cache(maxsize=1)
def _standard_tables() -> frozenset[bytes]:
    """The Huffman tables libjpeg writes by default (JPEG Annex K), as in OpenCV's own output."""
    ok, enc = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8), [cv2.IMWRITE_JPEG_OPTIMIZE, 0])
    return frozenset(_huffman_tables(enc.tobytes())[0]) if ok else frozenset()


def _huffman_tables(data: bytes) -> tuple[list[bytes], int]:
    """The Huffman tables (each as its 16 counts and its symbols) of a JPEG, and where its first scan's coded
    data starts (0 when there is none)."""
    tables, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill byte, markers with no length
            pos += 1 if marker == 0xFF else 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xC4:  # DHT: class/id, 16 counts, the symbols; several tables per segment
            i = pos + 4
            while i + 17 <= end:
                n = sum(data[i + 1:i + 17])
                tables.append(bytes(data[i + 1:i + 17 + n]))
                i += 17 + n
        if marker == 0xDA:
            return tables, end
        pos = end
    return tables, 0


def _zero_filled(data: bytes) -> bool:
    """Whether a JPEG coded with the standard Huffman tables holds a run of :data:`_ZERO_RUN` zero bytes in its
    coded data, which those tables never produce from a picture (a zero-filled or overwritten stretch). Files
    with other tables (optimised ones can code a flat black area as zeros) are not judged."""
    tables, start = _huffman_tables(data)
    if not start or not tables or not set(tables) <= _standard_tables():
        return False
    return _ZERO_RUN in data[start:data.rfind(b"\xff\xd9")]


def decode_image(path: str | os.PathLike, strict: bool = False) -> tuple[np.ndarray | None, str]:
    """One image file as a BGR ``uint8`` array, or ``(None, why)`` when it cannot be read or is
    damaged. A JPEG without its end-of-image marker (cut off partway, which OpenCV would decode
    into a half-grey picture with only a warning) counts as damaged; with ``strict`` (the demos'
    frames) so does a JPEG that keeps its end marker but whose data libjpeg reports as corrupt (its bare
    warning is caught, not shown) or is zero-filled in part (see the module's docstring)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return None, f"cannot read it ({e.strerror or e})"
    jpeg = data[:2] == b"\xff\xd8"
    if jpeg and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return None, "truncated JPEG (no end-of-image marker)"
    if strict and jpeg and _zero_filled(data):
        return None, "damaged JPEG (a stretch of its coded data is zero-filled)"
    said: list[str] = []
    with _quiet_opencv(), (_captured_stderr(said) if strict and jpeg else nullcontext()):
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    text = "".join(said)
    damage = [line.strip() for line in text.splitlines() if line.startswith(_JPEG_DAMAGE)]
    if img is not None and damage:
        return None, f"damaged JPEG (libjpeg: {damage[0].rstrip('.')})"
    if text and not damage:
        os.write(2, text.encode())  # not about damage: pass it on
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
