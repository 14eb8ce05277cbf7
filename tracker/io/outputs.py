"""Box files the demos write, each atomically (a part file renamed on close, also on an interruption).

* :class:`BoxLog`, one target: one ``x,y,w,h,score`` line per source frame (0-based px; the first
  line is the initial box with score 1; :data:`SKIPPED_LINE` for a frame that could not be decoded).
  With ``states`` (the long-term mode) a sixth field, the tracker's state: ``tracking``, ``searching``
  (lost: the box is where the target was last held) or ``reacquired`` (``skipped`` for a frame that
  could not be decoded).
* :class:`MotLog`, several targets: the MOTChallenge text format, one line per target per source frame,
  ``frame,id,x,y,w,h,score,-1,-1,-1``: ``frame`` 1-based as that format has it, ``id`` the tracker's target
  id, the box in 0-based px as everywhere in siamtrack (MOTChallenge's ground truth is 1-based: add 1 to x
  and y to compare with it), ``score`` the tracker's confidence in [0, 1] (a lost target keeps its line, with
  its last box and low score). A target's first line is its initial box with score 1; a frame that could not
  be decoded gives each target tracked then the line ``frame,id,nan,nan,nan,nan,0,-1,-1,-1``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO

from ..core.siamfc import TrackResult
from .video import check_writable, part_path, remove_stale_parts

__all__ = ["SKIPPED_LINE", "BoxLog", "MotLog", "ResultFiles", "target_path", "read_mot"]

SKIPPED_LINE = "nan,nan,nan,nan,0"  # box-file line of a source frame that could not be decoded (not tracked)


class _AtomicLines:
    """A text file written line by line into a part file (flushed as it goes) that ``close()`` moves
    onto ``path``; part files of earlier killed runs to the same path are removed first."""

    what = "box file"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = check_writable(path, self.what)
        self.removed_parts = remove_stale_parts(self.path)  # left by killed runs
        self._tmp = part_path(self.path)
        self._f: TextIO | None = open(self._tmp, "w", encoding="ascii")
        self.lines = 0

    def _write(self, text: str) -> None:
        self._f.write(text)
        self._f.flush()
        self.lines += text.count("\n")

    def close(self) -> Path:
        if self._f is not None:
            self._f.close()
            self._f = None
            os.replace(self._tmp, self.path)
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BoxLog(_AtomicLines):
    """One target's ``x,y,w,h,score`` line per frame (``x,y,w,h,score,state`` with ``states``)."""

    def __init__(self, path: str | os.PathLike, states: bool = False) -> None:
        super().__init__(path)
        self.states = states

    def write(self, result: TrackResult | None) -> None:
        """One frame's line; ``None`` (a frame of the source that could not be decoded): ``SKIPPED_LINE``."""
        if result is None:
            self._write(SKIPPED_LINE + (",skipped" if self.states else "") + "\n")
        else:
            x, y, w, h = result.box
            state = f",{result.state}" if self.states else ""
            self._write(f"{x:.2f},{y:.2f},{w:.2f},{h:.2f},{result.score:.4f}{state}\n")


class MotLog(_AtomicLines):
    """Several targets' lines in the MOTChallenge text format (see the module's docstring)."""

    def write(self, frame: int, results: Mapping[int, TrackResult | None]) -> None:
        """The lines of source frame ``frame`` (1-based): one per target id, ``None`` for a frame that
        could not be decoded."""
        out = []
        for target_id, r in results.items():
            if r is None:
                out.append(f"{frame},{target_id},nan,nan,nan,nan,0,-1,-1,-1\n")
            else:
                x, y, w, h = r.box
                out.append(f"{frame},{target_id},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{r.score:.4f},-1,-1,-1\n")
        self._write("".join(out))


def target_path(path: str | os.PathLike, target_id: int) -> Path:
    """The per-target box file of ``--boxes PATH`` for ``target_id``: ``boxes.txt`` -> ``boxes.3.txt``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.{target_id}{p.suffix}")


class ResultFiles:
    """A demo run's box files: ``path`` as a :class:`MotLog` (``mot``) or a one-target :class:`BoxLog`, and with
    ``per_target`` one :class:`BoxLog` per target (:func:`target_path`), opened on the frame the target is
    added and finalised on the frame it is removed. ``check(path)`` vets each per-target file before it is
    opened (e.g. that it is not the source)."""

    def __init__(self, path: str | os.PathLike, mot: bool, per_target: bool = False,
                 check: Callable[[Path], None] | None = None, states: bool = False) -> None:
        """``states``: the one-target files carry the tracker's state (long-term mode; see :class:`BoxLog`)."""
        self.mot, self.per_target, self._check, self.states = mot, per_target, check, states
        self.main: MotLog | BoxLog = MotLog(path) if mot else BoxLog(path, states)
        self.removed_parts = list(self.main.removed_parts)
        self._targets: dict[int, BoxLog] = {}
        self.finished: list[Path] = []

    def write(self, frame: int, results: Mapping[int, TrackResult] | None, ids: Sequence[int]) -> None:
        """Source frame ``frame`` (1-based): the targets' results, or None when the frame could not be
        decoded (``ids``: the targets tracked then)."""
        rows: dict[int, TrackResult | None] = dict(results) if results is not None else dict.fromkeys(ids)
        if self.mot:
            self.main.write(frame, rows)
        else:
            self.main.write(next(iter(rows.values()), None))
        if not self.per_target:
            return
        for target_id in [i for i in self._targets if i not in rows]:  # removed since the last frame
            self.finished.append(self._targets.pop(target_id).close())
        for target_id, r in rows.items():
            if target_id not in self._targets:
                p = target_path(self.main.path, target_id)
                if self._check is not None:
                    self._check(p)
                self._targets[target_id] = log = BoxLog(p, self.states)
                self.removed_parts += log.removed_parts
            self._targets[target_id].write(r)

    def close(self) -> list[Path]:
        """Finalise every file; returns them, the main one first."""
        self.finished += [log.close() for log in self._targets.values()]
        self._targets.clear()
        return [self.main.close(), *self.finished]

    def __enter__(self) -> "ResultFiles":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_mot(path: str | os.PathLike) -> dict[int, dict[int, tuple[float, float, float, float, float]]]:
    """A MOT-format box file as ``{id: {frame: (x, y, w, h, score)}}``; ValueError naming the file and line
    for a line that is not ten comma-separated numbers."""
    out: dict[int, dict[int, tuple]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="ascii").splitlines(), 1):
        parts = line.split(",")
        try:
            if len(parts) != 10:
                raise ValueError
            frame, target_id = int(parts[0]), int(parts[1])
            x, y, w, h, score = (float(v) for v in parts[2:7])
        except ValueError:
            raise ValueError(f"{path}:{n}: expected frame,id,x,y,w,h,score,-1,-1,-1, got {line!r}") from None
        out.setdefault(target_id, {})[frame] = (x, y, w, h, score)
    return out
