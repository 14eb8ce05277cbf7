"""8-bit integer backbone for ONNX Runtime on the CPU (``siamtrack export --int8``).

The backbone runs on every search crop of every frame and takes most of a tracked frame's time;
the rest of the export (the exemplar's kernel, computed once per target, the correlation head and
the feature pyramid's resampling) stays float32. ONNX Runtime's static quantisation
(``onnxruntime.quantization.quantize_static``) rewrites ``backbone.onnx`` with 8-bit weights (per
output channel, signed) and 8-bit activations (unsigned) in QDQ form; the activations' ranges are
the minimum and maximum seen on calibration crops: search crops cut around real targets, exactly as
the tracker cuts them (:func:`calibration_crops`). EfficientNet-Lite was designed for this (ReLU6,
no squeeze-excitation). Deterministic for the same crops and the same ONNX Runtime version.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["calibration_crops", "quantize_backbone", "int8_export"]


def calibration_crops(specs: Sequence[str], instance_sz: int, exemplar_sz: int, n: int = 64,
                      seed: int = 0) -> np.ndarray:
    """``n`` search crops (n, 3, X, X) float32 BGR [0, 255], X = ``instance_sz``, from the training-data
    specs ``KIND:PATH`` (as ``siamtrack train --data``): around visible targets at the tracker's context,
    shifted up to 32 px and scaled by exp(U(-0.1, 0.1)) (and the sampler's 5% stretch) as the tracker's scale
    search and motion do,
    no colour augmentation; each from a track drawn at random (a fixed seed)."""
    from .training.pairs import PairConfig, PairSampler
    from .training.sources import load_tracks

    if n < 1:
        raise ValueError(f"calibration: need at least one crop, got n={n}")
    cfg = PairConfig(exemplar_sz=exemplar_sz, instance_sz=instance_sz, shift=32.0, scale_jitter=0.1,
                     jitter=0.0, gray_prob=0.0, blur_prob=0.0, max_gap=0)
    sampler = PairSampler(load_tracks(list(specs)), cfg, cache_images=False)
    rng = np.random.default_rng(seed)
    crops = [sampler.sample(rng)[1] for _ in range(n)]
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2), dtype=np.float32)


def quantize_backbone(onnx_bytes: bytes, crops: np.ndarray, input_name: str = "search_crops") -> bytes:
    """``backbone.onnx`` (bytes) with 8-bit weights and activations calibrated on ``crops`` (N, 3, X, X)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(crops[i:i + 1] for i in range(len(crops)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (Path(tmp) / f for f in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(onnx_bytes)
        # Symbolic shape inference cannot follow the graph's dynamic padding (any crop size); ONNX's own does.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), _Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return out.read_bytes()


def int8_export(files: dict[str, bytes], meta: dict[str, Any], crops: np.ndarray,
                calibration: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """An export (:func:`tracker.export.export_model`'s ``files, meta``) with its backbone quantised on
    ``crops``; ``meta`` gains ``"quantized"`` (what, how, on what: ``calibration`` describes the data)
    and ``-int8`` in its name (``quantized.from``: the name it had), and its sha256 table is brought up to date."""
    import onnxruntime

    files = {**files, "backbone.onnx": quantize_backbone(files["backbone.onnx"], crops)}
    meta = {**meta, "name": f"{meta['name']}-int8",
            "quantized": {"from": meta["name"], "files": ["backbone.onnx"], "weights": "int8, per output channel",
                          "activations": "uint8, min-max over the calibration crops", "format": "QDQ",
                          "calibration": f"{len(crops)} search crops of {calibration}",
                          "onnxruntime": onnxruntime.__version__},
            "sha256": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}
    return files, meta
