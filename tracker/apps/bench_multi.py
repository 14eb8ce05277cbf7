"""``siamtrack bench --targets 1 4 16``: the cost of several targets per frame.

For each target count N and each model and back-end, these ways in one run, on the same frames:
:class:`tracker.core.multi.MultiTracker` batched (one network call per frame for all targets), the same
targets one after another
(``batched=False``: N network calls, as N separate trackers), and, for reference, N OpenCV
TrackerNano instances one after another (OpenCV's ``MultiTracker`` does just that). Targets: the
sequence's first ground-truth box and N - 1 boxes of its size spread over a grid across the frame
(for timing only what they hold does not matter: every target costs its crops and its share of
the network). Frames are decoded before timing.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import timing

__all__ = ["spread_boxes", "time_targets", "run_multi_bench"]


def spread_boxes(box: Sequence[float], size: tuple[int, int], n: int) -> list[tuple[float, float, float, float]]:
    """``box`` and ``n - 1`` boxes of its size, centred on the cells of a near-square grid over an
    image of ``size`` = (width, height); all inside the image."""
    x, y, w, h = (float(v) for v in box)
    W, H = size
    cols = int(np.ceil(np.sqrt(max(n - 1, 1))))
    rows = int(np.ceil(max(n - 1, 1) / cols))
    out = [(x, y, w, h)]
    for k in range(n - 1):
        cx = (k % cols + 0.5) * W / cols
        cy = (k // cols + 0.5) * H / rows
        out.append((float(np.clip(cx - w / 2, 0, W - w)), float(np.clip(cy - h / 2, 0, H - h)), w, h))
    return out


class _OneAfterAnother:
    """N single-target trackers updated in turn (the reference: OpenCV's MultiTracker does this)."""

    def __init__(self, make: Callable[[], object]) -> None:
        self._make, self._trackers = make, []

    def add(self, frame: np.ndarray, box) -> int:
        t = self._make()
        t.init(frame, box)
        self._trackers.append(t)
        return len(self._trackers)

    def update(self, frame: np.ndarray) -> dict:
        return {i + 1: t.update(frame) for i, t in enumerate(self._trackers)}


def time_targets(make, clips, n: int, warmup: int = 5) -> float:
    """Median ms per frame of ``make()`` (with ``add``/``update``) tracking ``n`` targets over ``clips``
    (first ``warmup`` updates of each clip excluded; the median, as a moment of other load on a shared
    machine moves the mean of a few hundred frames)."""
    lat = []
    for frames, box in clips:
        t = make()
        for b in spread_boxes(box, (frames[0].shape[1], frames[0].shape[0]), n):
            t.add(frames[0], b)
        lat += timing.update_latencies(t, frames[1:], warmup)
    return float(np.median(lat)) * 1e3


def _progress(row: dict) -> None:
    """One line per row as it is measured (stderr), so a run cut short still shows what it timed."""
    print(f"  {row['tracker']} x{row['targets']}: {row['ms']:.2f} ms/frame", file=sys.stderr, flush=True)


def run_multi_bench(root: Path, peers: Path | None, models: list[str], sequences: list[str], max_frames: int,
                    device: str, backends: tuple[str, ...], threads: tuple[int | None, ...],
                    targets: tuple[int, ...]) -> list[dict]:
    """Time every target count in ``targets`` for each model and back-end, batched and one after another,
    with TrackerNano x N when ``peers`` is given; print and return the rows."""
    from ..core.multi import MultiTracker
    from ..eval.trackers import OpenCVTracker

    clips = timing.load_clips(root, sequences, max_frames)
    print(timing.hardware())
    print(f"{len(clips)} sequences from {root}, {sum(len(f) - 1 for f, _ in clips)} frames per row, frames pre-decoded; "
          f"targets: the first box and N - 1 more of its size on a grid")
    warm = [(f[:15], b) for f, b in clips[:1]]  # a short warm-up run before each tracker's rows, not kept
    rows: list[dict] = []
    for shown, model, base in timing.each_tracker(models, backends, threads, device):
        ways = {"batched": dict(batched=True), "one after another": dict(batched=False)}
        for kw in ways.values():  # warm-up at the largest count (a GPU's clocks and kernels for that batch)
            time_targets(lambda kw=kw: MultiTracker(base, **kw), warm, max(targets))
        for way, kw in ways.items():
            for n in targets:
                ms = time_targets(lambda kw=kw: MultiTracker(base, **kw), clips, n)
                rows.append({"tracker": f"{model}, {way}", "model": model, "threads": shown, "targets": n, "ms": ms})
                _progress(rows[-1])
    for nthreads in threads if peers is not None else ():
        timing.set_threads(nthreads)
        shown = nthreads or torch.get_num_threads()
        nano = lambda: _OneAfterAnother(lambda: OpenCVTracker("nano", peers))  # noqa: E731
        time_targets(nano, warm, 1)
        for n in targets:
            rows.append({"tracker": "cv2.TrackerNano x N, one after another", "model": "cv2.TrackerNano",
                         "threads": shown, "targets": n, "ms": time_targets(nano, clips, n)})
            _progress(rows[-1])
    # One target tracked one after another is a plain single-target tracker: the reference of each model.
    single = {(r["model"], r["threads"]): r["ms"] for r in rows
              if r["targets"] == 1 and r["tracker"].endswith(", one after another")}
    width = max(44, *(len(r["tracker"]) for r in rows)) if rows else 44
    print(f"{'tracker':{width}s} {'threads':>7s} {'targets':>7s} {'ms/frame':>9s} {'ms/target':>9s} {'fps':>7s} "
          f"{'vs 1 target':>11s}")
    for r in rows:
        ref = single.get((r["model"], r["threads"]))
        r["vs_one"] = r["ms"] / ref if ref else None
        ratio = f"{r['vs_one']:.2f}x" if ref else "-"
        print(f"{r['tracker']:{width}s} {r['threads']:7d} {r['targets']:7d} {r['ms']:9.2f} {r['ms'] / r['targets']:9.2f} "
              f"{1000.0 / r['ms']:7.1f} {ratio:>11s}")
    print("ms/frame: median over the frames; vs 1 target: the row's ms per frame / the same model's with one target "
          "and a plain single-target tracker (--targets must include 1), same run")
    print(f"after the run: {timing.load_average()}")
    return rows
