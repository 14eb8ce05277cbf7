"""The one text progress bar, shared by the demos, the benchmark runner and training.

It shows items done of ``total`` (frames, pairs ...), a bar, the rate, the ETA and an
optional note::

     25/100 [######------------------]  25%  10.0 fps ETA 0:07  kcf/Deer

On a terminal the line is redrawn in place, at most ~10 times a second. On a pipe or a
file a plain line is printed at most every ``pipe_interval`` seconds (so logs stay short),
and the final state always gets a line of its own: when ``done`` reaches ``total``, or at
:meth:`ProgressBar.close` after an interruption.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import TextIO

__all__ = ["ProgressBar", "format_eta"]


def format_eta(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on); ``?:??`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?:??"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    """One-line text progress bar: items done of ``total``, rate, ETA and an optional note.

    ``update(done, rate, note)`` sets the state; ``advance(n, note)`` adds ``n`` items.
    ``rate`` is in ``rate_unit`` (items per second); when it is not given, the average
    since the bar was made is used (counting from ``initial`` items, for resumed work).
    ``force=True`` prints this state whatever the interval (e.g. when a sequence ends).
    :meth:`clear` ends an in-place line so other messages start on a fresh one;
    :meth:`close` leaves the final state on screen (idempotent). With ``enabled=False``
    the bar only counts and never writes.
    """

    def __init__(self, total: int, stream: TextIO | None = None, *, rate_unit: str = "fps", width: int = 24,
                 pipe_interval: float = 5.0, tty_interval: float = 0.1, initial: int = 0,
                 enabled: bool = True) -> None:
        self.total = max(int(total), 0)
        self.stream = stream if stream is not None else sys.stderr
        self.rate_unit, self.width, self.enabled = rate_unit, width, enabled
        self.done, self.note = int(initial), ""
        self._initial = int(initial)
        self._rate: float | None = None
        self._start = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._interval = tty_interval if self._tty else pipe_interval
        self._last = -math.inf  # when a line was last written
        self._shown: tuple[int, str] | None = None  # (done, note) last written
        self._drawn = 0  # length of the in-place line on the terminal (0: none open)
        self._touched = False
        self._closed = False

    @property
    def rate(self) -> float:
        """The rate given to the last update, else the average since the start."""
        if self._rate is not None:
            return self._rate
        elapsed = time.monotonic() - self._start
        return (self.done - self._initial) / elapsed if elapsed > 0 else 0.0

    def format(self, done: int, rate: float, note: str = "") -> str:
        frac = min(done / self.total, 1.0) if self.total else 1.0
        fill = int(round(frac * self.width))
        eta = (self.total - done) / rate if rate > 0 else (0.0 if done >= self.total else math.nan)
        line = (f"{done:>{len(str(self.total))}}/{self.total} [{'#' * fill}{'-' * (self.width - fill)}] "
                f"{frac:4.0%} {f'{rate:5.1f}' if rate > 0 else '   --'} {self.rate_unit} ETA {format_eta(eta)}")
        return f"{line}  {note}" if note else line

    def update(self, done: int, rate: float | None = None, note: str | None = None, *, force: bool = False) -> None:
        """Set the state to ``done`` items (at ``rate``, with ``note`` if given) and draw it if due."""
        self.done, self._rate, self._touched = int(done), rate, True
        if note is not None:
            self.note = note
        if not self.enabled or self._closed:
            return
        now = time.monotonic()
        finishing = self.done >= self.total and (self._shown is None or self._shown[0] < self.total)
        if force or finishing or now - self._last >= self._interval:
            self._write(now)

    def advance(self, n: int = 1, note: str | None = None, *, force: bool = False) -> None:
        """Add ``n`` items done (the rate is the average since the start)."""
        self.update(self.done + n, None, note, force=force)

    def _write(self, now: float) -> None:
        line = self.format(self.done, self.rate, self.note)
        if self._tty:
            try:
                cols = os.get_terminal_size(self.stream.fileno()).columns
            except (AttributeError, ValueError, OSError):
                cols = 120
            line = line[: max(cols - 1, 20)]
            self.stream.write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last, self._shown = now, (self.done, self.note)

    def clear(self) -> None:
        """End the in-place line so other messages start on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0

    def close(self) -> None:
        """Write the final state if it is not on screen yet, and end the line."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled or not self._touched:
            return
        if self._shown != (self.done, self.note):
            self._write(time.monotonic())
        self.clear()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
