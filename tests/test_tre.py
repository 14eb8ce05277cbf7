"""The temporal-robustness set (OTB's TRE): segment starts, the written set, and scoring it."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from tracker.eval.datasets import load_otb
from tracker.eval.tre import MIN_FRAMES, make_tre_set, segment_starts

from .helpers import siamtrack_cmd
from .test_stress import _otb_set


def test_segments_start_evenly_at_valid_boxes():
    gt = np.tile([10.0, 10, 20, 20], (100, 1))
    assert segment_starts(gt, 5) == [0, 20, 40, 60, 80]
    gt[20:25] = np.nan  # absent where the second segment would start: it starts at the next box
    gt[40, 2] = 0.0
    assert segment_starts(gt, 5) == [0, 25, 41, 60, 80]
    short = np.tile([10.0, 10, 20, 20], (12, 1))
    assert segment_starts(short, 5) == [0, 2]  # later starts would leave fewer than MIN_FRAMES frames
    assert 12 - 2 >= MIN_FRAMES > 12 - 4
    with pytest.raises(ValueError, match="--segments"):
        segment_starts(gt, 0)


def test_the_set_holds_each_segment_from_its_start_with_its_ground_truth(tmp_path):
    src = _otb_set(tmp_path / "src", n_frames=60)
    manifest = make_tre_set(src, tmp_path / "tre", segments=3, log=lambda *_: None)
    assert sorted(manifest["sequences"]) == ["Drift-tre0", "Drift-tre1", "Drift-tre2"]
    (orig,) = load_otb(src)
    segs = {s.name: s for s in load_otb(tmp_path / "tre")}
    for name, info in manifest["sequences"].items():
        seg, start = segs[name], info["start"]
        assert start == {"Drift-tre0": 0, "Drift-tre1": 20, "Drift-tre2": 40}[name]
        assert len(seg) == 60 - start == info["frames"]
        assert np.allclose(seg.gt, orig.gt[start:], atol=0.01)
        assert seg.img_files[0].read_bytes() == orig.img_files[start].read_bytes()
    assert json.loads((tmp_path / "tre" / "tre.json").read_text()) == manifest
    assert os.stat(segs["Drift-tre1"].img_files[0]).st_nlink >= 2  # hard-linked, same file system
    with pytest.raises(ValueError, match="source set itself"):
        make_tre_set(src, src)


@pytest.mark.slow
def test_cli_writes_a_set_that_eval_scores(tmp_path):
    src = _otb_set(tmp_path / "src", n_frames=40)
    r = subprocess.run([*siamtrack_cmd(), "eval", "tre", "--root", str(src), "--out", str(tmp_path / "tre"),
                        "--segments", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "wrote 2 segments (60 frames)" in r.stdout, r.stderr
    r = subprocess.run([*siamtrack_cmd(), "eval", "otb", "--root", str(tmp_path / "tre"), "--trackers", "csrt",
                        "--out", str(tmp_path / "ev")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "ev" / "results" / "csrt").glob("*.txt")) == \
        ["Drift-tre0.txt", "Drift-tre1.txt"]
