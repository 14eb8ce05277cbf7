"""Temporal robustness (OTB's TRE): each sequence tracked from several starting frames.

One pass from the first frame (OPE) makes a sequence's score hinge on one trajectory: a single drift
at frame 300 costs every later frame, so two trackers that differ only in where they happen to slip
can swap places by a whole sequence's weight. OTB's TRE (Wu et al., 2013) starts the tracker again at
frames spread over the sequence, initialised with the ground truth there, and averages: more, shorter,
partly independent trajectories from the same frames.

:func:`make_tre_set` writes such a set in OTB layout, so every tracker runs on it through the same
``siamtrack eval otb`` (resumable, per-sequence results): segment ``k`` of ``K`` of sequence ``S`` is
``S-tre<k>``, from frame ``floor(k N / K)`` (moved on to the first frame with a valid box) to the end;
``S-tre0`` is the whole sequence. Frames are hard-linked where the file system allows, else copied.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.storage import write_atomic
from .datasets import is_valid_box, load_otb, write_otb_sequence

__all__ = ["segment_starts", "make_tre_set"]

MIN_FRAMES = 10  # a segment shorter than this is dropped (too few frames to score)


def segment_starts(gt: np.ndarray, segments: int) -> list[int]:
    """0-based first frames of ``segments`` segments of a sequence with ground truth ``gt`` (N, 4): evenly
    spaced, each moved on to the next frame with a valid box; segments that would be shorter than
    ``MIN_FRAMES`` frames or repeat an earlier start are left out."""
    if segments < 1:
        raise ValueError(f"--segments must be >= 1, got {segments}")
    n = len(gt)
    valid = np.flatnonzero(is_valid_box(gt))
    starts: list[int] = []
    for k in range(segments):
        later = valid[valid >= (k * n) // segments]
        if len(later) and n - later[0] >= MIN_FRAMES and later[0] not in starts:
            starts.append(int(later[0]))
    return starts


def make_tre_set(root: str | Path, out: str | Path, segments: int = 5, names: list[str] | None = None,
                 log=print) -> dict:
    """Write the TRE set of the OTB-layout set at ``root`` into ``out`` (see the module docstring) and return its
    manifest (also ``out/tre.json``: each segment's source sequence and first frame, 0-based)."""
    out = Path(out)
    if out.resolve() == Path(root).resolve():
        raise ValueError(f"--out {out} is the source set itself; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"source": str(Path(root).resolve()), "segments": segments, "sequences": {}}
    for seq in load_otb(root, names):
        starts = segment_starts(seq.gt, segments)
        for k, start in enumerate(starts):
            name = f"{seq.name}-tre{k}"
            write_otb_sequence(out / name, list(seq.img_files[start:]), seq.gt[start:], link=True)
            manifest["sequences"][name] = {"source": seq.name, "start": start, "frames": len(seq) - start}
        log(f"{seq.name}: {len(starts)} segments")
    write_atomic(out / "tre.json", json.dumps(manifest, indent=1) + "\n")
    return manifest
