"""``siamtrack bench``: end-to-end speed of each model on real frames, with OpenCV's
TrackerNano timed in the same run as the reference, and the network's share of it.

End to end means what :meth:`SiamFCTracker.update` does per frame (validation, crops,
network, post-processing, box update) on frames already decoded, as a tracker receives
them from a camera or a decoder; JPEG decoding is excluded for every tracker alike.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

__all__ = ["hardware", "time_tracker", "run_bench", "register"]


def hardware() -> str:
    """One line naming the CPU (and GPU) this process runs on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    s = f"CPU: {cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} ({torch.get_num_threads()} threads), OpenCV {cv2.__version__}"
    if torch.cuda.is_available():
        s += f"; GPU: {torch.cuda.get_device_name(0)}"
    return s


def model_cost(arch: str, scales: int = 3) -> tuple[int, float]:
    """Parameters and multiply-adds (G) per tracked frame: ``scales`` 255 px search regions."""
    from .models import build_model

    net = build_model(arch).eval()
    macs = 0

    def hook(m, inp, out):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += out.numel() * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net.embed(torch.zeros(scales, 3, 255, 255))
    for h in hs:
        h.remove()
    return sum(p.numel() for p in net.parameters()), macs / 1e9


def network_ms(tracker, repeats: int = 50) -> float:
    """Mean ms of the network alone on one frame's search crops (the tracker's scales, 255 px)."""
    cfg = tracker.config
    x = torch.rand(cfg.scale_num, 3, cfg.instance_sz, cfg.instance_sz, device=tracker.device) * 255
    x = x.to(tracker.dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        tracker.net.template(x[:1, :, :cfg.exemplar_sz, :cfg.exemplar_sz])
        run = tracker.net.track_boxes if tracker.net.has_box_head else tracker.net.track
        for _ in range(5):
            run(x)
        if tracker.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(repeats):
            run(x)
        if tracker.device.type == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats * 1e3


def load_clips(root: Path, sequences: list[str], max_frames: int) -> list[tuple[list[np.ndarray], tuple]]:
    """Decoded frames and the 0-based first box of each named OTB-layout sequence."""
    from .eval.datasets import load_otb
    from .video import read_image

    clips = []
    for seq in load_otb(root, sequences, max_frames=max_frames):
        frames = [read_image(f) for f in seq.img_files]
        clips.append((frames, seq.init_box))
    return clips


def time_tracker(make, clips, warmup: int = 10) -> tuple[float, float]:
    """Median and mean per-frame update latency in ms over all clips (first ``warmup`` updates of each clip excluded)."""
    lat = []
    for frames, box in clips:
        t = make()
        t.init(frames[0], box)
        for k, f in enumerate(frames[1:]):
            s = time.perf_counter()
            t.update(f)
            if k >= warmup:
                lat.append(time.perf_counter() - s)
    a = np.array(lat) * 1e3
    return float(np.median(a)), float(a.mean())


def run_bench(root: Path, peers: Path | None, models: list[str], sequences: list[str], max_frames: int, device: str,
              box_head: bool = True) -> list[dict]:
    from .config import TrackerConfig
    from .eval.trackers import OpenCVTracker
    from .models import build_model
    from .siamfc import SiamFCTracker
    from .weights import WeightsError

    clips = load_clips(root, sequences, max_frames)
    n = sum(len(f) - 1 for f, _ in clips)
    print(hardware())
    for arch in ("lite", "alexnet"):
        params, gmacs = model_cost(arch)
        print(f"{arch}: {params:,} parameters, {gmacs:.2f} GMAC per frame (3 scales)")
    print(f"{len(clips)} sequences from {root}, {n} updates per tracker, frames pre-decoded")
    rows = []

    def add(name, make):
        med, mean = time_tracker(make, clips)
        t = make()
        net = network_ms(t) if isinstance(t, SiamFCTracker) else None
        rows.append({"tracker": name, "median_ms": med, "mean_ms": mean, "fps": 1000.0 / mean, "network_ms": net})

    if peers is not None:
        OpenCVTracker("nano", peers)  # fails here, with the missing file named, if the models are absent
        add("cv2.TrackerNano", lambda: OpenCVTracker("nano", peers))
    for m in models:
        try:
            SiamFCTracker.from_pretrained(m, device=device)
            add(f"{m} ({device})", lambda m=m: SiamFCTracker.from_pretrained(m, device=device))
        except WeightsError:
            # Speed does not depend on the weights' values: time the architecture itself.
            arch = m.replace("siamfc-", "")
            add(f"{arch} arch, untrained ({device})", lambda a=arch: SiamFCTracker(build_model(a), device=device))
    if box_head:
        # The single-scale box-head variant (no trained weights ship; speed does not depend on them).
        one = TrackerConfig(scale_num=1)
        add(f"lite + box head, 1 scale, untrained ({device})",
            lambda: SiamFCTracker(build_model("lite", box_head=True), one, device=device))
    ref = rows[0]["mean_ms"] if peers is not None else None
    print(f"{'tracker':44s} {'median ms':>10s} {'mean ms':>9s} {'fps':>8s} {'vs Nano':>8s} {'network ms':>11s}")
    for r in rows:
        ratio = f"{ref / r['mean_ms']:.2f}x" if ref else "-"
        r["vs_nano"] = ref / r["mean_ms"] if ref else None
        net = f"{r['network_ms']:.2f}" if r["network_ms"] is not None else "-"
        print(f"{r['tracker']:44s} {r['median_ms']:10.2f} {r['mean_ms']:9.2f} {r['fps']:8.1f} {ratio:>8s} {net:>11s}")
    return rows


def _main(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        print(f"siamtrack bench: --root {root}: not a directory of OTB-layout sequences")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    peers = None if args.no_peer else Path(args.peers)
    run_bench(root, peers, args.models, args.sequences, args.max_frames, args.device, box_head=not args.no_box_head)
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="time each model end to end on real frames, with TrackerNano as reference")
    p.add_argument("--root", default=os.environ.get("SIAMTRACK_DEV", "../shared/data/dev"), help="OTB-layout sequences (default: ../shared/data/dev)")
    p.add_argument("--peers", default=os.environ.get("SIAMTRACK_PEERS", "../shared/peers"), help="folder with nanotrack_v2/ ONNX models")
    p.add_argument("--no-peer", action="store_true", help="skip the TrackerNano reference")
    p.add_argument("--models", nargs="+", default=["siamfc-lite", "siamfc-alexnet"])
    p.add_argument("--sequences", nargs="+", default=["Car4", "David", "Woman"])
    p.add_argument("--max-frames", type=int, default=200)
    p.add_argument("--no-box-head", action="store_true", help="skip the single-scale box-head variant")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch/OpenCV CPU threads (default: theirs)")
    p.set_defaults(func=_main)
