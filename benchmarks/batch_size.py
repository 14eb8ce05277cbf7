"""The backbone's cost per search crop against the batch size, PyTorch and ONNX Runtime, one run.

Run: ``python benchmarks/batch_size.py [--threads 2]``. Times ``net.embed`` on batches of random
193 px crops for the default weights (siamfc-effnet's trunk and neck) and prints ms per crop: what
``tracker.core.siamfc.CPU_TORCH_BATCH`` (the largest batch per backbone call with PyTorch on a CPU) and
``MultiTracker``'s batching rest on.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import cv2
import numpy as np
import torch

from tracker import SiamFCTracker
from tracker.apps.bench import hardware

BATCHES = (1, 2, 3, 4, 6, 8, 12, 24, 48)


def per_crop_ms(net, x, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(2):
            net.embed(x)
        t = time.perf_counter()
        for _ in range(repeats):
            net.embed(x)
    return (time.perf_counter() - t) / repeats / len(x) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(hardware())
    rng = np.random.default_rng(0)
    nets = {"torch": SiamFCTracker.from_pretrained(backend="torch", device="cpu").net}
    try:
        nets["onnxruntime"] = SiamFCTracker.from_pretrained(backend="onnxruntime", threads=args.threads).net
    except ImportError:
        print("onnxruntime not installed: PyTorch only")
    print(f"{'batch':>5s} " + " ".join(f"{b + ' ms/crop':>20s}" for b in nets))
    for n in BATCHES:
        x = (rng.random((n, 3, 193, 193), dtype=np.float32) * 255)
        cells = []
        for name, net in nets.items():
            xin = x if name == "onnxruntime" else torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
            cells.append(per_crop_ms(net, xin, max(3, 48 // n)))
        print(f"{n:5d} " + " ".join(f"{c:20.2f}" for c in cells), flush=True)
    print(f"after the run: load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
