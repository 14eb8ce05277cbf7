"""SIGKILL ``siamtrack track`` at random points, many times, then let it finish once.

    python benchmarks/kill_track.py [--runs 20] [--clip PATH]

Each killed run writes ``-o out.mp4 --boxes out.txt`` for a copy of the clip (default: the bundled
demo clip) and is killed with SIGKILL after a random delay. Then one normal run goes to the same
outputs. Checks, and prints: the source is byte-identical after all of it; the final video has one
frame and the box file one line per source frame; no partial files are left beside the outputs.
Exit status 0 when every check holds.
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

REPO = Path(__file__).resolve().parent.parent


def _cmd() -> list[str]:
    exe = Path(sys.executable).parent / "siamtrack"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tracker.apps.cli"]


def _frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--clip", type=Path, default=REPO / "tracker" / "data" / "demo.mp4")
    p.add_argument("--box", default=None, help="start box x,y,w,h (default: the demo clip's)")
    p.add_argument("--max-delay", type=float, default=8.0, help="kill after up to this many seconds")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    box = args.box
    if box is None:
        import json

        box = ",".join(str(v) for v in json.loads((REPO / "tracker" / "data" / "demo.json").read_text())["init_box"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / args.clip.name
        shutil.copy(args.clip, src)
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        cmd = _cmd() + ["track", str(src), "--no-display", f"--box={box}", "-o", str(tmp / "out.mp4"),
                        "--boxes", str(tmp / "out.txt")]
        killed = 0
        for _ in range(args.runs):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.2, args.max_delay))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait()
        final = subprocess.run(cmd, capture_output=True, text=True)
        n_src = _frames(src)
        checks = {
            "final run exit status 0": final.returncode == 0,
            "source unchanged": hashlib.sha256(src.read_bytes()).hexdigest() == digest,
            f"video has {n_src} frames": (tmp / "out.mp4").exists() and _frames(tmp / "out.mp4") == n_src,
            f"box file has {n_src} lines": (tmp / "out.txt").exists()
            and len((tmp / "out.txt").read_text().splitlines()) == n_src,
            "no partial files left": not [f for f in os.listdir(tmp) if ".part" in f],
        }
    print(f"{args.runs} runs, {killed} killed with SIGKILL at random points, then one normal run")
    for what, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if final.returncode != 0:
        print(final.stderr[-2000:])
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
