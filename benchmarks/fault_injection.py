"""Faults at random moments against ``track``, ``eval``, ``export`` and ``train``: nothing existing is lost or changed,
every output is complete or absent.

    python benchmarks/fault_injection.py                 # every command, every fault, 2 runs each
    python benchmarks/fault_injection.py --runs 5 --commands track eval

Faults: SIGKILL, SIGTERM and SIGHUP after a random delay; a full disk (a tmpfs filled to a random few hundred KiB);
a read-only output folder (a tmpfs remounted read-only). The last two mount file systems: they need root, and are
skipped with the reason elsewhere. Before each run the output folder holds a complete earlier result of the
same command (and the source, for ``track``); after it the script checks:

* the inputs and every earlier output are byte-identical, or replaced by a complete new one;
* a new output is complete (``track``: a box file and a video holding the same frames, all of them or, after a
  signal, those done, as Ctrl-C finalises them; an eval result file with a line per frame, an export folder that loads, a checkpoint that loads) or absent;
* a fault the command can report (full disk, read-only folder) gave a non-zero exit and one line naming it, no
  traceback.

Prints one line per run and a summary table; exits 1 if any check failed. Reads ``../shared/data/dev`` and
``../shared/data/training`` in place.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIAMTRACK_SHARED", REPO.parent / "shared"))
CLI = [sys.executable, "-m", "tracker.apps.cli"]
FAULTS = ("SIGKILL", "SIGTERM", "SIGHUP", "full-disk", "read-only")
TRACK_FRAMES = 60


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest)."""
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


# -- each command: its arguments, how to make its earlier result, what "complete" means -------------------------

class Track:
    name = "track"

    def __init__(self, work: Path) -> None:
        self.src = work / "inputs" / "clip.mp4"
        self.src.parent.mkdir(parents=True, exist_ok=True)
        if not self.src.exists():
            shutil.copy(REPO / "tracker" / "data" / "demo.mp4", self.src)

    def args(self, out: Path) -> list[str]:
        return ["track", str(self.src), "--box", "122,128,142,150", "--no-display", "--max-frames", str(TRACK_FRAMES),
                "--output", str(out / "out.mp4"), "--boxes", str(out / "out.txt")]

    def inputs(self) -> list[Path]:
        return [self.src]

    def complete(self, out: Path) -> list[str]:
        """Both outputs hold the same frames from the first on: all of them, or, after a signal, those done (what
        Ctrl-C, SIGTERM and SIGHUP finalise)."""
        boxes, video = out / "out.txt", out / "out.mp4"
        n_box = len(boxes.read_text().splitlines()) if boxes.exists() else None
        n_vid = video_frames(video) if video.exists() else None
        problems = [f"{name}: {n} frames, more than the run's {TRACK_FRAMES}" for name, n in
                    (("out.txt", n_box), ("out.mp4", n_vid)) if n is not None and not 1 <= n <= TRACK_FRAMES]
        if n_box is not None and n_vid is not None and n_box != n_vid:
            problems.append(f"out.txt has {n_box} lines but out.mp4 {n_vid} frames")
        return problems


class Eval:
    name = "eval"
    SEQUENCES = ("Deer", "Crossing")

    def args(self, out: Path) -> list[str]:
        return ["eval", "otb", "--root", str(SHARED / "data" / "dev"), "--sequences", *self.SEQUENCES,
                "--trackers", "nanotrack-v2", "--out", str(out)]

    def inputs(self) -> list[Path]:
        return []

    def complete(self, out: Path) -> list[str]:
        problems = []
        for seq in self.SEQUENCES:
            gt = SHARED / "data" / "dev" / seq / "groundtruth_rect.txt"
            for f in out.rglob(f"{seq}.txt"):
                if len(f.read_text().splitlines()) != len(gt.read_text().splitlines()):
                    problems.append(f"{f.relative_to(out)}: not one line per frame")
        return problems


class Export:
    name = "export"

    def args(self, out: Path) -> list[str]:
        return ["export", "--model", "nanotrack-v2", "--out", str(out / "export"), "--no-opencv"]

    def inputs(self) -> list[Path]:
        return []

    def complete(self, out: Path) -> list[str]:
        if not (out / "export").exists():
            return []
        p = subprocess.run([sys.executable, "-c", "import sys; from tracker.backends.onnx_net import OnnxNet; "
                            "OnnxNet.from_dir(sys.argv[1])", str(out / "export")], capture_output=True, text=True)
        return [] if p.returncode == 0 else [f"export/: does not load ({p.stderr.strip().splitlines()[-1:]})"]


class Train:
    name = "train"

    def args(self, out: Path) -> list[str]:
        resume = ["--resume"] if (out / "run" / "checkpoint.pt").exists() else []
        return ["train", "--data", f"got10k:{SHARED / 'data' / 'training'}", "--model", "lite", "--steps", "40",
                "--batch-size", "4", "--threads", "1", "--out", str(out / "run"), *resume]

    def inputs(self) -> list[Path]:
        return []

    def complete(self, out: Path) -> list[str]:
        ckpt = out / "run" / "checkpoint.pt"
        if not ckpt.exists():
            return []
        p = subprocess.run([sys.executable, "-c", "import sys, torch; torch.load(sys.argv[1], weights_only=False)",
                            str(ckpt)], capture_output=True, text=True)
        return [] if p.returncode == 0 else ["run/checkpoint.pt: does not load"]


COMMANDS = {c.name: c for c in (Track, Eval, Export, Train)}


# -- one run ----------------------------------------------------------------------------------------------------

def mount_small(where: Path, kb: int) -> str | None:
    """Mount a tmpfs of ``kb`` KiB at ``where``; the reason it could not be, or None."""
    where.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kb}k", "tmpfs", str(where)], capture_output=True, text=True)
    return None if p.returncode == 0 else (p.stderr.strip() or "mount failed")


def run_once(cmd, fault: str, work: Path, baseline: Path, rng: random.Random, duration: float) -> tuple[str, list[str]]:
    """One faulted run of ``cmd`` into a copy of its complete earlier output: ("ok" | "skipped: why", problems)."""
    out = work / f"{cmd.name}-{fault}"
    if out.exists():
        subprocess.run(["umount", "-l", str(out)], capture_output=True)
        shutil.rmtree(out, ignore_errors=True)
    if fault in ("full-disk", "read-only"):  # a real file system (root ignores permission bits: remount it ro)
        why = mount_small(out, 64 * 1024)
        if why:
            return f"skipped: {why}", []
    shutil.copytree(baseline, out, dirs_exist_ok=True, symlinks=True)
    if fault == "full-disk":  # leave a little room, so the command starts and then meets the full disk
        st = os.statvfs(out)
        free = st.f_bavail * st.f_frsize - rng.randint(20, 400) * 1024
        if free > 0:
            (out / ".filler").write_bytes(b"\0" * free)
    before = snapshot(out)
    inputs = {p: sha(p) for p in cmd.inputs()}
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(out)], check=True)
    proc = subprocess.Popen([*CLI, *cmd.args(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    problems = []
    if fault.startswith("SIG"):
        time.sleep(rng.uniform(0.2, duration))
        if proc.poll() is None:
            proc.send_signal(getattr(signal, fault))
    try:
        _, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        problems.append("did not finish within 600 s")
    if fault in ("full-disk", "read-only"):
        if proc.returncode == 0 and fault == "read-only":
            problems.append("exit 0 on a read-only output folder")
        if "Traceback" in err:
            problems.append("a traceback: " + err.strip().splitlines()[-1])
    for p, digest in inputs.items():
        if not p.exists() or sha(p) != digest:
            problems.append(f"input {p.name} changed or lost")
    after = snapshot(out)
    for rel, digest in before.items():
        if rel == ".filler":
            continue
        if rel not in after:
            problems.append(f"{rel}: an earlier output is gone")
        elif after[rel] != digest and cmd.complete(out):
            problems.append(f"{rel}: changed, and the new one is incomplete")
    problems += cmd.complete(out)
    if fault in ("full-disk", "read-only"):
        subprocess.run(["umount", "-l", str(out)], capture_output=True)
    return "ok" if not problems else "FAILED", problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    p.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    p.add_argument("--runs", type=int, default=2, help="runs per command and fault (signals at random moments)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="siamtrack-faults-"))
    summary: dict[tuple[str, str], list[str]] = {}
    failed = False
    try:
        for name in args.commands:
            cmd = COMMANDS[name](work) if name == "track" else COMMANDS[name]()
            baseline = work / f"{name}-baseline"
            baseline.mkdir()
            t0 = time.monotonic()
            done = subprocess.run([*CLI, *cmd.args(baseline)], cwd=REPO, capture_output=True, text=True)
            duration = time.monotonic() - t0
            if done.returncode != 0:
                print(f"{name}: the clean run failed: {done.stderr.strip().splitlines()[-1:]}")
                return 1
            print(f"{name}: clean run {duration:.1f} s; faults at random moments within it")
            for fault in args.faults:
                for k in range(args.runs):
                    status, problems = run_once(cmd, fault, work, baseline, rng, duration)
                    summary.setdefault((name, fault), []).append(status)
                    failed |= status == "FAILED"
                    print(f"  {name:7s} {fault:9s} run {k + 1}: {status}" + "".join(f"\n      {x}" for x in problems))
    finally:
        subprocess.run(["bash", "-c", f"grep -o '{work}[^ ]*' /proc/mounts | xargs -r -n1 umount -l"],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'command':8s} " + " ".join(f"{f:>10s}" for f in args.faults))
    for name in args.commands:
        cells = []
        for fault in args.faults:
            runs = summary.get((name, fault), [])
            ok = sum(s == "ok" for s in runs)
            cells.append("skipped" if runs and all(s.startswith("skipped") for s in runs) else f"{ok}/{len(runs)} ok")
        print(f"{name:8s} " + " ".join(f"{c:>10s}" for c in cells))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
