"""Finding, checking and loading weight files.

A weights file ``<name>.pt`` is a plain ``state_dict`` (tensors only, loaded with
``torch.load(weights_only=True)``). Beside it, ``<name>.json`` records its ``sha256``,
its ``arch`` and any tracking hyper-parameters chosen for it (``config``).

A name resolves in this order: an explicit path; ``$SIAMTRACK_WEIGHTS`` (a directory);
the repository's ``weights/``; the package data installed with ``tracker``.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import TrackerConfig, without_removed
from ..core.storage import read_json, write_atomic

if TYPE_CHECKING:  # torch is imported where weights are loaded, so a torch-free install can still resolve names
    import torch

    from .models import SiamNet

__all__ = ["WeightsError", "WeightsInfo", "resolve", "preset_config", "expand_preset", "load_model", "save_weights", "sha256_of", "search_dirs", "available",
           "find_export", "torch_bytes", "write_atomic"]

ENV_VAR = "SIAMTRACK_WEIGHTS"
DEFAULT = "nanotrack-v2"  # the shipped default, on CPU and GPU (siamfc-effnet, the ImageNet network, by name)
EXPORT_SUFFIX = "-onnx"  # <name>-onnx/: the ONNX export shipped beside <name>.pt (tracker.backends.export)


class WeightsError(ValueError):
    """A weights file is missing, corrupt, altered or for another architecture."""


@dataclass(frozen=True)
class WeightsInfo:
    path: Path
    arch: str | None = None
    sha256: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    has_meta: bool = True  # False: no <name>.json beside the file (no hash check, no stored tracking parameters)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # named overrides of config (e.g. "fast")


def search_dirs() -> list[Path]:
    """Directories searched for a weights name, in order. ``$SIAMTRACK_WEIGHTS`` must name a folder."""
    dirs = []
    if os.environ.get(ENV_VAR):
        env = Path(os.environ[ENV_VAR])
        if not env.exists():
            raise WeightsError(f"${ENV_VAR}={env}: no such folder; set it to a folder of weights (<name>.pt with "
                               f"<name>.json), or unset it to use the shipped weights")
        if not env.is_dir():
            raise WeightsError(f"${ENV_VAR}={env}: not a folder; it names a folder of weights (<name>.pt with "
                               f"<name>.json); to use one file, pass its path (--model {env}, or from_pretrained(path))")
        dirs.append(env)
    package = Path(__file__).resolve().parents[1]  # tracker/
    dirs.append(package.parent / "weights")  # repository checkout
    dirs.append(package / "_weights")  # installed package data
    return dirs


def find_export(name: str) -> Path | None:
    """The ONNX export shipped for weights ``name`` (a folder ``<name>-onnx`` beside ``<name>.pt``, made
    by ``siamtrack export``), or None. Names only, not paths."""
    if os.sep in name or name.endswith(".pt"):
        return None
    for d in search_dirs():
        if (d / f"{name}.pt").is_file():
            folder = d / f"{name}{EXPORT_SUFFIX}"
            return folder if (folder / "model.json").is_file() else None
    return None


def available() -> list[str]:
    """Names of the weights found in :func:`search_dirs`."""
    names = set()
    for d in search_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.pt"))
    return sorted(names)


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_meta(pt: Path) -> WeightsInfo:
    meta = pt.with_suffix(".json")
    if not meta.exists():
        return WeightsInfo(pt, has_meta=False)
    d = read_json(meta, WeightsError)
    if not isinstance(d, dict):
        raise WeightsError(f"{meta}: expected an object (arch, sha256, config), got {type(d).__name__}")
    for key, kind in (("arch", str), ("sha256", str), ("config", dict), ("presets", dict)):
        if d.get(key) is not None and not isinstance(d[key], kind):
            raise WeightsError(f"{meta}: {key!r} must be {'an object' if kind is dict else 'a string'}, "
                               f"got {type(d[key]).__name__} {d[key]!r}")
    presets = d.get("presets") or {}
    bad = [k for k, v in presets.items() if not isinstance(v, dict)]
    if bad:
        raise WeightsError(f"{meta}: presets {bad} must be objects of tracking parameters")
    try:
        config = without_removed(d.get("config") or {}, str(meta))
    except ValueError as e:
        raise WeightsError(str(e)) from None
    for name, values in [(None, {}), *presets.items()]:  # every set of values a tracker would be built with
        try:
            TrackerConfig.from_dict({**config, **values})
        except ValueError as e:
            raise WeightsError(f"{meta}{'' if name is None else f' (preset {name!r})'}: {e}") from None
    return WeightsInfo(pt, d.get("arch"), d.get("sha256"), config,
                       presets={str(k): dict(v) for k, v in presets.items()})


def resolve(name_or_path: str | os.PathLike) -> WeightsInfo:
    """Find a weights file by explicit path or by name (see module docstring)."""
    p = Path(name_or_path)
    if p.suffix == ".pt" or p.exists() or os.sep in str(name_or_path):
        if p.is_dir():
            raise WeightsError(f"{p}: a folder without model.json: not a complete siamtrack ONNX export "
                               "(model.json missing; export again with siamtrack export --out DIR), nor a weights "
                               "file (.pt)")
        if not p.is_file():
            raise WeightsError(f"{p}: weights file not found")
        return _read_meta(p)
    tried = []
    for d in search_dirs():
        cand = d / f"{name_or_path}.pt"
        tried.append(str(cand))
        if cand.is_file():
            return _read_meta(cand)
    raise WeightsError(f"weights {str(name_or_path)!r} not found; looked in: {', '.join(tried)}")


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [""])[0]


def _infer_arch(state: dict[str, torch.Tensor]) -> tuple[str, bool] | None:
    """``(arch, has_box_head)`` whose tensors match ``state`` exactly, or None."""
    from .models import build_model, known_architectures

    box = any(k.startswith("box_head.") for k in state)
    for arch in known_architectures():
        ref = build_model(arch, box_head=box).state_dict()
        if set(ref) == set(state) and all(ref[k].shape == state[k].shape for k in ref):
            return arch, box
    return None


def preset_config(name_or_path: str | os.PathLike, preset: str, config: dict | None = None) -> dict[str, Any]:
    """The overrides of the weights' named ``preset`` (their ``.json``'s ``presets``), then ``config`` on top;
    a :class:`WeightsError` naming the presets there are for an unknown one."""
    info = resolve(name_or_path)
    if preset not in info.presets:
        have = ", ".join(sorted(info.presets)) or "none"
        raise WeightsError(f"{info.path}: no preset {preset!r} (its .json has: {have})")
    return {**info.presets[preset], **(config or {})}


def expand_preset(name_or_path: str | os.PathLike, overrides: dict[str, Any]) -> dict[str, Any]:
    """A spec's overrides (``NAME:preset=fast,key=value``) with its ``preset`` replaced by that preset's own."""
    if "preset" not in overrides:
        return overrides
    rest = {k: v for k, v in overrides.items() if k != "preset"}
    return preset_config(name_or_path, str(overrides["preset"]), rest)


def load_model(name_or_path: str | os.PathLike) -> tuple[SiamNet, WeightsInfo]:
    """Load weights into a :class:`SiamNet`; raise :class:`WeightsError` naming the file on any mismatch."""
    import torch

    from .models import build_model, known_architectures

    info = resolve(name_or_path)
    path = info.path
    if info.sha256 is not None:
        actual = sha256_of(path)
        if actual != info.sha256:
            raise WeightsError(
                f"{path}: sha256 {actual} does not match {info.sha256} recorded in {path.with_suffix('.json')} "
                "(file truncated or altered)"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise WeightsError(f"{path}: not a readable PyTorch weights file ({_first_line(e)})") from None
        raise WeightsError(f"{path}: holds pickled Python objects (e.g. a whole model saved with torch.save(model)); "
                           "expected a state_dict of tensors: save model.state_dict() instead") from None
    except Exception as e:  # torch raises many types for corrupt archives
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state_dict of tensors, got {type(state).__name__}")
    found = _infer_arch(state)
    if info.arch is not None and info.arch not in known_architectures():
        raise WeightsError(f"{path.with_suffix('.json')}: unknown arch {info.arch!r}")
    if found is None:
        want = info.arch or "any of " + ", ".join(known_architectures())
        raise WeightsError(f"{path}: its tensors match no known architecture (expected {want})")
    arch, box_head = found
    if info.arch is not None and arch != info.arch:
        raise WeightsError(f"{path}: holds {arch!r} weights but {path.with_suffix('.json')} says {info.arch!r}")
    net = build_model(arch, box_head=box_head)
    net.load_state_dict(state)
    return net.eval(), WeightsInfo(path, arch, info.sha256, info.config, info.has_meta, info.presets)


def save_weights(net: SiamNet, path: str | Path, config: dict[str, Any] | None = None, **extra: Any) -> Path:
    """Write ``net``'s state_dict to ``path`` and its ``.json`` (sha256, arch, config), both atomically (an
    :class:`OSError` naming the file on a full disk; no temporary file left)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = torch_bytes({k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
    write_atomic(path, data)
    meta = {"arch": net.arch, "box_head": net.has_box_head, "sha256": hashlib.sha256(data).hexdigest(),
            "config": config or {}, **extra}
    write_atomic(path.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
    return path


def torch_bytes(obj: Any) -> bytes:
    """``torch.save(obj)``'s bytes (written by :func:`write_atomic`: torch's own writer reports a full disk as a
    RuntimeError without the cause, and leaves a partial file)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
