"""What every speed benchmark shares: the machine's description, its load, frames decoded before timing, thread
counts, and the trackers a list of model specs names (:mod:`tracker.apps.bench`, :mod:`tracker.apps.bench_multi`)."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.config import parse_model_spec
from ..networks.weights import expand_preset

__all__ = ["hardware", "load_average", "load_clips", "set_threads", "each_tracker", "update_latencies"]


def hardware() -> str:
    """One line naming the CPU (and GPU) this process runs on, its vector instructions that set the speed of
    the networks' kernels (AVX2, AVX-512, VNNI for 8-bit), its thread counts and the load average."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    simd = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"),
                                    ("avx_vnni", "AVX-VNNI"), ("amx_int8", "AMX-INT8")) if flag in flags]
    if simd:
        cpu += f" ({', '.join(simd)})"
    s = (f"CPU: {cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
         f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), {load_average()}")
    if torch.cuda.is_available():
        s += f"; GPU: {torch.cuda.get_device_name(0)}"
    return s


def load_average() -> str:
    """The 1/5/15-minute load average ("n/a" where the OS has none): other work on the machine."""
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except (AttributeError, OSError):
        return "load average n/a"


def load_clips(root: Path, sequences: list[str], max_frames: int) -> list[tuple[list[np.ndarray], tuple]]:
    """Decoded frames and the 0-based first box of each named OTB-layout sequence."""
    from ..eval.datasets import load_otb
    from ..io.video import read_image

    clips = []
    for seq in load_otb(root, sequences, max_frames=max_frames):
        frames = [read_image(f) for f in seq.img_files]
        clips.append((frames, seq.init_box))
    return clips


def update_latencies(tracker, frames: list[np.ndarray], warmup: int) -> list[float]:
    """Seconds each ``tracker.update(frame)`` took over ``frames`` (already started on the frame before), the first
    ``warmup`` left out."""
    lat = []
    for k, f in enumerate(frames):
        s = time.perf_counter()
        tracker.update(f)
        if k >= warmup:
            lat.append(time.perf_counter() - s)
    return lat


def set_threads(n: int | None) -> None:
    """CPU threads for torch and OpenCV (None: leave theirs); ONNX Runtime sessions take theirs when made."""
    if n:
        torch.set_num_threads(n)
        cv2.setNumThreads(n)


def each_tracker(models: list[str], backends: tuple[str, ...], threads: tuple[int | None, ...], device: str,
                 config: dict | None = None):
    """For every thread count (set for torch and OpenCV; ONNX Runtime sessions take it when made), model spec
    (``NAME[:key=value,...]``) and back-end: ``(threads, label, tracker)``, the tracker made with the spec's
    overrides and ``config``. A spec whose weights are not installed is reported and skipped."""
    from ..core.siamfc import SiamFCTracker
    from ..networks.weights import WeightsError

    for nthreads in threads:
        set_threads(nthreads)
        shown = nthreads or torch.get_num_threads()
        for spec in models:
            m, overrides = parse_model_spec(spec)
            overrides = expand_preset(m, overrides)
            for backend in backends:
                try:
                    t = SiamFCTracker.from_pretrained(m, device="cpu" if backend == "onnxruntime" else device,
                                                      config={**overrides, **(config or {})} or None,
                                                      backend=backend, threads=shown)
                except WeightsError as e:
                    print(f"skipped {spec}: {e}")
                    break
                where = f"{t.device}" if backend == "torch" else "onnxruntime, cpu"
                yield shown, f"{spec} ({where})", t
