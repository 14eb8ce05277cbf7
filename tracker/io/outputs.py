"""The files the demos write: box files, and :class:`RunOutputs`, a run's video and box files together.

Each regular file is written atomically: into a hidden part file renamed onto its name at the end (also on an
interruption); a file that cannot be written completely (a full disk) is dropped, and a previous file of that
name kept. A stream target (``-`` for standard output, ``/dev/stdout``, a device, a FIFO) is written to
directly, never replaced.

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
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO

import numpy as np

from ..core.siamfc import TrackResult
from .files import (
    SinkError,
    check_writable,
    is_stream,
    kept,
    part_path,
    remove_stale_parts,
    std_fd,
)
from .video import VideoSink

__all__ = ["SKIPPED_LINE", "BoxLog", "MotLog", "ResultFiles", "RunOutputs", "target_path", "read_mot"]

SKIPPED_LINE = "nan,nan,nan,nan,0"  # box-file line of a source frame that could not be decoded (not tracked)


class _AtomicLines:
    """A text file written line by line into a part file (flushed as it goes) that :meth:`finish` moves
    onto ``path``; part files of earlier killed runs to the same path are removed first. A stream target
    (``-``, /dev/stdout, a device, a FIFO: :func:`tracker.io.files.is_stream`) is written to directly instead,
    never replaced. A write that fails (a full disk) raises :class:`SinkError` naming the file and the cause,
    after :meth:`abort` (the part file removed, a previous file at ``path`` kept)."""

    what = "box file"

    def __init__(self, path: str | os.PathLike, what: str | None = None) -> None:
        self.what = what or self.what
        self.path = check_writable(path, self.what)
        self.stream, std = is_stream(path), std_fd(path)
        self.to_stdout, self._std = std == 1, {1: sys.stdout, 2: sys.stderr}.get(std)
        self.removed_parts = [] if self.stream else remove_stale_parts(self.path)  # left by killed runs
        self._tmp: Path | None = None if self.stream else part_path(self.path)
        self.lines = 0
        self.complete = False  # every line written and the file closed (renamed by finish())
        try:
            self._f: TextIO | None = self._std or \
                (open(self._tmp, "w", encoding="ascii") if self._tmp else open(path, "a", encoding="ascii"))
        except OSError as e:  # a FIFO opened by nobody is waited for, as any writer to it does
            raise SinkError(f"{self.what} {self.path}: cannot write there ({e.strerror or e})") from None

    def _error(self, e: OSError) -> SinkError:
        self.abort()
        if self._std is not None:  # nothing more can be printed there: spare the interpreter's final flush
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._std.fileno())
            except OSError:
                pass
        return SinkError(f"{self.what} {self.path}: cannot write ({e.strerror or e})"
                         f"{'' if self.stream else kept(self.path)}")

    def _write(self, text: str) -> None:
        if self._f is None:
            raise SinkError(f"{self.what} {self.path}: already closed")
        try:
            self._f.write(text)
            self._f.flush()
        except OSError as e:
            raise self._error(e) from None
        self.lines += text.count("\n")

    def end(self) -> None:
        """Every line is written: make them durable and close the file (a regular file is renamed by finish())."""
        if self._f is None:
            return
        try:
            self._f.flush()
            if not self.stream:
                os.fsync(self._f.fileno())
            if self._std is None:
                self._f.close()
        except OSError as e:
            raise self._error(e) from None
        self._f, self.complete = None, True

    def finish(self) -> Path:
        """:meth:`end`, then move the part file onto ``path``; returns ``path``."""
        self.end()
        if self._tmp is not None and self.complete:
            os.replace(self._tmp, self.path)
            self._tmp = None
        return self.path

    close = finish

    def abort(self) -> None:
        """Drop the part file (a previous file at ``path`` stays); nothing more is written."""
        f, self._f, self.complete = self._f, None, False
        if f is not None and self._std is None:
            try:
                f.close()
            except OSError:
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.finish()
        else:  # an exception is on its way: finalise what was written, but never mask it
            try:
                self.finish()
            except SinkError:
                pass


class BoxLog(_AtomicLines):
    """One target's ``x,y,w,h,score`` line per frame (``x,y,w,h,score,state`` with ``states``)."""

    def __init__(self, path: str | os.PathLike, states: bool = False, what: str | None = None) -> None:
        super().__init__(path, what)
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
    added, ended on the frame it is removed, and like every output renamed onto its name only by :meth:`close`.
    ``check(path)`` vets each per-target file before it is opened (e.g. that it is not an input; it raises
    :class:`SinkError`). A file that cannot be written is dropped (its previous version kept); :meth:`close`
    finalises the others and lists the failures in ``errors``."""

    def __init__(self, path: str | os.PathLike, mot: bool, per_target: bool = False,
                 check: Callable[[Path], None] | None = None, states: bool = False) -> None:
        """``states``: the one-target files carry the tracker's state (long-term mode; see :class:`BoxLog`)."""
        self.mot, self.per_target, self._check, self.states = mot, per_target, check, states
        if per_target and is_stream(path):
            raise SinkError(f"--boxes-per-target names its files after --boxes, which is not a regular file "
                            f"({path}): give --boxes a file name")
        self.main: MotLog | BoxLog = MotLog(path, "--boxes") if mot else BoxLog(path, states, "--boxes")
        self.removed_parts = list(self.main.removed_parts)
        self._targets: dict[int, BoxLog] = {}
        self._ended: list[BoxLog] = []  # targets removed: their files complete, renamed by close()
        self.errors: list[SinkError] = []

    def write(self, frame: int, results: Mapping[int, TrackResult] | None, ids: Sequence[int]) -> None:
        """Source frame ``frame`` (1-based): the targets' results, or None when the frame could not be
        decoded (``ids``: the targets tracked then). :class:`SinkError` when a file cannot be written."""
        rows: dict[int, TrackResult | None] = dict(results) if results is not None else dict.fromkeys(ids)
        if self.mot:
            self.main.write(frame, rows)
        else:
            self.main.write(next(iter(rows.values()), None))
        if not self.per_target:
            return
        for target_id in [i for i in self._targets if i not in rows]:  # removed since the last frame
            log = self._targets.pop(target_id)
            self._ended.append(log)
            log.end()
        for target_id, r in rows.items():
            if target_id not in self._targets:
                p = target_path(self.main.path, target_id)
                if self._check is not None:
                    self._check(p)
                self._targets[target_id] = log = BoxLog(p, self.states, "--boxes-per-target file")
                self.removed_parts += log.removed_parts
            self._targets[target_id].write(r)

    def close(self) -> list[Path]:
        """Finalise every file still whole; returns them, the main one first (failures go to ``errors``)."""
        done = []
        for log in [self.main, *self._ended, *self._targets.values()]:
            if log.complete or log._f is not None:
                try:
                    done.append(log.finish())
                except SinkError as e:
                    self.errors.append(e)
        self._targets.clear()
        self._ended.clear()
        return done

    def abort(self) -> None:
        """Drop every part file (previous files stay)."""
        for log in [self.main, *self._ended, *self._targets.values()]:
            log.abort()

    def __enter__(self) -> "ResultFiles":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunOutputs:
    """All the outputs of one tracking run, written frame by frame and finalised together at the end: the
    annotated video (``video``, a :class:`VideoSink`) and the box files (``boxes``, :class:`ResultFiles`).
    :meth:`write` raises :class:`SinkError` for an output that cannot be written (e.g. a full disk): that
    output is dropped at once (its part file removed, a previous file kept), and so are the others at
    :meth:`close`: a run that failed leaves every previous file as it was (an output is complete or absent).
    After a run that ended (or was interrupted) without a failure, :meth:`close` finalises them, with every
    failure in ``errors``."""

    def __init__(self, video: str | None, boxes: str | None, fps: float, mot: bool, per_target: bool = False,
                 check: Callable[[Path], None] | None = None, states: bool = False) -> None:
        self.sink = VideoSink(video, fps=fps) if video else None
        try:
            self.log = ResultFiles(boxes, mot, per_target, check, states) if boxes else None
        except BaseException:
            if self.sink is not None:
                self.sink.abort()
            raise
        self.removed_parts = (self.sink.removed_parts if self.sink is not None else []) + \
            (self.log.removed_parts if self.log is not None else [])
        self.to_stdout = self.log is not None and self.log.main.to_stdout  # box lines on stdout: say things on stderr
        self.errors: list[SinkError] = []
        self.failed: str | None = None  # "video" or "boxes" when a write failed: nothing of this run replaces a file

    def write(self, frame: int, annotated: np.ndarray, results: Mapping[int, TrackResult] | None,
              ids: Sequence[int]) -> None:
        """Source frame ``frame`` (1-based): its annotated picture and the targets' results (None: not decoded)."""
        if self.sink is not None:
            try:
                self.sink.write(annotated)
            except SinkError:
                self.failed = "video"
                raise
        if self.log is not None:
            try:
                self.log.write(frame, results, ids)
            except SinkError:
                self.failed = "boxes"
                raise

    def close(self) -> tuple[Path | None, list[Path]]:
        """Finalise what can be: ``(the video or None, the box files written)``; failures go to ``errors``."""
        video = None
        if self.failed:
            self._drop_the_rest()
            return None, []
        if self.sink is not None and not self.sink.closed:
            try:
                video = self.sink.close()
            except SinkError as e:
                self.errors.append(e)
                self._drop_the_rest()
                return None, []
        boxes = self.log.close() if self.log is not None else []
        self.errors += self.log.errors if self.log is not None else []
        return video, boxes

    def _drop_the_rest(self) -> None:
        """After a failed output: drop the others too, saying so (their previous files stay)."""
        if self.sink is not None and not self.sink.closed and self.failed != "video":
            self.sink.abort()
            self.errors.append(SinkError(f"output video {self.sink.path}: not written, the run did not finish"
                                         f"{kept(self.sink.path)}"))
        if self.log is not None and not self.log.main.complete:
            self.log.abort()
            if not self.log.main.stream and self.failed != "boxes":
                self.errors.append(SinkError(f"box file {self.log.main.path}: not written, the run did not finish"
                                             f"{kept(self.log.main.path)}"))

    def abort(self) -> None:
        """Drop every output (previous files stay)."""
        if self.sink is not None:
            self.sink.abort()
        if self.log is not None:
            self.log.abort()


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
