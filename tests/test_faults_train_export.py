"""Faults and bad input around training, exports and weights: a full disk, a read-only or wrong --out, files of the
wrong shape, a changed resume. Each gives one line naming the file or argument, and nothing existing is lost."""
from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.helpers import fill
from tests.test_training import _red_box_track, _trainer
from tracker import SiamFCTracker, TrackerConfig, WeightsError
from tracker.apps.cli import main as cli_main
from tracker.networks.weights import find_export, load_model, resolve
from tracker.training.pairs import PairConfig, PairSampler
from tracker.training.trainer import (
    CheckpointError,
    RunFolderError,
    TrainConfig,
    Trainer,
    load_checkpoint,
)

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnx", reason="onnx not installed (pip install -e '.[onnx]')")

from tracker.backends.export import ExportFolderError, write_export  # noqa: E402
from tracker.backends.onnx_net import META_NAME, OnnxExportError, OnnxNet, load_export  # noqa: E402


def _cli(capsys, *argv) -> tuple[int, str]:
    """``siamtrack ARGV`` in this process: (exit code, stderr). A traceback fails the test (it propagates)."""
    capsys.readouterr()
    rc = cli_main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _effnet_export() -> Path:
    folder = find_export("siamfc-effnet")
    assert folder is not None, "weights/siamfc-effnet-onnx is missing"
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name or ".old" in p.name)


def _remount_read_only(folder: Path) -> None:
    r = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot remount {folder} read-only ({r.stderr.strip()})")


# -- item 5: an export over an earlier one ------------------------------------------------------------------


def test_export_over_an_earlier_one_on_a_full_disk_keeps_it_loadable(small_disk):
    files, meta = load_export(_effnet_export())
    disk = small_disk(2 * sum(map(len, files.values())) // 1024 + 64)
    out = write_export(files, meta, disk / "exp").parent
    before = _snapshot(out)
    fill(disk, 8)
    with pytest.raises(OSError) as e:
        write_export(files, {**meta, "name": "new"}, out)
    assert e.value.errno == errno.ENOSPC and str(disk) in str(e.value.filename)
    assert _snapshot(out) == before and _leftovers(disk) == []
    OnnxNet.from_dir(out)  # the earlier export still loads


def test_export_cli_on_a_full_disk_says_so_in_one_line_and_keeps_the_earlier_export(small_disk, capsys, monkeypatch):
    """The export itself is replaced by the shipped effnet files (seconds saved); what is tested is the writing."""
    import tracker.backends.export as export

    files, meta = load_export(_effnet_export())
    disk = small_disk(2 * sum(map(len, files.values())) // 1024 + 64)
    out = write_export(files, meta, disk / "exp").parent
    before = _snapshot(out)
    monkeypatch.setattr(export, "export_model", lambda *a, **k: (files, {**meta, "name": "new"}))
    fill(disk, 8)
    rc, err = _cli(capsys, "export", "--model", "siamfc-lite", "--out", out, "--no-opencv")
    line = _one_line(err)
    assert rc == 2 and str(out) in line and "No space left on device" in line and "unchanged" in line
    assert _snapshot(out) == before and _leftovers(disk) == []


def test_a_new_export_replaces_the_whole_folder_and_refuses_one_holding_other_files(tmp_path, capsys):
    files, meta = load_export(_effnet_export())
    out = tmp_path / "exp"
    write_export(files, meta, out)
    fewer = {k: v for k, v in files.items() if k != "heads.onnx"}
    write_export(fewer, {**meta, "sha256": {k: v for k, v in meta["sha256"].items() if k != "heads.onnx"}}, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*fewer, META_NAME])  # no file of the old one stays
    assert _leftovers(tmp_path) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ExportFolderError, match=r"mine: holds files that are not an export's \(notes.txt\)"):
        write_export(files, meta, mine)
    rc, err = _cli(capsys, "export", "--model", "siamfc-lite", "--out", mine, "--no-opencv")
    assert rc == 2 and "notes.txt" in _one_line(err)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_export_to_a_read_only_or_non_folder_out_is_one_line(small_disk, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    rc, err = _cli(capsys, "export", "--model", "siamfc-lite", "--out", a_file / "sub", "--no-opencv")
    assert rc == 2 and str(a_file) in _one_line(err)
    disk = small_disk(256)
    _remount_read_only(disk)
    rc, err = _cli(capsys, "export", "--model", "siamfc-lite", "--out", disk / "exp", "--no-opencv")
    line = _one_line(err)
    assert rc == 2 and str(disk / "exp") in line and "Read-only file system" in line


# -- item 13: files of the wrong shape, config types ------------------------------------------------------


def test_an_export_model_json_of_the_wrong_shape_names_the_file(tmp_path):
    out = shutil.copytree(_effnet_export(), tmp_path / "exp")
    meta = json.loads((out / META_NAME).read_text())
    for bad in ([], {**meta, "config": 5}, {**meta, "config": {**meta["config"], "context": "big"}},
                {**meta, "exemplar_sz": "127"}, {**meta, "sha256": {"../elsewhere.onnx": "0" * 64}}):
        (out / META_NAME).write_text(json.dumps(bad))
        with pytest.raises(OnnxExportError, match=str(out / META_NAME)) as e:
            SiamFCTracker.from_onnx(out)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("content,match", [([], "expected an object"), ({"config": 5}, "'config' must be an object"),
                                           ({"config": {"context": "big"}}, "context must be a number")])
def test_a_weights_json_of_the_wrong_shape_names_the_file(tmp_path, content, match):
    pt = tmp_path / "mine.pt"
    shutil.copy(REPO / "weights" / "siamfc-lite.pt", pt)
    pt.with_suffix(".json").write_text(json.dumps(content))
    with pytest.raises(WeightsError, match=f"{pt.with_suffix('.json')}.*{match}"):
        load_model(pt)


def test_tracker_config_checks_the_type_of_every_value():
    for values, field in [({"box_head": "no"}, "box_head"), ({"exemplar_sz": "abc"}, "exemplar_sz"),
                          ({"context": "big"}, "context"), ({"scale_num": 3.0}, "scale_num"), ({"half": 1}, "half"),
                          ({"response_up": True}, "response_up")]:
        with pytest.raises(ValueError, match=f"TrackerConfig: {field} must be"):
            TrackerConfig.from_dict(values)
    with pytest.raises(ValueError, match="expected an object"):
        TrackerConfig.from_dict(5)
    assert TrackerConfig.from_dict({"context": 1, "scale_num": np.int64(5), "lost_threshold": np.float32(0.3)}).context == 1


def test_a_folder_without_model_json_is_not_called_a_missing_weights_file(tmp_path):
    out = shutil.copytree(_effnet_export(), tmp_path / "exp")
    (out / META_NAME).unlink()
    with pytest.raises(WeightsError, match=r"not a complete siamtrack ONNX export \(model.json missing"):
        SiamFCTracker.from_pretrained(str(out), device="cpu")


def _weights_dir(tmp_path: Path) -> Path:
    d = tmp_path / "w"
    d.mkdir()
    for suffix in (".pt", ".json"):
        shutil.copy(REPO / "weights" / f"siamfc-lite{suffix}", d / f"siamfc-lite{suffix}")
    return d


def test_an_invalid_shipped_model_json_names_the_file(tmp_path, monkeypatch):
    d = _weights_dir(tmp_path)
    (d / "siamfc-lite-onnx").mkdir()
    (d / "siamfc-lite-onnx" / META_NAME).write_text("{not json")
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(d))
    with pytest.raises(OnnxExportError, match=f"{d / 'siamfc-lite-onnx' / META_NAME}: not valid JSON"):
        SiamFCTracker.from_pretrained("siamfc-lite", device="cpu", backend="onnxruntime")


# -- item 14: $SIAMTRACK_WEIGHTS, the memory of a target on ONNX Runtime ----------------------------------------


def test_a_weights_folder_variable_naming_nothing_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(tmp_path / "nope"))
    with pytest.raises(WeightsError, match=f"SIAMTRACK_WEIGHTS={tmp_path / 'nope'}: no such folder"):
        resolve("siamfc-lite")


MEMORY_SCRIPT = r"""
import os, sys
import numpy as np
sys.path.insert(0, {repo!r})
from tracker import MultiTracker, SiamFCTracker
from tracker.networks.weights import find_export

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

multi = MultiTracker(SiamFCTracker.from_onnx(find_export("siamfc-effnet"), threads=1))
frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
def add(k):
    multi.add(frame, (20 + 27 * (k % 20), 40 + 17 * (k % 21), 40, 36))
    multi.update(frame)
for k in range(3):
    add(k)
base = rss_mb()
for k in range(3, 23):
    add(k)
for _ in range(3):
    multi.update(frame)
print((rss_mb() - base) / 20)
"""


def test_each_target_on_onnxruntime_costs_little_memory(tmp_path):
    """Was ~20-30 MB a target: ONNX Runtime's memory arena kept the activations of one backbone call with every
    target's crops. In calls of a few crops a target costs its own state (~1 MB)."""
    script = tmp_path / "mem.py"
    script.write_text(MEMORY_SCRIPT.format(repo=str(REPO)))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    per_target = float(r.stdout.split()[-1])
    assert per_target < 5.0, f"{per_target:.1f} MB per target"


# -- items 7, 8, 11, 13: training -------------------------------------------------------------------------------


def _frames(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (200, 260, 3), dtype=np.uint8))
    return folder


def _train(capsys, data: Path, out: Path, *extra) -> tuple[int, str]:
    return _cli(capsys, "train", "--data", f"video:{data}", "--model", "lite", "--steps", "6", "--batch-size", "2",
                "--out", out, "--threads", "1", "--checkpoint-every", "1e9", *extra)


def test_resume_refuses_other_pair_settings_or_data_and_names_them(tmp_path, capsys):
    data, other = _frames(tmp_path / "a"), _frames(tmp_path / "b", 4)
    out = tmp_path / "run"
    rc, err = _train(capsys, data, out, "--max-steps", "2")
    assert rc == 0, err
    record = json.loads((out / "config.json").read_text())
    assert record["pairs"]["jitter"] == 0.25 and record["data"] == [f"video:{data.resolve()}"]
    for extra, named in [(["--jitter", "0.5"], "jitter (--jitter): 0.25 in the checkpoint, 0.5 now"),
                         (["--negatives", "0.3", "--max-gap", "3"], "negative_prob (--negatives): 0.0 in the "
                                                                   "checkpoint, 0.3 now"),
                         (["--shift", "8"], "shift (--shift): 4.0 in the checkpoint, 8.0 now")]:
        rc, err = _train(capsys, data, out, "--resume", *extra)
        assert rc == 2 and named in _one_line(err)
    rc, err = _train(capsys, other, out, "--resume")
    assert rc == 2 and f"data (--data): ['video:{data.resolve()}'] in the checkpoint" in _one_line(err)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    rc, err = _train(capsys, data, out, "--resume", "--max-steps", "1")
    assert rc == 0, err


def test_resume_of_a_trainer_with_other_pair_settings_is_refused(tmp_path):
    _trainer(tmp_path).run(steps=2, progress=False)
    cfg = TrainConfig(arch="lite", steps=6, batch_size=2, log_every=1, checkpoint_every_s=1e9)
    other = Trainer(cfg, PairSampler([_red_box_track(8)], PairConfig(max_gap=3)), tmp_path, device="cpu")
    with pytest.raises(CheckpointError, match=r"max_gap \(--max-gap\): 10 in the checkpoint, 3 now"):
        other.resume()


def _killed_before_its_first_checkpoint(out: Path) -> bytes:
    """A run's folder as a kill before its first checkpoint leaves it: config.json and log.csv."""
    _trainer(out).run(steps=2, progress=False)
    (out / "checkpoint.pt").unlink()
    return (out / "log.csv").read_bytes()


def test_a_new_run_never_appends_to_an_earlier_runs_log(tmp_path, capsys):
    out = tmp_path / "run"
    log = _killed_before_its_first_checkpoint(out)
    with pytest.raises(RunFolderError, match="stopped before its first checkpoint"):
        _trainer(out).run(progress=False)
    data = _frames(tmp_path / "frames")
    rc, err = _train(capsys, data, out)
    line = _one_line(err)
    assert rc == 2 and "another --out" in line and "delete" in line
    rc, err = _train(capsys, data, out, "--resume")
    assert rc == 2 and "stopped before its first checkpoint" in _one_line(err)
    assert (out / "log.csv").read_bytes() == log
    rc, err = _train(capsys, data, tmp_path / "done", "--max-steps", "2")
    assert rc == 0, err
    rc, err = _train(capsys, data, tmp_path / "done")
    assert rc == 2 and "--resume" in _one_line(err)


def test_a_checkpoint_that_does_not_fit_leaves_no_temp_file_and_the_last_one_resumes(small_disk):
    disk = small_disk(4096)
    out = disk / "run"
    tr = _trainer(out)
    tr.run(steps=2, progress=False)
    size_kb = (out / "checkpoint.pt").stat().st_size // 1024
    fill(disk, size_kb // 2)  # the log's rows fit, a checkpoint does not
    with pytest.raises(OSError) as e:
        tr.run(steps=2, progress=False)
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(out / "checkpoint.pt")
    assert not (out / "checkpoint.pt.tmp").exists() and load_checkpoint(out / "checkpoint.pt")["step"] == 2
    # A temporary file of an older version (or a kill mid-write) that fills the disk is removed on --resume, which
    # then rewrites log.csv without the rows past the checkpoint.
    (disk / ".filler").unlink()
    (out / "checkpoint.pt.tmp").write_bytes(b"\0" * 1024)
    fill(disk, 0)
    c = _trainer(out)
    c.resume()
    assert not (out / "checkpoint.pt.tmp").exists()
    assert [int(r["step"]) for r in csv.DictReader(open(out / "log.csv"))] == [1, 2]
    (disk / ".filler").unlink()
    c.run(progress=False)
    assert [int(r["step"]) for r in csv.DictReader(open(out / "log.csv"))] == [1, 2, 3, 4, 5, 6]


def test_train_cli_on_a_full_disk_says_so_in_one_line_and_resumes_later(small_disk, tmp_path, capsys):
    data = _frames(tmp_path / "frames")
    disk = small_disk(4096)
    out = disk / "run"
    rc, err = _train(capsys, data, out, "--max-steps", "2")
    assert rc == 0, err
    fill(disk, 0)
    rc, err = _train(capsys, data, out, "--resume", "--max-steps", "2")
    line = _one_line(err)
    assert rc == 2 and "No space left on device" in line and str(out) in line and "step 2) is kept" in line
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2 and _leftovers(disk) == []
    (disk / ".filler").unlink()
    rc, err = _train(capsys, data, out, "--resume", "--max-steps", "2")
    assert rc == 0 and load_checkpoint(out / "checkpoint.pt")["step"] == 4, err


def test_a_log_or_plot_that_cannot_be_written_names_the_file(tmp_path, small_disk, monkeypatch):
    import tracker.training.trainer as trainer_module

    class FullLog:
        def __init__(self, f):
            self.f = f

        def write(self, s):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(trainer_module, "open", lambda *a, **k: FullLog(open(*a, **k)), raising=False)
    tr = _trainer(tmp_path / "run")
    with pytest.raises(OSError) as e:
        tr.run(steps=2, progress=False)
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "run" / "log.csv")
    monkeypatch.undo()
    disk = small_disk(2048)
    tr = _trainer(disk / "run")
    tr.run(steps=2, progress=False)
    fill(disk, 0)
    with pytest.raises(OSError) as e:
        tr.plot_losses()
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(disk / "run" / "loss.png")
    assert _leftovers(disk) == [] and not (disk / "run" / "loss.png").exists()


def test_train_into_a_read_only_or_non_folder_out_is_one_line(small_disk, tmp_path, capsys):
    data = _frames(tmp_path / "frames")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out in (a_file, a_file / "sub"):
        rc, err = _train(capsys, data, out)
        assert rc == 2 and str(a_file) in _one_line(err)
    disk = small_disk(256)
    _remount_read_only(disk)
    rc, err = _train(capsys, data, disk / "run")
    line = _one_line(err)
    assert rc == 2 and str(disk / "run") in line and "read-only" in line.lower()
