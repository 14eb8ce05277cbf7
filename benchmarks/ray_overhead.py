"""What Ray costs on one machine: wall time of ``siamtrack eval`` over a set with ``--workers N`` (local processes)
and with ``--ray --workers N`` (a Ray instance started for the run, N CPUs), each into a fresh folder.

    python benchmarks/ray_overhead.py --root ../shared/data/dev --trackers nanotrack-v2 --workers 2 [--rounds 2]

Prints the machine, the load, and per round both wall times (process start to exit, so Ray's start and stop and
each worker's model loading are included) and their difference. Rows alternate, so a change in load hits both.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from helpers import siamtrack_cmd  # noqa: E402


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    p = subprocess.run([*siamtrack_cmd(), *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="../shared/data/dev")
    p.add_argument("--trackers", default="nanotrack-v2")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"{args.trackers} on {args.root}, {args.workers} workers")
    base = ["eval", "otb", "--root", args.root, "--trackers", args.trackers, "--workers", str(args.workers),
            "--no-progress"]
    for r in range(1, args.rounds + 1):
        tmp = Path(tempfile.mkdtemp(prefix="ray_overhead_"))
        try:
            local = timed([*base, "--out", str(tmp / "local")])
            ray = timed([*base, "--out", str(tmp / "ray"), "--ray"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"round {r}: --workers {args.workers} {local:.1f} s, --ray --workers {args.workers} {ray:.1f} s "
              f"(Ray {ray - local:+.1f} s, {ray / local:.2f}x); load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
