"""Benchmark runner: official result layouts, resume after interruption, shards, workers,
report re-scoring and the GOT-10k submission zip. Uses small synthetic benchmarks made here."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.core import ops
from tracker.eval import cli as eval_cli
from tracker.eval import runner
from tracker.eval.datasets import AnnotationError, load_got10k, load_otb
from tracker.eval.provenance import SettingsMismatch
from tracker.eval.report import load_boxes
from tracker.eval.runner import Layout, parse_shard, run_benchmark, shard
from tracker.eval.synthetic import make_sequence
from tracker.eval.trackers import TrackerSpecError, make_tracker
from tracker.networks.models import build_model
from tracker.networks.weights import save_weights

REPO = Path(__file__).resolve().parent.parent


def _write_otb(root: Path, n_seqs: int, n_frames: int) -> Path:
    for k in range(n_seqs):
        frames, boxes = make_sequence(n_frames, size=(160, 120), target=(32, 24), seed=k)
        img = root / f"Seq{k}" / "img"
        img.mkdir(parents=True)
        for i, f in enumerate(frames, start=1):
            cv2.imwrite(str(img / f"{i:04d}.jpg"), f)
        np.savetxt(root / f"Seq{k}" / "groundtruth_rect.txt", ops.zero_based_to_one_based(boxes), fmt="%.2f",
                   delimiter=",")
    return root


def _write_got10k_test(root: Path, n_seqs: int, n_frames: int) -> Path:
    names = [f"GOT-10k_Test_{k:06d}" for k in range(1, n_seqs + 1)]
    for k, name in enumerate(names):
        frames, boxes = make_sequence(n_frames, size=(160, 120), target=(32, 24), seed=10 + k)
        d = root / "test" / name
        d.mkdir(parents=True)
        for i, f in enumerate(frames, start=1):
            cv2.imwrite(str(d / f"{i:08d}.jpg"), f)
        np.savetxt(d / "groundtruth.txt", ops.zero_based_to_one_based(boxes[:1]), fmt="%.4f", delimiter=",")
    (root / "test" / "list.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.fixture(scope="module")
def otb_root(tmp_path_factory) -> Path:
    return _write_otb(tmp_path_factory.mktemp("bench") / "OTBmini", 4, 12)


@pytest.fixture(scope="module")
def lite_weights(tmp_path_factory) -> Path:
    return save_weights(build_model("lite"), tmp_path_factory.mktemp("w") / "lite-test.pt")


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="siamtrack")
    eval_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_otb_layout_and_report_rescoring(otb_root: Path, lite_weights: Path, tmp_path: Path, capsys) -> None:
    seqs = load_otb(otb_root)
    layout = Layout("otb", tmp_path / "results")
    summary = run_benchmark(seqs, [str(lite_weights), "kcf"], layout, progress=False)
    assert len(summary.ran) == 8 and not summary.skipped
    for name in ("lite-test", "kcf"):
        for s in seqs:
            boxes = np.loadtxt(tmp_path / "results" / name / f"{s.name}.txt", delimiter=",")
            times = np.loadtxt(tmp_path / "results" / name / "times" / f"{s.name}_time.txt")
            assert boxes.shape == (12, 4) and times.shape == (12,) and (times > 0).all()
            np.testing.assert_allclose(boxes[0], ops.zero_based_to_one_based(s.gt[0]), atol=5e-4)  # 1-based on disk
    assert not list((tmp_path / "results").rglob("*.tmp"))

    rc, out, _ = _cli(["eval", "report", "--benchmark", "otb", "--root", str(otb_root), "--out", str(tmp_path)], capsys)
    assert rc == 0
    report = tmp_path / "report"
    summary_json = json.loads((report / "summary.json").read_text())
    assert set(summary_json["trackers"]) == {"lite-test", "kcf"}
    aucs = {n: v["overall"]["success_auc"] for n, v in summary_json["trackers"].items()}
    rows = [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in aucs]
    assert rows == sorted(aucs, key=lambda n: -aucs[n])  # table sorted by success AUC
    assert f"{aucs['kcf']:.3f}" in out
    csv_lines = (report / "per_sequence.csv").read_text().splitlines()
    assert csv_lines[0].startswith("tracker,sequence,success_auc") and len(csv_lines) == 1 + 8
    for png in ("success_plot.png", "precision_plot.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_keyboard_interrupt_then_resume_recomputes_nothing_finished(otb_root: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    seqs = load_otb(otb_root)
    layout = Layout("otb", tmp_path / "results")
    real = runner.track_sequence
    calls: list[str] = []

    def interrupted(tracker, seq, on_frame=None):
        calls.append(seq.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(tracker, seq, on_frame)

    monkeypatch.setattr(runner, "track_sequence", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(seqs, ["kcf"], layout, progress=False)
    done = sorted(p.name for p in (tmp_path / "results" / "kcf").glob("*.txt"))
    assert done == ["Seq0.txt", "Seq1.txt"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.txt")}
    assert len(stamps) == 6  # two result files, two time files, two confidence files

    calls.clear()
    monkeypatch.setattr(runner, "track_sequence", lambda t, s, on_frame=None: (calls.append(s.name), real(t, s))[1])
    summary = run_benchmark(seqs, ["kcf"], layout, progress=False)
    assert calls == ["Seq2", "Seq3"]
    assert sorted(summary.skipped) == [("kcf", "Seq0"), ("kcf", "Seq1")]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    calls.clear()
    assert run_benchmark(seqs, ["kcf"], layout, progress=False).ran == [] and calls == []


@pytest.mark.slow
def test_killed_run_resumes_and_keeps_finished_files(tmp_path: Path) -> None:
    root = _write_otb(tmp_path / "OTBslow", 6, 40)
    out = tmp_path / "out"
    script = ("import sys; from tracker.eval.datasets import load_otb; from tracker.eval.runner import Layout, "
              "run_benchmark; run_benchmark(load_otb(sys.argv[1]), ['mil'], Layout('otb', __import__('pathlib')"
              ".Path(sys.argv[2])), progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(root), str(out)], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "mil").glob("Seq*.txt")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    finished = sorted(p.stem for p in (out / "mil").glob("Seq*.txt"))
    assert 1 <= len(finished) < 6, finished  # killed mid-run
    seqs = load_otb(root)
    for s in seqs:
        if s.name in finished:
            assert len(load_boxes(out / "mil" / f"{s.name}.txt", s)) == 40  # complete, never partial
    before = {n: (out / "mil" / f"{n}.txt").read_bytes() for n in finished}
    summary = run_benchmark(seqs, ["mil"], Layout("otb", out), progress=False)
    assert sorted(s for _, s in summary.skipped) == finished
    assert len(summary.ran) == 6 - len(finished)
    assert all((out / "mil" / f"{n}.txt").read_bytes() == b for n, b in before.items())
    assert len(list((out / "mil").glob("Seq*.txt"))) == 6


def test_truncated_result_is_kept_apart_and_rejected_by_report(otb_root: Path, tmp_path: Path) -> None:
    seqs = load_otb(otb_root, names=["Seq0"])
    layout = Layout("otb", tmp_path)
    run_benchmark([s.truncated(5) for s in seqs], ["kcf"], layout, progress=False, max_frames=5)
    with pytest.raises(AnnotationError, match=r"Seq0\.txt: 5 boxes but sequence Seq0 has 12 frames"):
        load_boxes(layout.record_file("kcf", "Seq0"), seqs[0])
    assert not layout.finished("kcf", seqs[0])
    smoke = layout.record_file("kcf", "Seq0").read_bytes()
    # a run with other settings neither replaces nor mixes with them: by its manifest, or (without one) by length
    with pytest.raises(SettingsMismatch, match="max_frames: 5 there, all now"):
        run_benchmark(seqs, ["kcf"], layout, progress=False)
    (tmp_path / "kcf" / "manifest.json").unlink()
    with pytest.raises(SettingsMismatch, match=r"Seq0\.txt: holds 5 boxes but Seq0 has 12 frames"):
        run_benchmark(seqs, ["kcf"], layout, progress=False)
    assert layout.record_file("kcf", "Seq0").read_bytes() == smoke
    assert len(run_benchmark(seqs, ["full=kcf"], layout, progress=False).ran) == 1  # kept apart under a label
    assert len(load_boxes(layout.record_file("full", "Seq0"), seqs[0])) == 12


def test_shard_selection_and_cli_shard(otb_root: Path, tmp_path: Path, capsys) -> None:
    seqs = load_otb(otb_root)
    assert [s.name for s in shard(seqs, 1, 3)] == ["Seq1"]
    assert [s.name for s in shard(seqs, 0, 3)] == ["Seq0", "Seq3"]
    parts = [shard(seqs, i, 2) for i in range(2)]
    assert sorted(s.name for p in parts for s in p) == [s.name for s in seqs]
    for bad in ("2/2", "a/b", "1", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)
    rc, out, _ = _cli(["eval", "otb", "--root", str(otb_root), "--trackers", "kcf", "--out", str(tmp_path),
                       "--shard", "1/2", "--no-progress"], capsys)
    assert rc == 0 and "shard 1/2 done" in out
    assert sorted(p.stem for p in (tmp_path / "results" / "kcf").glob("*.txt")) == ["Seq1", "Seq3"]
    assert not (tmp_path / "report").exists()


def test_workers_give_the_same_results_as_one_process(otb_root: Path, tmp_path: Path) -> None:
    seqs = load_otb(otb_root)
    run_benchmark(seqs, ["kcf", "csrt"], Layout("otb", tmp_path / "one"), progress=False)
    run_benchmark(seqs, ["kcf", "csrt"], Layout("otb", tmp_path / "two"), workers=2, progress=False)
    for name in ("kcf", "csrt"):
        for s in seqs:
            rel = Path(name) / f"{s.name}.txt"
            assert (tmp_path / "two" / rel).read_text() == (tmp_path / "one" / rel).read_text()


def test_got10k_test_split_layout_and_submission_zip(tmp_path: Path, capsys) -> None:
    root = _write_got10k_test(tmp_path / "GOT", 2, 10)
    rc, out, _ = _cli(["eval", "got10k", "--root", str(root), "--split", "test", "--trackers", "kcf,mil",
                       "--out", str(tmp_path / "out"), "--no-progress"], capsys)
    assert rc == 0
    res = tmp_path / "out" / "results"
    seq = "GOT-10k_Test_000001"
    assert sorted(p.name for p in (res / "kcf" / seq).iterdir()) == [f"{seq}_001.txt", f"{seq}_001_confidence.value",
                                                                    f"{seq}_time.txt"]
    assert sorted(p.name for p in (res / "mil" / seq).iterdir()) == sorted(
        [f"{seq}_00{r}.txt" for r in (1, 2, 3)] + [f"{seq}_00{r}_confidence.value" for r in (1, 2, 3)] + [f"{seq}_time.txt"])
    assert np.loadtxt(res / "mil" / seq / f"{seq}_time.txt", delimiter=",").shape == (10, 3)
    with zipfile.ZipFile(tmp_path / "out" / "report" / "kcf.zip") as z:
        assert sorted(z.namelist()) == sorted(f"GOT-10k_Test_00000{k}/GOT-10k_Test_00000{k}_{f}.txt"
                                              for k in (1, 2) for f in ("001", "time"))
    assert "submission archive" in out
    seqs = load_got10k(root, "test")
    assert not seqs[0].full_gt and len(seqs[0]) == 10


def test_bad_tracker_specs_fail_early_with_clear_messages(otb_root: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(TrackerSpecError, match="not found"):
        make_tracker("no-such-weights")
    with pytest.raises(TrackerSpecError, match=r"nanotrack_backbone_sim\.onnx"):
        make_tracker("nano", peers_dir=tmp_path)
    rc, _, err = _cli(["eval", "otb", "--root", str(otb_root), "--trackers", "kcf", "vit", "--peers", str(tmp_path),
                       "--out", str(tmp_path / "o"), "--no-progress"], capsys)
    assert rc == 2 and "object_tracking_vittrack_2023sep.onnx" in err
    assert not (tmp_path / "o" / "results").exists()  # nothing ran
    rc, _, err = _cli(["eval", "otb", "--root", str(tmp_path / "nowhere"), "--trackers", "kcf", "--out",
                       str(tmp_path / "o")], capsys)
    assert rc == 2 and "nowhere" in err


def test_peer_models_track(peers_dir: Path, otb_root: Path, tmp_path: Path) -> None:
    seqs = load_otb(otb_root, names=["Seq0"], max_frames=6)
    run_benchmark(seqs, ["nano", "vit"], Layout("otb", tmp_path), peers=peers_dir, progress=False)
    for name in ("nano", "vit"):
        boxes = np.loadtxt(tmp_path / name / "Seq0.txt", delimiter=",")
        assert boxes.shape == (6, 4) and (boxes[:, 2:] > 0).all()
