"""Export a :class:`SiamNet` to ONNX: the backbone and the heads as separate files.

The correlation uses the exemplar's features as convolution weights, so a network that
takes the exemplar crop and the search crop together cannot be exported with static
weights. As OpenCV does for NanoTrack, the export splits it where the features meet:

* ``exemplar.onnx``: exemplar crop (1, 3, Z, Z) -> correlation kernel ``zf`` (the backbone
  and its exemplar cut, e.g. effnet-lite0's central 7x7);
* ``backbone.onnx``: search crops (N, 3, H, W) -> features ``xf`` (N, H and W dynamic);
* ``head.onnx``: ``zf`` (1, C, k, k) and ``xf`` (N, C, H, W) -> responses (N, 1, R, R);
* ``heads.onnx``: the same for B kernels (B, C, k, k), each on its N / B consecutive maps (several targets);
* ``box_head.onnx`` (SiamNet with a box head): ``zf`` and ``xf`` -> edge distances (N, 4, R, R);
* ``head_boxes.onnx`` (networks with a head of their own, :data:`tracker.networks.models.NETWORKS`, e.g. NanoTrack):
  ``zf`` and ``xf`` -> responses and edge distances from one pass (``head.onnx``: the responses alone), and
  ``track.onnx``: ``zf`` and the search crops -> both, backbone included (one call per tracked frame);
* ``model.json``: format, architecture, crop sizes, input layout and normalisation, opset,
  the tracking parameters (:class:`TrackerConfig`), the sha256 of every file and of the
  weights file it came from.

Crops are float32 NCHW holding BGR pixel values in [0, 255], exactly what the torch
network takes: normalisation is inside the graphs. BatchNorm is folded before export.
:class:`tracker.backends.onnx_net.OnnxNet` runs the files with ONNX Runtime.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import logging
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..core.config import TrackerConfig
from ..networks.models import (
    SiamNet,
    correlation_index,
    prepare_for_inference,
    xcorr_gather,
    xcorr_gather_many,
)
from .onnx_net import FORMAT, META_NAME

__all__ = ["FORMAT", "META_NAME", "OPSET", "ExportFolderError", "check_export_folder", "export_model", "write_export", "max_differences", "opencv_check"]

OPSET = 18


class _Exemplar(nn.Module):
    def __init__(self, net: SiamNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.embed_exemplar(z)


class _Backbone(_Exemplar):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


class _Head(nn.Module):
    """:meth:`SiamNet.head` for one exemplar kernel (1, C, k, k) and features (N, C, H, W) of fixed H, W,
    as the tracker computes it (:func:`tracker.networks.models.xcorr_gather`: a matrix product and a gather, which
    ONNX Runtime ran in half the time of a convolution whose kernel is a graph input)."""

    def __init__(self, net: SiamNet, kernel_shape: tuple[int, ...], feature_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("index", correlation_index(kernel_shape[-1], *feature_shape[-2:]))

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return xcorr_gather(zf, xf, self.index) * self.net.out_scale + self.net.bias


class _Heads(_Head):
    """:class:`_Head` for several targets: B kernels (B, C, k, k), each on its N / B consecutive feature maps
    of ``xf`` (N, C, H, W) (:func:`tracker.networks.models.xcorr_gather_many`), one call for every target."""

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return xcorr_gather_many(zf, xf, self.index) * self.net.out_scale + self.net.bias


class _BoxHead(_Exemplar):
    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.net.box_head(self.net.box_head.kernel(zf), xf)


class _OwnScore(_Exemplar):
    """The response of a network with a head of its own (:data:`tracker.networks.models.NETWORKS`), one kernel."""

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.net.score(xf, zf)


class _OwnBoth(_Exemplar):
    """The response and edge distances of a network with a head of its own, one kernel, from one pass."""

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.score_and_edges(xf, zf)


class _OwnTrack(_Exemplar):
    """Search crops to the response and edge distances in one graph (one ONNX Runtime call per frame)."""

    def forward(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.score_and_edges(self.net.embed(x), zf)


def _to_onnx(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], output: str | list[str],
             dynamic: dict[str, dict[int, str]]) -> bytes:
    """One module as ONNX bytes (torch's dynamo exporter, opset :data:`OPSET`), its chatter silenced."""
    from torch.export import Dim

    shapes = tuple({i: Dim(label) for i, label in dynamic[name].items()} if name in dynamic else None
                   for name in names)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module.eval(), args, None, input_names=names,
                                        output_names=[output] if isinstance(output, str) else output,
                                        opset_version=OPSET, dynamo=True, dynamic_shapes=shapes,
                                        verbose=False, optimize=True)
    finally:
        quiet.setLevel(level)
    return program.model_proto.SerializeToString()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_model(net: SiamNet, config: TrackerConfig, name: str,
                 source_sha256: str | None = None) -> tuple[dict[str, bytes], dict[str, Any]]:
    """``net`` as ONNX files for tracking with ``config`` (crop sizes unset = the network's):
    ``(files, meta)`` with ``files`` mapping file names to ONNX bytes and ``meta`` the content
    of ``model.json``; ``source_sha256``, the weights file's, is recorded there. Nothing is written
    (see :func:`write_export`)."""
    cfg = config.with_crop_sizes(net)
    net = prepare_for_inference(net).cpu().float()
    z = torch.full((1, 3, cfg.exemplar_sz, cfg.exemplar_sz), 127.0)
    # Traced with at least two crops: torch.export takes a dimension of size 1 for a constant, not a batch size.
    x = torch.full((max(cfg.scale_num, 2), 3, cfg.instance_sz, cfg.instance_sz), 127.0)
    with torch.no_grad():
        zf, xf = net.embed_exemplar(z), net.embed(x)
    resp_sz = net.response_size(cfg.exemplar_sz, cfg.instance_sz)
    batch = {0: "n"}
    files = {
        "exemplar.onnx": _to_onnx(_Exemplar(net), (z,), ["exemplar_crop"], "zf", {}),
        # Any crop size (N, 3, H, W).
        "backbone.onnx": _to_onnx(_Backbone(net), (x,), ["search_crops"], "xf", {"search_crops": {0: "n", 2: "h", 3: "w"}}),
    }
    if isinstance(net, SiamNet):  # SiamNet's correlation head, in its gather form (faster on ONNX Runtime)
        files["head.onnx"] = _to_onnx(_Head(net, zf.shape, xf.shape), (zf, xf), ["zf", "xf"], "response", {"xf": batch})
        # B targets' kernels at once (traced with two, so no size is fixed at one): MultiTracker's batched head.
        files["heads.onnx"] = _to_onnx(_Heads(net, zf.shape, xf.shape), (zf.repeat(2, 1, 1, 1), xf.repeat(2, 1, 1, 1)),
                                       ["zf", "xf"], "response", {"zf": {0: "b"}, "xf": batch})
        if net.has_box_head:
            files["box_head.onnx"] = _to_onnx(_BoxHead(net), (zf, xf), ["zf", "xf"], "edges", {"xf": batch})
    else:  # a network with a head of its own (tracker.networks.models.NETWORKS): the score alone, and score and box together,
        # for search features of any size (so the export serves any search crop size: instance_sz)
        spatial = {"xf": {0: "n", 2: "h", 3: "w"}}
        files["head.onnx"] = _to_onnx(_OwnScore(net), (zf, xf), ["zf", "xf"], "response", spatial)
        files["head_boxes.onnx"] = _to_onnx(_OwnBoth(net), (zf, xf), ["zf", "xf"], ["response", "edges"], spatial)
        files["track.onnx"] = _to_onnx(_OwnTrack(net), (zf, x), ["zf", "search_crops"], ["response", "edges"],
                                       {"search_crops": {0: "n", 2: "h", 3: "w"}})
    meta = {
        "format": FORMAT,
        "version": 1,
        "name": name,
        "arch": net.arch,
        "box_head": net.has_box_head,
        "stride": int(net.stride),
        "calibrated_score": bool(net.calibrated_score),
        "opset": OPSET,
        "input": {"layout": "NCHW", "dtype": "float32", "colour": "BGR", "range": [0, 255],
                  "normalisation": "inside the graphs (none needed before them)"},
        "exemplar_sz": cfg.exemplar_sz,
        "instance_sz": cfg.instance_sz,
        "kernel_shape": list(zf.shape),
        "feature_shape": list(xf.shape[1:]),
        "response_size": int(resp_sz),
        "centre_cell": float(net.centre_cell(resp_sz, cfg.instance_sz)),
        # Networks with a head of their own: the graphs take any search crop size; the centre cell moves with it.
        "any_instance_size": not isinstance(net, SiamNet),
        "source_sha256": source_sha256,
        "config": cfg.to_dict(),
        "sha256": {k: _sha256(v) for k, v in files.items()},
    }
    return files, meta


class ExportFolderError(ValueError):
    """``--out`` cannot take an export: a file, or a folder holding files that are not an earlier export's."""


def _pid_alive(text: str) -> bool:
    try:
        os.kill(int(text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _tidy_siblings(out: Path) -> None:
    """What a killed :func:`write_export` left beside ``out``: its temporary folders (``.NAME.tmpPID``, removed)
    and, killed between the two renames of the swap, the old export set aside (``.NAME.oldPID``: put back when
    ``out`` is missing, else removed). Folders of a process still running are left alone."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)(\d+)")
    for p in sorted(out.parent.glob(f".{glob.escape(out.name)}.*")):
        m = pattern.fullmatch(p.name)
        if not m or not p.is_dir() or _pid_alive(m.group(2)):
            continue
        if m.group(1) == "old" and not out.exists() and (p / META_NAME).is_file():
            os.rename(p, out)
        else:
            shutil.rmtree(p, ignore_errors=True)


def check_export_folder(out: Path) -> None:
    """``out`` may take a new export: absent, an empty folder, or a folder holding an earlier export (its files
    only); an :class:`ExportFolderError` naming it otherwise (a new export replaces the whole folder)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportFolderError(f"{out}: exists and is not a folder")
    ours = {META_NAME}
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        ours |= set(json.loads((out / META_NAME).read_text()).get("sha256", {}))
    # An export's files, and the temporary files older versions wrote inside the folder (.NAME.tmpPID).
    others = sorted(p.name for p in out.iterdir()
                    if p.name not in ours and not (p.is_file() and (p.suffix == ".onnx" or ".tmp" in p.name)))
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise ExportFolderError(f"{out}: holds files that are not an export's ({shown}); an export replaces the "
                                "whole folder, so give an empty or new folder, or an earlier export's")


def write_export(files: dict[str, bytes], meta: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write :func:`export_model`'s output as the folder ``out_dir``: into a temporary folder beside it
    (``.NAME.tmpPID``), then swapped in whole (an earlier export set aside, the new one renamed in, the
    earlier one removed), so ``out_dir`` always holds one complete export, the old or the new. On any failure
    (a full disk, a read-only folder) the temporary folder is removed, an earlier export stays as it was and an
    :class:`OSError` naming the path and the cause is raised; :class:`ExportFolderError` for an ``out_dir``
    that holds other files. Returns the path of its ``model.json``."""
    out = Path(out_dir).absolute()
    if out.is_symlink():  # swap the folder it points to; the link stays
        out = out.resolve()
    check_export_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _tidy_siblings(out)
    tmp = out.parent / f".{out.name}.tmp{os.getpid()}"
    old = out.parent / f".{out.name}.old{os.getpid()}"
    try:
        tmp.mkdir()
        for fname, data in [*files.items(), (META_NAME, (json.dumps(meta, indent=2) + "\n").encode())]:
            with open(tmp / fname, "wb") as f:  # model.json last
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if out.exists():
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            where = e.filename if e.filename and not str(e.filename).startswith(str(tmp)) else out
            raise OSError(e.errno, e.strerror or str(e), str(where)) from None
        raise
    return out / META_NAME


def max_differences(torch_tracker, onnx_tracker, frame: np.ndarray, box) -> dict[str, float]:
    """Largest absolute differences between two trackers' networks (torch and ONNX Runtime) on real crops:
    after ``init(frame, box)`` on both, the exemplar kernel, the responses (and edges) of the torch
    tracker's search crops on ``frame``. Keys: ``zf``, ``response`` and, with a box head, ``edges``."""
    for t in (torch_tracker, onnx_tracker):
        t.init(frame, box)
    out: dict[str, float] = {}
    with torch.inference_mode():
        x = torch_tracker._crops(frame, None, torch_tracker.x_sz * torch_tracker.scale_factors,
                                 torch_tracker.config.instance_sz)
        xt, xo = torch_tracker.net.embed(x), onnx_tracker.net.embed(x)
        boxes = torch_tracker.net.has_box_head
        (rt, et), (ro, eo) = (torch_tracker.net.respond(xt, torch_tracker.zf, boxes=boxes),
                              onnx_tracker.net.respond(xo, onnx_tracker.zf, boxes=boxes))
        pairs = [("zf", torch_tracker.zf, onnx_tracker.zf), ("response", rt, ro)] + ([("edges", et, eo)] if boxes else [])
        for key, a, b in pairs:
            out[key] = float(np.abs(a.float().cpu().numpy() - b).max())
    return out


def opencv_check(out_dir: str | os.PathLike) -> dict[str, str]:
    """Whether OpenCV's DNN module loads and runs each exported file: file name -> ``"ok (max diff D)"``
    against ONNX Runtime on random inputs of the recorded shapes, or the error OpenCV gave."""
    import cv2
    import onnxruntime as ort

    out = Path(out_dir)
    meta = json.loads((out / META_NAME).read_text())
    rng = np.random.default_rng(0)
    zf_shape, f_shape = meta["kernel_shape"], meta["feature_shape"]
    n = meta["config"]["scale_num"]
    inputs = {
        "exemplar.onnx": {"exemplar_crop": rng.uniform(0, 255, (1, 3, meta["exemplar_sz"], meta["exemplar_sz"]))},
        "backbone.onnx": {"search_crops": rng.uniform(0, 255, (n, 3, meta["instance_sz"], meta["instance_sz"]))},
        "head.onnx": {"zf": rng.normal(size=zf_shape), "xf": rng.normal(size=(n, *f_shape))},
        "heads.onnx": {"zf": rng.normal(size=(2, *zf_shape[1:])), "xf": rng.normal(size=(2 * n, *f_shape))},
        "box_head.onnx": {"zf": rng.normal(size=zf_shape), "xf": rng.normal(size=(n, *f_shape))},
        "head_boxes.onnx": {"zf": rng.normal(size=zf_shape), "xf": rng.normal(size=(n, *f_shape))},
        "track.onnx": {"zf": rng.normal(size=zf_shape),
                       "search_crops": rng.uniform(0, 255, (n, 3, meta["instance_sz"], meta["instance_sz"]))},
    }
    report = {}
    for fname in meta["sha256"]:
        feed = {k: v.astype(np.float32) for k, v in inputs[fname].items()}
        ref = ort.InferenceSession(str(out / fname), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        try:
            dnn = cv2.dnn.readNet(str(out / fname))
            for k, v in feed.items():
                dnn.setInput(v, k)
            got = dnn.forward()
            report[fname] = f"ok (max diff {float(np.abs(got - ref).max()):.2e})"
        except cv2.error as e:
            msg = [line for line in str(e).splitlines() if line.strip()]
            report[fname] = "fails: " + (msg[-1].strip() if msg else "cv2.error")
    return report
