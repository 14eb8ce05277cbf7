"""Where outputs may go: the checks every output file passes before anything is written.

* An output never replaces an input: :func:`input_files` resolves every spelling of a source (a
  ``file://`` URL, a relative path, a symlink) to the local files it reads, and :func:`refuse_clobbering`
  compares each output with them by device and inode (a hard link is caught too) where the file exists.
* A *regular* output file is written to a hidden part file beside it (:func:`part_path`) and renamed onto
  it when complete; part files of runs that were killed are removed (:func:`remove_stale_parts`).
* A *stream* target (``-`` for stdout, a device such as ``/dev/null``, a FIFO, ``/dev/stdout`` and the
  like) is never renamed onto: it is written to directly (:func:`is_stream`).
"""
from __future__ import annotations

import glob
import os
import re
import stat
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlsplit

__all__ = ["SinkError", "STDOUT", "is_stream", "is_stdout", "std_fd", "file_id", "same_file", "input_files",
           "refuse_clobbering", "check_writable", "part_path", "remove_stale_parts", "free_bytes", "kept"]

STDOUT = "-"  # an output named "-" is written to standard output


class SinkError(ValueError):
    """An output file cannot be written; the message names the file."""


def _stat(path: str | os.PathLike) -> os.stat_result | None:
    """``os.stat`` of ``path`` (standard output's for ``-``), or None when there is no such file."""
    try:
        return os.fstat(1) if str(path) == STDOUT else os.stat(path)
    except (OSError, ValueError):
        return None


def file_id(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(device, inode)`` of the file ``path`` names (following symlinks; stdout's for ``-``), None if none."""
    st = _stat(path)
    return None if st is None else (st.st_dev, st.st_ino)


def _via_proc(path: str) -> bool:
    """Whether ``path`` or a symlink on the way to its file is under /proc or /dev/fd (/dev/stdout -> /proc/self/fd/1:
    a file descriptor of this process, whatever it is open on)."""
    p = os.path.abspath(path)
    for _ in range(16):
        if p.startswith(("/proc/", "/dev/fd/")):
            return True
        if not os.path.islink(p):
            return False
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return False


def is_stream(path: str | os.PathLike) -> bool:
    """Whether ``path`` is written to directly rather than through a part file and a rename: ``-``, an
    existing file that is not a regular file (a device, FIFO, socket), or a file descriptor of this process
    (/dev/stdout, /dev/fd/N, /proc/self/fd/N, whatever they are open on)."""
    s = str(path)
    if s == STDOUT or _via_proc(s):
        return True
    st = _stat(s)
    return st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def is_stdout(path: str | os.PathLike) -> bool:
    """Whether writing to ``path`` writes to this process's standard output (``-``, /dev/stdout, ...)."""
    return std_fd(path) == 1


def std_fd(path: str | os.PathLike) -> int | None:
    """1 or 2 when ``path`` is what this process's standard output or error is open on (``-``: 1), else None:
    such a target is written through that stream, not opened a second time (the two would overwrite each
    other in a file)."""
    if str(path) == STDOUT:
        return 1
    st = _stat(path)
    for fd in (1, 2):
        try:
            std = os.fstat(fd)
        except OSError:
            continue
        if st is not None and (st.st_dev, st.st_ino) == (std.st_dev, std.st_ino):
            return fd
    return None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: by device and inode where both exist (so ``./x`` and ``x``, a symlink
    and a hard link are caught), else by their resolved paths."""
    ia, ib = file_id(a), file_id(b)
    if ia is not None and ib is not None:
        return ia == ib
    if STDOUT in (str(a), str(b)):
        return False
    return os.path.realpath(a) == os.path.realpath(b)


def input_files(source: str | os.PathLike | None) -> list[str]:
    """The local files a source reads, however it is spelt: a path (relative, a symlink), or a ``file:`` URL
    (``file:///abs/v.mp4``, ``file://localhost/...``, ``file:v.mp4``; both the literal and the %-decoded path).
    Empty for cameras, streams and folders (their images are compared one by one)."""
    if source is None:
        return []
    s = str(source).strip()
    cands = [s]
    if re.match(r"^file:", s, re.IGNORECASE):
        raw, parsed = s[5:], urlsplit(s).path  # raw: a name holding "#" or "?" too
        if raw.startswith("//"):
            raw = raw[2:]
            raw = raw[len("localhost"):] if raw.lower().startswith("localhost/") else raw
        cands = [raw, unquote(raw), parsed, unquote(parsed)]
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", s) and not os.path.exists(s):
        return []  # another URL scheme: nothing local
    return list(dict.fromkeys(c for c in cands if c and os.path.isfile(c)))


def refuse_clobbering(inputs: Sequence[tuple[str, str]], outputs: Sequence[tuple[str | None, str]]) -> None:
    """:class:`SinkError` when an output is one of the inputs or another output (:func:`same_file`).

    ``inputs``: ``(path, description)`` pairs such as ``("v.mp4", "the source v.mp4 itself")``; ``outputs``:
    ``(path, option)`` pairs (``None`` paths are skipped; ``-`` is standard output, compared by what it is open on)."""
    outs = [(str(p), what) for p, what in outputs if p]
    for p, what in outs:
        for ip, desc in inputs:
            if same_file(p, ip):
                raise SinkError(f"{what} {p} is {desc}; choose another output file")
    for i, (a, what_a) in enumerate(outs):
        for b, what_b in outs[i + 1:]:
            if a == b or same_file(a, b):
                raise SinkError(f"{what_a} {a} and {what_b} {b} are the same file; give them different names")


def check_writable(path: str | os.PathLike, what: str = "output", stream_ok: bool = True) -> Path:
    """Raise :class:`SinkError` naming ``path`` unless it can be written: a regular file that can be created
    there, or (``stream_ok``) a stream target (:func:`is_stream`) that is open for writing."""
    p = Path(path)
    if is_stream(path):
        if not stream_ok:
            raise SinkError(f"{what} {path}: not a regular file (a device, FIFO or standard output); it is "
                            "written to a part file renamed onto the name, so give a file name")
        if str(path) != STDOUT and _stat(path) is None:
            raise SinkError(f"{what} {path}: no such device or file")
        if str(path) != STDOUT and not os.access(path, os.W_OK):
            raise SinkError(f"{what} {path}: cannot write there (permission denied)")
        return p
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


def kept(path: str | os.PathLike) -> str:
    """What a failed output leaves at ``path``, for the end of its error message."""
    return "; the previous file is kept" if os.path.isfile(path) else ""


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes this process may still write on the file system holding ``path`` (None when unknown)."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    blocks = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize
