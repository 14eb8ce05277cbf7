"""Helpers shared by the demo tests: the ``siamtrack`` command line, and encoding/decoding
test videos with plain OpenCV (independent of tracker.io.video)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np


def siamtrack_cmd() -> list[str]:
    """The installed console script, or the same entry point through ``-m``."""
    exe = Path(sys.executable).parent / "siamtrack"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("siamtrack")
    return [found] if found else [sys.executable, "-m", "tracker.apps.cli"]


def encode(frames: list[np.ndarray], path: Path, fps: float = 25.0) -> Path:
    """Write frames to an mp4 with plain OpenCV (independent of tracker.io.video)."""
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert wr.isOpened(), f"cannot encode test video {path}"
    for f in frames:
        wr.write(f)
    wr.release()
    return path


def read_video(path: Path) -> tuple[int, tuple[int, int]]:
    """Frames actually decodable, and (W, H)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} is not playable"
    n, size = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n, size = n + 1, (f.shape[1], f.shape[0])
    cap.release()
    return n, size


def write_frames(frames: list[np.ndarray], folder: Path) -> Path:
    """``frames`` as an image folder (001.png, 002.png, ...) at ``folder`` (created)."""
    folder.mkdir(parents=True)
    for i, f in enumerate(frames, 1):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    return folder


def fill(folder: Path, leave_kb: int) -> None:
    """Fill the file system holding ``folder`` until about ``leave_kb`` KiB are left (a file named ``.filler``)."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize - leave_kb * 1024
    if free > 0:
        (folder / ".filler").write_bytes(b"\0" * free)
