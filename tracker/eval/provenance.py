"""What produced a tracker's results, and checks that keep results made with other settings apart.

Each tracker's results folder (``<results>/<label>/``) holds ``manifest.json``, written atomically
before the first result of a run lands there and checked by every later run into that folder::

    {"format": 1,
     "key": {"tracker": {...}, "protocol": {"benchmark": "otb", "max_frames": null}},
     "info": {"spec": "...", "weights": "/abs/path.pt", "device": "cpu", ...},
     "adopted": false}

``key`` decides whether finished results may be reused: for our trackers the weights file's sha256 (an
export folder's: its ``model.json``'s, which lists every file's sha256), the back-end (``torch`` /
``onnxruntime``) and every tracking parameter as the tracker applies them (the weights' own, presets and
``NAME:key=value`` overrides resolved); for OpenCV's the tracker's name and the sha256 of its model files;
and the protocol (benchmark layout and ``--max-frames``). A run whose key differs is refused, naming what
differs and how to keep the results apart (another ``--out`` or ``LABEL=SPEC``); nothing is replaced.
``info`` is recorded, not compared: paths, the device (CPU and CUDA give boxes that differ in the last
decimals but are the same tracker), library versions.

Results folders written before manifests existed hold result files but no manifest: their settings are
unknown. A run into such a folder resumes it as before (finished sequences are skipped), writes a manifest
with this run's key and ``"adopted": true`` (from then on the folder is checked like any other) and says so
on stderr; ``eval report`` reads such folders unchanged. Independently of the manifest, a run never
replaces a result file whose length is not the sequence's in this run (:func:`check_lengths`), which also
guards folders without one against a ``--max-frames`` smoke test.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..core.storage import read_json

__all__ = ["MANIFEST", "SettingsMismatch", "check", "claim", "differences", "read_manifest", "results_key"]

MANIFEST = "manifest.json"
FORMAT = 1


class SettingsMismatch(ValueError):
    """Results in a folder were made with other settings than this run's (the message says how to go on)."""


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, keys strings), for comparisons."""
    return json.loads(json.dumps(value, sort_keys=True))


def results_key(tracker: dict, benchmark: str, max_frames: int | None) -> dict:
    """The key finished results are reused under: the tracker's settings and the protocol."""
    return _plain({"tracker": tracker, "protocol": {"benchmark": benchmark, "max_frames": max_frames}})


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a tracker's results folder, None where there is none; a clear error if unreadable."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    fix = "restore it, or delete it to accept the results beside it as they are"
    data = read_json(path, what=f"a valid results manifest ({fix})")
    if isinstance(data, dict) and isinstance(data.get("key"), dict):
        return data
    raise ValueError(f"{path}: not a results manifest (no 'key'); {fix}")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _show(v: Any) -> str:
    if v is None:
        return "none"
    s = json.dumps(v) if not isinstance(v, str) else v
    return s[:12] + "..." if len(s) > 15 else s


def differences(old: dict, new: dict) -> list[str]:
    """What differs between two keys, as ``"field: X there, Y now"`` (``protocol.``/``tracker.`` dropped)."""
    a, b = _flat(old), _flat(new)
    out = []
    for k in sorted(set(a) | set(b), key=lambda k: (not k.startswith("protocol"), k)):
        if a.get(k, "<unset>") != b.get(k, "<unset>"):
            name = k.split(".", 1)[1] if "." in k else k
            there, now = (_show(v) if not (v is None and name == "max_frames") else "all" for v in (a.get(k), b.get(k)))
            out.append(f"{name}: {there} there, {now} now")
    return out


def _has_results(folder: Path) -> bool:
    return any(p.is_file() and p.name != MANIFEST and not p.name.startswith(".") for p in folder.rglob("*"))


def check(folder: Path, key: dict) -> bool:
    """Whether ``folder`` (one tracker's results) already records ``key``; raise :class:`SettingsMismatch`
    where its manifest holds another key (nothing is written)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (results of tracker {folder.name!r} go there)")
    old = read_manifest(folder) if folder.is_dir() else None
    if old is None:
        return False
    key = _plain(key)
    if _plain(old["key"]) == key:
        return True
    diff = differences(old["key"], key)
    raise SettingsMismatch(
        f"{folder} holds results made with other settings ({'; '.join(diff[:4])}{'; ...' if len(diff) > 4 else ''}); "
        f"use another --out or a LABEL= (e.g. --trackers {folder.name}-2=SPEC) to keep both, or delete {folder} "
        "to run it again")


def claim(folder: Path, key: dict, info: dict, write) -> None:
    """:func:`check` ``folder``, then record ``key`` there where it has no manifest (``write(path, text)``,
    atomic), adopting results already there (see the module docstring)."""
    folder = Path(folder)
    if check(folder, key):
        return
    adopted = folder.is_dir() and _has_results(folder)
    if adopted:
        print(f"note: {folder} has no {MANIFEST} (made before results were keyed by their settings): resuming it "
              "as it is, and recording this run's settings there", file=sys.stderr)
    doc = {"format": FORMAT, "key": _plain(key), "info": _plain(info), "adopted": adopted}
    write(folder / MANIFEST, json.dumps(doc, indent=1, sort_keys=True) + "\n")
