"""Building a :class:`tracker.core.siamfc.SiamFCTracker` from weights or an export (what its
``from_pretrained`` and ``from_onnx`` do): which back-end runs the network, which tracking
parameters apply, and the shipped ONNX export of a weights file."""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import warnings
from pathlib import Path

from ..core.config import TrackerConfig, without_removed
from ..core.device import resolve_device, torch
from ..networks.weights import (
    DEFAULT,
    find_export,
    load_model,
    preset_config,
    resolve,
    sha256_of,
)
from .onnx_net import META_NAME, OnnxNet, is_export, read_meta

__all__ = ["BACKENDS", "from_pretrained", "from_onnx"]

BACKENDS = ("torch", "onnxruntime")  # what runs the network: PyTorch (CPU or CUDA), ONNX Runtime (CPU)

# In-memory exports already made in this process, by the weights' sha256 and the tracking parameters:
# an evaluation builds one tracker per sequence, and an export takes seconds.
_EXPORTS: dict[tuple, tuple[dict, dict]] = {}
_EXPORTS_KEPT = 8


def _shipped_export(name: str, config: TrackerConfig | dict | None,
                    threads: int | None) -> tuple[OnnxNet, TrackerConfig] | None:
    """The export shipped beside weights ``name`` (``<name>-onnx/``), loaded, with its tracking parameters
    and ``config`` applied, when it was made from that very weights file (its sha256) with the tracking
    parameters its ``.json`` holds now, and its graphs serve the config; else None."""
    folder = find_export(name)
    if folder is None:
        return None
    meta = read_meta(folder)  # an invalid one is an error naming the file
    info = resolve(name)
    if meta.get("source_sha256") is None or meta["source_sha256"] != info.sha256:
        return None  # the weights changed since (or are unrecorded): not this network
    crops = {k: meta[k] for k in ("exemplar_sz", "instance_sz")}
    saved = without_removed(meta["config"], str(folder / META_NAME))
    if TrackerConfig.from_dict({**crops, **saved}) != TrackerConfig.from_dict({**crops, **info.config}):
        return None  # the .json's tracking parameters changed since the export: it would track with stale ones
    net = OnnxNet.from_dir(folder, threads=threads)
    cfg = config if isinstance(config, TrackerConfig) else TrackerConfig.from_dict({**net.meta["config"], **(config or {})})
    cfg = cfg.with_crop_sizes(net)
    try:
        net.check_config(cfg)
    except ValueError:
        return None
    return net, cfg


def from_pretrained(cls, name_or_path, device, config, backend, threads, preset=None, **kwargs):
    """:meth:`tracker.core.siamfc.SiamFCTracker.from_pretrained` (``cls``: the tracker class)."""
    if preset is not None:
        if isinstance(config, TrackerConfig):
            raise ValueError(f"preset {preset!r}: pass config as a dict of overrides to apply on top of it")
        config = preset_config(DEFAULT if name_or_path is None else name_or_path, preset, config)
    if backend not in BACKENDS + ("auto",):
        raise ValueError(f"backend must be one of {BACKENDS + ('auto',)}, got {backend!r}")
    if backend == "onnxruntime" and str(device) not in ("auto", "cpu"):
        raise ValueError(f"the ONNX Runtime back-end runs on the CPU, not device={device!r}")
    if is_export(name_or_path):  # a folder made by siamtrack export: ONNX Runtime
        if isinstance(config, TrackerConfig):
            raise ValueError(f"{name_or_path}: an ONNX export takes config overrides as a dict")
        return from_onnx(cls, name_or_path, config, threads, device=device, **kwargs)
    if name_or_path is None:
        name_or_path = DEFAULT
    if torch is None and str(device) not in ("auto", "cpu"):
        raise ImportError(f"device={device!r}: PyTorch is not installed; without it exports run on the CPU only")
    if backend == "auto":  # ONNX Runtime where it is installed, the run is on the CPU and an export ships
        on_cpu = str(device) == "cpu" or (str(device) == "auto" and not (torch is not None and torch.cuda.is_available()))
        if not (on_cpu and kwargs.get("pipeline", "auto") != "torch"
                and importlib.util.find_spec("onnxruntime") is not None):
            backend = "torch"
    if backend in ("onnxruntime", "auto") or torch is None:
        shipped = _shipped_export(str(name_or_path), config, threads)
        if shipped is not None:
            return cls(shipped[0], shipped[1], "cpu", name=str(name_or_path), **kwargs)
        backend = "torch" if backend == "auto" else backend
        if torch is None:
            raise ImportError(f"{name_or_path}: PyTorch is not installed, and no export of these weights is "
                              "shipped; without torch only exported models run (siamtrack export on a machine "
                              "with torch, then SiamFCTracker.from_onnx(DIR) or siamtrack track --model DIR)")
    dev = "cpu" if backend == "onnxruntime" and str(device) in ("auto", "cpu") else resolve_device(device)
    net, info = load_model(name_or_path)
    if not info.has_meta and not isinstance(config, TrackerConfig):
        warnings.warn(f"{info.path}: no {info.path.with_suffix('.json').name} beside it, so no tracking parameters "
                      f"were chosen for these weights; tracking with the defaults "
                      f"{TrackerConfig.from_dict({**({'scale_num': 1} if net.has_box_head else {}), **(config or {})})}"
                      " (write the .json, as tracker.networks.weights.save_weights does, or pass config= to set them)",
                      stacklevel=3)
    if isinstance(config, TrackerConfig):
        cfg = config
    else:
        merged = {**info.config, **(config or {})}
        if net.has_box_head and merged.get("box_head", True) and "scale_num" not in merged:
            merged["scale_num"] = 1  # a box head sizes the box itself: one search scale
        cfg = TrackerConfig.from_dict(merged)
    name = os.path.splitext(os.path.basename(str(name_or_path)))[0]
    if backend == "onnxruntime":
        from .export import export_model

        cfg = cfg.with_crop_sizes(net)
        key = (info.sha256 or sha256_of(info.path), json.dumps(cfg.to_dict(), sort_keys=True))  # the file's content, checked
        if key not in _EXPORTS:
            while len(_EXPORTS) >= _EXPORTS_KEPT:
                _EXPORTS.pop(next(iter(_EXPORTS)))
            _EXPORTS[key] = export_model(net, cfg, name, info.sha256)
        files, meta = _EXPORTS[key]
        net = OnnxNet(dict(files), {**copy.deepcopy(meta), "name": name}, threads=threads,
                      source=f"{name} (exported in memory)")
    return cls(net, cfg, dev, name=name, **kwargs)



def from_onnx(cls, path, config, threads, device, **kwargs):
    """:meth:`tracker.core.siamfc.SiamFCTracker.from_onnx` (``cls``: the tracker class)."""
    net = OnnxNet.from_dir(path, threads=threads)
    cfg = TrackerConfig.from_dict({**net.meta["config"], **(config or {})})
    return cls(net, cfg, device, name=str(net.meta.get("name") or Path(path).name), **kwargs)
