"""Faults in evaluation runs: results made with other settings are never mixed with or replace finished
ones (results manifest), workers die with their parent, and an unusable --out or a full disk gives a
one-line error before (or instead of) losing anything."""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import fill, siamtrack_cmd
from tracker.eval import cli as eval_cli
from tracker.eval import runner
from tracker.networks.models import build_model
from tracker.networks.weights import save_weights

MANIFEST = "manifest.json"  # the results manifest, tracker.eval.provenance.MANIFEST


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="siamtrack")
    eval_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([str(a) for a in argv])
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _otb(dev_root: Path, out: Path, trackers: str, *extra) -> list:
    return ["eval", "otb", "--root", dev_root, "--out", out, "--trackers", trackers, "--no-progress", *extra]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- 4: a smoke test never replaces complete results --------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["manifest", "folder-without-manifest"])
def test_smoke_run_never_replaces_complete_results(dev_root: Path, tmp_path: Path, capsys, legacy: bool) -> None:
    out = tmp_path / "out"
    rc, _, _ = _cli(_otb(dev_root, out, "kcf", "--sequences", "Deer"), capsys)
    assert rc == 0
    if legacy:  # results written before manifests existed
        (out / "results" / "kcf" / MANIFEST).unlink(missing_ok=True)
    before = _snapshot(out)
    assert before["results/kcf/Deer.txt"].count(b"\n") == 71

    rc, _, err = _cli(_otb(dev_root, out, "kcf", "--sequences", "Deer", "--max-frames", "10"), capsys)
    line = _one_line(err)
    assert rc == 2 and "other settings" in line and "--out" in line and "LABEL=" in line
    assert _snapshot(out) == before  # Deer.txt, its score and time files, report/: untouched
    rc, _, _ = _cli(["eval", "report", "--benchmark", "otb", "--root", dev_root, "--sequences", "Deer", "--out", out],
                    capsys)
    assert rc == 0

    # kept apart under a label, both stay
    rc, _, _ = _cli(_otb(dev_root, out, "smoke=kcf", "--sequences", "Deer", "--max-frames", "10"), capsys)
    assert rc == 0
    assert (out / "results" / "smoke" / "Deer.txt").read_bytes().count(b"\n") == 10
    assert (out / "results" / "kcf" / "Deer.txt").read_bytes() == before["results/kcf/Deer.txt"]


# -- 6: finished results are keyed by what produced them ----------------------------------------------------

@pytest.fixture(scope="module")
def two_lites(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("w")
    made = []
    for seed, run in ((1, "runA"), (2, "runC")):
        torch.manual_seed(seed)
        (root / run).mkdir()
        made.append(save_weights(build_model("lite"), root / run / "lite.pt"))
    assert made[0].read_bytes() != made[1].read_bytes()
    return made[0], made[1]


def test_reused_label_with_other_weights_is_refused(dev_root: Path, two_lites, tmp_path: Path, capsys) -> None:
    a, c = two_lites
    out = tmp_path / "out"
    args = ("--sequences", "Deer", "--max-frames", "6")
    rc, _, _ = _cli(_otb(dev_root, out, str(a), *args), capsys)
    assert rc == 0
    before = _snapshot(out)

    rc, stdout, err = _cli(_otb(dev_root, out, str(c), *args), capsys)  # runC/lite.pt: results folder "lite" too
    line = _one_line(err)
    assert rc == 2 and "skipped" not in stdout
    assert "lite" in line and "other settings" in line and "weights_sha256" in line
    assert _snapshot(out) == before
    manifest = json.loads((out / "results" / "lite" / MANIFEST).read_text())
    assert manifest["key"]["protocol"] == {"benchmark": "otb", "max_frames": 6}
    assert len(manifest["key"]["tracker"]["weights_sha256"]) == 64

    # the same with a reused LABEL=, and with other tracking parameters under the same label
    rc, _, _ = _cli(_otb(dev_root, out, f"x={a}", *args), capsys)
    assert rc == 0
    rc, _, err = _cli(_otb(dev_root, out, f"x={c}", *args), capsys)
    assert rc == 2 and "weights_sha256" in _one_line(err)
    rc, _, err = _cli(_otb(dev_root, out, f"x={a}:window_influence=0.3", *args), capsys)
    assert rc == 2 and "window_influence: 0.176 there, 0.3 now" in _one_line(err)
    # OpenCV's trackers are keyed by their name
    rc, _, _ = _cli(_otb(dev_root, out, "p=kcf", *args), capsys)
    assert rc == 0
    rc, _, err = _cli(_otb(dev_root, out, "p=csrt", *args), capsys)
    assert rc == 2 and "kcf there, csrt now" in _one_line(err)
    # the same settings resume: nothing re-run
    rc, stdout, _ = _cli(_otb(dev_root, out, f"x={a}", *args), capsys)
    assert rc == 0 and "ran 0 tracker-sequence runs, skipped 1" in stdout


def test_folder_without_manifest_resumes_reports_and_is_then_keyed(dev_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ("--sequences", "Deer", "--max-frames", "8")
    assert _cli(_otb(dev_root, out, "kcf", *args), capsys)[0] == 0
    (out / "results" / "kcf" / MANIFEST).unlink(missing_ok=True)  # as written before this change
    results = out / "results" / "kcf" / "Deer.txt"
    stamp = results.stat().st_mtime_ns
    rc, _, _ = _cli(["eval", "report", "--benchmark", "otb", "--root", dev_root, "--out", out, *args], capsys)
    assert rc == 0 and not (out / "results" / "kcf" / MANIFEST).exists()  # report reads it as it is
    rc, stdout, err = _cli(_otb(dev_root, out, "kcf", *args), capsys)
    assert rc == 0 and "skipped 1" in stdout and f"no {MANIFEST}" in err
    assert results.stat().st_mtime_ns == stamp
    manifest = json.loads((out / "results" / "kcf" / MANIFEST).read_text())
    assert manifest["adopted"] is True and manifest["key"]["tracker"]["tracker"] == "kcf"
    rc, _, err = _cli(_otb(dev_root, out, "kcf", "--sequences", "Deer", "--max-frames", "9"), capsys)
    assert rc == 2 and "max_frames: 8 there, 9 now" in err


# -- 9: workers die with their parent ---------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    s = _stat(pid)
    return s is not None and s[0] not in ("Z", "X")  # a zombie waits only to be reaped


def _descendants(pid: int) -> set[int]:
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (s := _stat(int(d.name))) is not None:
            parents[int(d.name)] = int(s[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p and c not in found}
        found |= kids
        todo.extend(kids)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_their_killed_parent(dev_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = siamtrack_cmd() + ["eval", "otb", "--root", str(dev_root), "--out", str(out), "--trackers", "kcf",
                             "--workers", "2", "--no-progress", "--sequences", "Deer", "Car4", "Woman", "David",
                             "Surfer"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        workers: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= _descendants(proc.pid)
            workers = [p for p in seen if "spawn_main" in _cmdline(p) and _alive(p)]
            if len(workers) >= 2 and list((out / "results" / "kcf").glob("*.txt")):  # workers busy tracking
                break
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) >= 2, (
            f"the run ended or no workers seen: {proc.poll()} {proc.stderr.read().decode() if proc.poll() else ''}")
        seen |= _descendants(proc.pid)  # the workers and multiprocessing's resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in seen):
            time.sleep(0.1)
        left = {p: _cmdline(p) for p in seen if _alive(p)}
        assert not left, f"still running after their parent was killed: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in seen:  # only the processes this test started
            if _alive(p) and ("spawn_main" in _cmdline(p) or "resource_tracker" in _cmdline(p)):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        proc.stderr.close()


# -- 13: an --out that cannot take output; a full disk -----------------------------------------------------

def _command(kind: str, dev_root: Path, out: Path) -> list:
    return {
        "otb": _otb(dev_root, out, "kcf", "--sequences", "Deer", "--max-frames", "10"),
        "got10k": ["eval", "got10k", "--root", dev_root, "--out", out, "--trackers", "kcf", "--no-progress"],
        "report": ["eval", "report", "--benchmark", "otb", "--root", dev_root, "--sequences", "Deer", "--max-frames",
                   "10", "--out", out],
        "stress": ["eval", "stress", "--root", dev_root, "--sequences", "Deer", "--out", out],
        "tre": ["eval", "tre", "--root", dev_root, "--sequences", "Deer", "--out", out],
    }[kind]


COMMANDS = ["otb", "got10k", "report", "stress", "tre"]


@pytest.fixture
def no_tracking(monkeypatch):
    """Fails the test where anything is tracked."""
    def track(*a, **k):
        raise AssertionError("tracked a sequence before checking --out")
    monkeypatch.setattr(runner, "track_sequence", track)


@pytest.mark.parametrize("kind", COMMANDS)
def test_out_that_is_a_file_fails_first_with_one_line(kind: str, dev_root: Path, tmp_path: Path, capsys,
                                                      no_tracking) -> None:
    out = tmp_path / "out.txt"
    out.write_text("not a folder\n")
    rc, _, err = _cli(_command(kind, dev_root, out), capsys)
    line = _one_line(err)
    assert rc == 2 and "--out" in line and str(out) in line and "not a folder" in line
    assert out.read_text() == "not a folder\n"


@pytest.mark.parametrize("kind", COMMANDS)
def test_read_only_out_fails_first_with_one_line(kind: str, dev_root: Path, small_disk, capsys, monkeypatch) -> None:
    disk = small_disk(4096)
    out = disk / "out"
    if kind == "report":  # results to report on, then the disk made read-only
        assert _cli(_command("otb", dev_root, out), capsys)[0] == 0
        shutil.rmtree(out / "report")
    p = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        pytest.skip(f"cannot make a read-only file system here ({p.stderr.strip()})")
    monkeypatch.setattr(runner, "track_sequence", lambda *a, **k: pytest.fail("tracked before checking --out"))
    rc, _, err = _cli(_command(kind, dev_root, out), capsys)
    line = _one_line(err)
    assert rc == 2 and "--out" in line and str(out) in line and "Read-only file system" in line


def _pages_kb(n: int) -> int:
    return 4 * math.ceil(n / 4096)


def test_full_disk_while_writing_results(dev_root: Path, small_disk, capsys) -> None:
    disk = small_disk(4096)
    out = disk / "out"
    args = ("--max-frames", "20", "--sequences")
    assert _cli(_otb(dev_root, out, "kcf", *args, "Deer"), capsys)[0] == 0
    before = _snapshot(out / "results")
    fill(disk, 0)
    rc, _, err = _cli(_otb(dev_root, out, "kcf", *args, "Deer", "MountainBike6"), capsys)
    line = _one_line(err)
    assert rc not in (0, None) and "MountainBike6" in line and "No space left on device" in line
    assert not (out / "results" / "kcf" / "MountainBike6.txt").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    after = _snapshot(out / "results")
    assert {k: v for k, v in after.items() if "MountainBike6" not in k} == before  # earlier results untouched


def test_full_disk_while_writing_the_report_plots(dev_root: Path, small_disk, capsys) -> None:
    disk = small_disk(4096)
    out = disk / "out"
    args = ("--sequences", "Deer", "--max-frames", "20")
    assert _cli(_otb(dev_root, out, "kcf", *args), capsys)[0] == 0
    report = out / "report"
    sizes = {p.name: p.stat().st_size for p in report.iterdir()}
    shutil.rmtree(report)
    before = _snapshot(out)
    leave = sum(_pages_kb(sizes[n]) for n in ("table.txt", "summary.json", "per_sequence.csv")) + 8
    assert sizes["success_plot.png"] > (leave + 8) * 1024  # the text files fit, the plot does not
    fill(disk, leave)
    rc, _, err = _cli(["eval", "report", "--benchmark", "otb", "--root", dev_root, "--out", out, *args], capsys)
    line = _one_line(err)
    assert rc not in (0, None) and str(report / "success_plot.png") in line and "No space left on device" in line
    assert not (report / "success_plot.png").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert {k: v for k, v in _snapshot(out).items() if not k.startswith("report/")} == before
