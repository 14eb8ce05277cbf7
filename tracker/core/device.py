"""Where the network runs: the device a tracker picks, the backbone in batches of crops, its outputs
back on the host as numpy arrays.

torch is imported only where it is installed: a deployment install (numpy, OpenCV, ONNX Runtime)
tracks exported models without it.
"""
from __future__ import annotations

import numpy as np

try:
    import torch
except ImportError:
    torch = None

__all__ = ["CPU_TORCH_BATCH", "ONNX_BATCH", "HAS_TORCH", "embed_in_batches", "resolve_device", "to_host"]

# Crops per backbone call with torch on a CPU (python benchmarks/batch_size.py, 2 threads, siamfc-effnet's
# 193 px crops): 3.56 ms per crop alone, 2.5 ms in batches of 3 to 6, 2.7 at 8, then 5-7 ms from 12 on (the
# activations of a larger batch no longer fit the caches). ONNX Runtime's stays flat (1.8-2.1 ms from 1 to
# 48), and GPUs want large batches: there every crop goes in one call.
CPU_TORCH_BATCH = 6

# Crops per backbone call on ONNX Runtime. Its CPU memory arena keeps the largest activations it was ever asked for,
# so one call with every target's crops grew the process by ~20-30 MB a target for good (siamfc-effnet: 20 targets,
# 60 crops, +394 MB; the network is shared, nothing else is copied per target). In calls of 6 the arena stays at
# the size of 6 crops (~+50 MB in all) and a target costs ~1 MB; ONNX Runtime's time per crop is flat from 1 to 48
# crops a call (the note above), so nothing is lost.
ONNX_BATCH = 6

HAS_TORCH = torch is not None  # False in a deployment install: only ONNX exports run


def to_host(a) -> np.ndarray:
    """A network output as a float32 numpy array (ONNX Runtime gives arrays, torch tensors)."""
    return a if isinstance(a, np.ndarray) else a.float().cpu().numpy()


def embed_in_batches(net, x, max_batch: int | None):
    """``net.embed(x)`` in calls of at most ``max_batch`` crops (None: one call), joined in order."""
    b = max_batch or len(x)
    if len(x) <= b:
        return net.embed(x)
    parts = [net.embed(x[i:i + b]) for i in range(0, len(x), b)]
    return np.concatenate(parts) if isinstance(parts[0], np.ndarray) else torch.cat(parts)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``."""
    if torch is None:
        raise ImportError(f"device={device!r}: PyTorch is not installed; without it only exported models run "
                          "(SiamFCTracker.from_onnx, siamtrack track --model EXPORT_DIR)")
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine")
    return dev
