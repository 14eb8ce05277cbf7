"""A training run's folder (``--out``): which files make a run, what a fresh run may start in, how a resumed one
puts its log back to its checkpoint, and one-line reports of file-system errors.

A run writes ``config.json`` (its settings, the pair sampling and the data), ``log.csv`` (a row every
``log_every`` steps), ``checkpoint.pt`` (the latest, written atomically), ``loss.png`` and, at the end,
``<arch>.pt``. Each is written whole through a temporary file beside it (``<name>.tmp``), removed on failure.
"""
from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

from ..core.storage import unwritable_folder, write_atomic

__all__ = ["RUN_FILES", "LOG_HEADER", "RunFolderError", "previous_run", "fresh_run_refusal", "remove_stale_temps",
           "truncate_log", "named", "out_problem"]

RUN_FILES = ("checkpoint.pt", "log.csv", "config.json")  # what marks a folder as holding a run
LOG_HEADER = ["step", "loss", "lr", "pairs_per_s", "elapsed_s"]
_TEMPS = ("checkpoint.pt.tmp", "log.csv.tmp", "config.json.tmp", "loss.png.tmp", "loss.png.tmp.png")


class RunFolderError(ValueError):
    """``--out`` cannot take this run: it holds another run's files (a fresh run never mixes into them)."""


def previous_run(out: Path) -> list[str]:
    """The files of an earlier run in ``out`` (of :data:`RUN_FILES`)."""
    return [f for f in RUN_FILES if (out / f).exists()]


def fresh_run_refusal(out: Path) -> str | None:
    """Why a new run (not ``--resume``) cannot start in ``out``, or None. A new run never appends to another
    run's log: with a checkpoint, continue that run (``--resume``); without one (it was killed before its
    first), nothing can be resumed, so the files must go or the run goes elsewhere."""
    found = previous_run(out)
    if not found:
        return None
    if "checkpoint.pt" in found:
        return (f"--out {out} holds an earlier run ({', '.join(found)}); continue it with --resume (same settings), "
                "or start a new run in another --out")
    return (f"--out {out} holds files of an earlier run that stopped before its first checkpoint "
            f"({', '.join(found)}), so there is nothing to resume; start the new run in another --out, or delete "
            "those files to start over there (a new run never appends to another run's log.csv)")


def remove_stale_temps(out: Path) -> list[str]:
    """Remove the temporary files a run killed mid-write left in ``out`` (they hold disk space, and are never
    read); returns their names."""
    gone = []
    for name in _TEMPS:
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()
            gone.append(name)
    return gone


def _row_ok(row: list[str]) -> bool:
    if len(row) != len(LOG_HEADER):
        return False
    try:
        int(row[0])
        [float(v) for v in row[1:]]
    except ValueError:
        return False
    return True


def truncate_log(path: Path, step: int) -> None:
    """Keep the rows of ``log.csv`` up to ``step`` (the checkpoint's), each whole: rows written after the
    checkpoint, and a row cut short by a kill or a full disk, are dropped (the resumed run logs those steps
    again). Rewritten atomically, and only when something is dropped."""
    if not path.exists():
        return
    text = path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    body = [r for r in rows[1:] if r]
    keep = [r for r in body if _row_ok(r) and int(r[0]) <= step]
    if rows[:1] == [LOG_HEADER] and keep == body and (not text or text.endswith("\n")):
        return
    buf = io.StringIO()
    csv.writer(buf).writerows([LOG_HEADER, *keep])
    write_atomic(path, buf.getvalue().encode())


def named(e: OSError, path: Path | str) -> OSError:
    """``e`` with ``path`` as its file name, for a one-line report (a failed write to an open file has none)."""
    return OSError(e.errno, e.strerror or str(e), str(e.filename or path))


def out_problem(out: Path) -> str | None:
    """Why ``--out`` cannot be written (a file, under a file, a read-only or forbidden place), or None."""
    problem = unwritable_folder(out)
    return f"--out {problem}" if problem else None
