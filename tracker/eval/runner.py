"""One-pass benchmark runs that write the official result layouts and resume after interruption.

Each (tracker, sequence) is a job: the tracker is initialised on frame 1 with the ground
truth and updated on every later frame, never re-initialised. Only ``init``/``update`` is
timed (image decoding excluded). As soon as a sequence is done its files are written
atomically (temporary file, then ``os.replace``): first the times, then the boxes, so a box
file that exists is a finished run. A re-run skips finished runs; a run killed at any point
loses only the sequence in progress.

Layouts (boxes 1-based ``x,y,w,h`` with 3 decimals, times in seconds per frame, confidences in [0, 1]
per frame, 1 on frame 1; the long-term measures read them):

* OTB: ``<results>/<tracker>/<seq>.txt``, ``<results>/<tracker>/times/<seq>_time.txt`` and
  ``<results>/<tracker>/scores/<seq>_score.txt``.
* GOT-10k: ``<results>/<tracker>/<seq>/<seq>_001.txt`` (``_002``, ``_003`` for trackers that
  are not deterministic), ``<seq>_time.txt`` with one column per repetition, and
  ``<seq>_001_confidence.value`` per repetition (as VOT-LT names them).

Each tracker folder also holds ``manifest.json``, what produced its results (weights sha256, tracking
parameters, back-end, protocol): a run with other settings into the same folder is refused rather than
mixing or replacing results (:mod:`tracker.eval.provenance`). Worker processes (``workers > 1``) exit when
the process that started them dies, killed or not (Linux: ``PR_SET_PDEATHSIG``; elsewhere a watchdog thread).
A write that fails (a full disk, a read-only folder) raises an :class:`OSError` naming the file, and leaves
no partial file under it.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TextIO

import cv2
import numpy as np

from ..core import ops
from ..core.storage import unwritable_folder, write_atomic
from ..io.progress import ProgressBar
from ..io.video import read_image
from . import provenance
from .datasets import Sequence
from .trackers import is_deterministic, label_of, make_tracker

__all__ = ["Layout", "RunSummary", "parse_shard", "shard", "run_benchmark", "write_atomic", "check_out_folder",
           "GOT10K_REPETITIONS", "worker_init", "ray_calls", "track_job", "write_runs"]

GOT10K_REPETITIONS = 3


@dataclass(frozen=True)
class Layout:
    """Where results live: ``kind`` is ``"otb"`` or ``"got10k"``, ``root`` the results folder."""

    kind: str
    root: Path

    def __post_init__(self) -> None:
        if self.kind not in ("otb", "got10k"):
            raise ValueError(f"layout kind must be 'otb' or 'got10k', got {self.kind!r}")

    def folder(self, tracker: str) -> Path:
        """One tracker's results folder (it holds the :data:`provenance.MANIFEST` too)."""
        return self.root / tracker

    def record_file(self, tracker: str, seq: str, rep: int = 1) -> Path:
        if self.kind == "otb":
            return self.root / tracker / f"{seq}.txt"
        return self.root / tracker / seq / f"{seq}_{rep:03d}.txt"

    def score_file(self, tracker: str, seq: str, rep: int = 1) -> Path:
        """Per-frame confidences of a run (written before its box file)."""
        if self.kind == "otb":
            return self.root / tracker / "scores" / f"{seq}_score.txt"
        return self.root / tracker / seq / f"{seq}_{rep:03d}_confidence.value"

    def time_file(self, tracker: str, seq: str) -> Path:
        if self.kind == "otb":
            return self.root / tracker / "times" / f"{seq}_time.txt"
        return self.root / tracker / seq / f"{seq}_time.txt"

    def repetitions(self, spec: str) -> int:
        """How many runs a tracker gets per sequence: GOT-10k runs non-deterministic ones 3 times."""
        return GOT10K_REPETITIONS if (self.kind == "got10k" and not is_deterministic(spec)) else 1

    def finished(self, tracker: str, seq: Sequence, rep: int = 1) -> bool:
        """A result file exists with one line per frame (a truncated smoke-test run does not count)."""
        f = self.record_file(tracker, seq.name, rep)
        if not f.is_file():
            return False
        with open(f) as fh:
            return sum(1 for line in fh if line.strip()) == len(seq)


def check_out_folder(out: str | Path, subfolders: tuple[str, ...] = (), what: str = "--out") -> None:
    """Fail at once, with a one-line :class:`ValueError` naming ``what``, where ``out`` cannot take output
    (:func:`tracker.core.storage.unwritable_folder`; ``subfolders`` under it are checked too)."""
    problem = unwritable_folder(out, subfolders)
    if problem:
        raise ValueError(f"{what} {problem}")


def _format_boxes(boxes: np.ndarray) -> str:
    one_based = ops.zero_based_to_one_based(boxes)
    return "".join(",".join(f"{v:.3f}" for v in row) + "\n" for row in one_based)


def _write_times(path: Path, rep: int, times: np.ndarray) -> None:
    # One column per repetition; columns not run yet are NaN (the toolkit drops NaN times).
    n = len(times)
    old = np.empty((n, 0))
    if rep > 1 and path.is_file():
        try:
            loaded = np.loadtxt(path, delimiter=",", ndmin=2)
            old = loaded if loaded.shape[0] == n else old
        except ValueError:
            pass
    cols = np.full((n, max(rep, old.shape[1])), np.nan)
    cols[:, : old.shape[1]] = old
    cols[:, rep - 1] = times
    write_atomic(path, "".join(",".join(f"{v:.8f}" for v in row) + "\n" for row in cols))


def track_sequence(tracker, seq: Sequence, on_frame: Callable[[int], None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over ``seq``: returns 0-based boxes ``(N, 4)``, per-frame seconds ``(N,)`` and per-frame
    confidences ``(N,)`` (the tracker's ``confidence`` after each call; 1 where it has none).

    Frame 1's box is the ground truth; its time is that of ``init``.
    """
    n = len(seq)
    boxes = np.zeros((n, 4))
    times = np.zeros(n)
    scores = np.ones(n)
    boxes[0] = seq.init_box
    for f, path in enumerate(seq.img_files):
        frame = read_image(path)
        start = time.perf_counter()
        if f == 0:
            tracker.init(frame, seq.init_box)
        else:
            boxes[f] = tracker.update(frame)
            scores[f] = getattr(tracker, "confidence", 1.0)
        times[f] = time.perf_counter() - start
        if on_frame is not None:
            on_frame(1)
    return boxes, times, scores


def _run_job(spec: str, seq: Sequence, layout: Layout, reps: list[int], peers: str | None, device: str,
             threads: int | None, on_frame: Callable[[int], None] | None = None) -> tuple[str, str, int, float]:
    """Run the missing repetitions of one (tracker, sequence) and write them; returns (label, seq, frames, seconds)."""
    name, runs = track_job(spec, seq, reps, peers, device, threads, on_frame)
    write_runs(layout, name, seq, runs)
    return name, seq.name, len(seq) * len(runs), float(sum(times.sum() for _, _, times, _ in runs))


def track_job(spec: str, seq: Sequence, reps: list[int], peers: str | None, device: str, threads: int | None,
              on_frame: Callable[[int], None] | None = None, tracker=None) -> tuple[str, list[tuple]]:
    """Track repetitions ``reps`` of one (tracker, sequence), writing nothing: ``(label, [(rep, boxes, times,
    scores), ...])`` (:func:`track_sequence`'s arrays). ``tracker``: one already built from ``spec`` to reuse."""
    if threads:
        cv2.setNumThreads(threads)
        from ..core.siamfc import HAS_TORCH

        if HAS_TORCH:
            import torch

            torch.set_num_threads(threads)
    tracker = tracker or make_tracker(spec, peers, device, threads=threads)
    runs = []
    for rep in reps:
        cv2.setRNGSeed(rep)
        np.random.seed(rep)
        runs.append((rep, *track_sequence(tracker, seq, on_frame)))
    return label_of(spec), runs


def write_runs(layout: Layout, name: str, seq: Sequence, runs: list[tuple]) -> None:
    """Write :func:`track_job`'s runs of tracker ``name`` on ``seq`` into ``layout``, each file atomically: times,
    confidences, then boxes (a box file that exists is a finished run)."""
    for rep, boxes, times, scores in runs:
        _write_times(layout.time_file(name, seq.name), rep, times)
        write_atomic(layout.score_file(name, seq.name, rep), "".join(f"{v:.4f}\n" for v in scores))
        write_atomic(layout.record_file(name, seq.name, rep), _format_boxes(boxes))


_TRACKERS: dict[tuple, object] = {}  # per worker process of a Ray run: spec -> tracker, built once


def _ray_job(spec: str, seq: Sequence, reps: list[int], peers: str | None, device: str, threads: int) -> tuple:
    """A Ray task (:func:`ray_calls`): :func:`track_job` with this process's tracker for ``spec``; returns
    ``(label, seq, runs)`` for the driver to write."""
    from .distributed import fault_hook

    key = (spec, peers, device, threads)
    if key not in _TRACKERS:
        _TRACKERS[key] = make_tracker(spec, peers, device, threads=threads)
    name, runs = track_job(spec, seq, reps, peers, device, threads, fault_hook(), tracker=_TRACKERS[key])
    return name, seq, runs


def ray_calls(jobs: list[tuple], peers: str | None, device: str, threads: int = 1) -> list[tuple]:
    """The Ray calls (function, arguments, resources) of the jobs ``(spec, seq, reps)``, ``threads`` each."""
    from .distributed import resources

    return [(_ray_job, (spec, seq, reps, peers, device, threads), resources(device, threads))
            for spec, seq, reps in jobs]


def _lines(path: Path) -> int:
    with open(path) as fh:
        return sum(1 for line in fh if line.strip())


def check_lengths(layout: Layout, tracker: str, seq: Sequence, reps: list[int]) -> None:
    """Refuse to replace a result file that exists but does not fit ``seq`` as this run has it (another
    ``--max-frames``, or another annotation): since results are written atomically, such a file is a complete
    result of other settings, not an unfinished one."""
    for rep in reps:
        f = layout.record_file(tracker, seq.name, rep)
        if f.is_file():
            raise provenance.SettingsMismatch(
                f"{f}: holds {_lines(f)} boxes but {seq.name} has {len(seq)} frames in this run: results made with "
                f"other settings (e.g. --max-frames); use another --out or a LABEL= (e.g. --trackers "
                f"{tracker}-2=SPEC) to keep both, or delete {f} to run it again")


def worker_init(parent: int) -> None:
    """Worker processes die with the process that started them: ``PR_SET_PDEATHSIG`` (Linux; SIGKILL when
    the parent dies, killed or not), and a watchdog thread that exits when the parent changes (everywhere)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="siamtrack-parent-watchdog", daemon=True).start()


def _watch_parent(parent: int, every: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected i/n such as 0/4, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need n >= 1 and 0 <= i < n")
    return i, n


def shard(sequences: list[Sequence], index: int, count: int) -> list[Sequence]:
    """Every ``count``-th sequence starting at ``index`` (0-based)."""
    return sequences[index::count]


@dataclass
class RunSummary:
    ran: list[tuple[str, str]]  # (tracker, sequence) run now
    skipped: list[tuple[str, str]]  # already finished before this run


def run_benchmark(sequences: list[Sequence], specs: Iterable[str], layout: Layout, *, workers: int = 1,
                  peers: str | Path | None = None, device: str = "auto", progress: bool = True,
                  stream: TextIO | None = None, max_frames: int | None = None, ray: str | None = None) -> RunSummary:
    """Run every tracker spec over ``sequences`` (missing results only) into ``layout``.

    ``workers > 1`` runs sequences in that many processes; ``ray`` (``"local"`` or a cluster address) as Ray
    tasks instead (:mod:`tracker.eval.distributed`; ``workers``: CPUs of a local instance). Trackers are built first once,
    so a bad spec or missing model fails before any work starts. ``max_frames``: how ``sequences`` were
    truncated (part of the protocol the results are keyed by). Each tracker's folder is checked against this
    run's settings (:mod:`tracker.eval.provenance`) before anything runs: results made with other settings
    raise :class:`provenance.SettingsMismatch` and are left as they are.
    """
    specs = list(specs)
    built = [make_tracker(spec, peers, device) for spec in specs]  # validate early, with a clear message
    labels = [label_of(s) for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--trackers: two trackers share a results name ({', '.join(labels)}); use LABEL=SPEC")
    keys = []
    for spec, tracker in zip(specs, built):
        key, info = tracker.settings()
        keys.append((provenance.results_key(key, layout.kind, max_frames), {"spec": spec, **info}))
    for name, (key, _) in zip(labels, keys):  # check every folder before writing to any
        provenance.check(layout.folder(name), key)
    jobs, summary = [], RunSummary([], [])
    for spec in specs:
        name = label_of(spec)
        for seq in sequences:
            reps = [r for r in range(1, layout.repetitions(spec) + 1) if not layout.finished(name, seq, r)]
            check_lengths(layout, name, seq, reps)
            (summary.ran if reps else summary.skipped).append((name, seq.name))
            if reps:
                jobs.append((spec, seq, reps))
    for name, (key, info) in zip(labels, keys):
        provenance.claim(layout.folder(name), key, info, write_atomic)
    bar = ProgressBar(sum(len(seq) * len(reps) for _, seq, reps in jobs), stream, enabled=progress)
    peers_s = str(peers) if peers is not None else None
    try:
        if ray is not None:
            from . import distributed

            engine = distributed.connect(ray, num_cpus=workers if workers > 1 else None)

            def done(result) -> None:
                name, seq, runs = result
                write_runs(layout, name, seq, runs)
                bar.advance(len(seq) * len(runs), f"{name}/{seq.name} done", force=True)

            distributed.run_tasks(engine, ray_calls(jobs, peers_s, device), done)
        elif workers <= 1:
            for spec, seq, reps in jobs:
                note = f"{label_of(spec)}/{seq.name}"
                _, _, frames, spent = _run_job(spec, seq, layout, reps, peers_s, device, None,
                                               lambda k, note=note: bar.advance(k, note))
                bar.advance(0, f"{note} done ({frames / max(spent, 1e-9):.0f} fps tracking)", force=True)
        else:
            import multiprocessing as mp

            threads = max(1, (os.cpu_count() or 1) // workers)
            # Workers are spawned by submit() in this thread, which outlives them (PR_SET_PDEATHSIG follows the
            # thread that started a process, not the process).
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=worker_init,
                                     initargs=(os.getpid(),)) as pool:
                futures = [pool.submit(_run_job, spec, seq, layout, reps, peers_s, device, threads)
                           for spec, seq, reps in jobs]
                try:
                    for fut in as_completed(futures):
                        name, seq_name, frames, spent = fut.result()
                        bar.advance(frames, f"{name}/{seq_name} done ({frames / max(spent, 1e-9):.0f} fps tracking)",
                                    force=True)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return summary
