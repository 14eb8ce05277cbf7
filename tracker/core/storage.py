"""Files read or written whole. :func:`write_atomic`: a file is always the old one or the whole new one (a
temporary file beside it, synced, then renamed over it); every writer of results, weights, checkpoints and reports
goes through it. :func:`read_json`: a JSON file, or one clear error naming it."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_atomic", "read_json", "unwritable_folder"]


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError, what: str = "valid JSON") -> Any:
    """The JSON value in ``path``; ``error`` naming the file and the cause where it cannot be read or parsed
    (``what``: what the file should have been, for the message)."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not {what} ({e})") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror or e})") from None


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through ``<name>.tmp`` beside it and a rename, creating
    the folder if needed. On any failure (a full disk, a read-only folder) the temporary file is removed and an
    :class:`OSError` naming ``path`` (its ``filename``; ``strerror`` the cause) is raised; ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def unwritable_folder(out: str | os.PathLike, subfolders: tuple[str, ...] = ()) -> str | None:
    """Why the folder ``out`` cannot take output files, as ``"OUT: cause"``, or None: it (or, where it does not
    exist yet, the nearest existing folder above it) is not a folder or cannot be written in (a probe file is
    made and removed: permission bits alone do not say it for root or a read-only file system), or one of
    ``subfolders`` under it exists but is a file or read-only. Leaves nothing behind."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        return f"{out}: not a folder"
    base = out
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        return f"{out}: {base} is not a folder"
    for d in [base] + [out / s for s in subfolders if (out / s).exists()]:
        if not d.is_dir():
            return f"{out}: {d} is not a folder"
        try:
            fd, probe = tempfile.mkstemp(prefix=".siamtrack-probe-", dir=d)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            return f"{out}: cannot write in {d} ({e.strerror or e})"
    return None
