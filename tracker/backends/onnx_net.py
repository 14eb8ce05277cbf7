"""The network on ONNX Runtime: exported files (:mod:`tracker.backends.export`) behind the same small
inference API as :class:`tracker.networks.models.SiamNet`, so :class:`tracker.core.siamfc.SiamFCTracker`'s
one frame loop runs on either.

``template(z)`` embeds and caches the exemplar; ``track(x)`` and ``track_boxes(x)`` score search
crops against it. Crops come in as
NCHW float32 numpy arrays (or CPU tensors), BGR 0-255; outputs are numpy arrays.

Nothing here imports torch: with an exported folder, numpy, OpenCV and ONNX Runtime
are all that tracking needs.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.config import TrackerConfig, without_removed
from ..core.storage import read_json

__all__ = ["FORMAT", "META_NAME", "OnnxNet", "OnnxExportError", "load_export", "read_meta", "is_export"]

FORMAT = "siamtrack-onnx"  # model.json's "format"
META_NAME = "model.json"

_REQUIRED = ("exemplar.onnx", "backbone.onnx", "head.onnx")


class OnnxExportError(ValueError):
    """An exported model folder is incomplete, altered or inconsistent with its ``model.json``."""


def is_export(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is a folder made by ``siamtrack export`` (it holds a ``model.json``)."""
    return path is not None and (Path(path) / META_NAME).is_file()


def _import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("the ONNX Runtime back-end needs onnxruntime: pip install 'siamtrack[onnx]'") from None
    return onnxruntime


def _check_meta(meta: Any, meta_path: Path) -> dict[str, Any]:
    """``model.json``'s content, its shape checked: an :class:`OnnxExportError` naming ``meta_path`` otherwise."""
    def bad(msg: str) -> OnnxExportError:
        return OnnxExportError(f"{meta_path}: {msg}")

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad(f"not a {FORMAT} description (format: "
                  f"{meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r})")
    hashes = meta.get("sha256")
    if not isinstance(hashes, dict):
        raise bad("no sha256 table")
    for fname, want in hashes.items():
        if Path(fname).name != fname or not fname.endswith(".onnx") or not isinstance(want, str):
            raise bad(f"sha256 table entry {fname!r}: {want!r} is not a file name in this folder with its sha256")
    kinds = {"arch": (str,), "box_head": (bool,), "exemplar_sz": (int,), "instance_sz": (int,),
             "response_size": (int,), "stride": (int,), "centre_cell": (int, float), "name": (str, type(None)),
             "kernel_shape": (list,), "feature_shape": (list,), "config": (dict,)}
    for key, types in kinds.items():
        v = meta.get(key)
        if key in meta and (not isinstance(v, types) or (isinstance(v, bool) and bool not in types)):
            raise bad(f"{key!r} is {type(v).__name__} {v!r}, expected {' or '.join(t.__name__ for t in types)}")
    for key in ("kernel_shape", "feature_shape"):
        if key in meta and not all(isinstance(d, int) and not isinstance(d, bool) for d in meta[key]):
            raise bad(f"{key!r} must be a list of ints, got {meta[key]!r}")
    try:
        meta["config"] = without_removed(meta.get("config") or {}, str(meta_path))
        crops = {k: meta[k] for k in ("exemplar_sz", "instance_sz") if k in meta}
        TrackerConfig.from_dict({**meta["config"], **crops})
    except ValueError as e:
        raise OnnxExportError(str(e) if str(e).startswith(str(meta_path)) else f"{meta_path}: {e}") from None
    return meta


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """An export folder's ``model.json`` (``path``: the folder or the file), read and its shape checked;
    a one-line :class:`OnnxExportError` naming the file otherwise. The ONNX files are not read."""
    p = Path(path)
    folder = p.parent if p.name == META_NAME else p
    meta_path = folder / META_NAME
    if not meta_path.is_file():
        raise OnnxExportError(f"{folder}: no {META_NAME} here; not a siamtrack ONNX export "
                              "(make one with: siamtrack export --out DIR)")
    meta = read_json(meta_path, OnnxExportError)
    return _check_meta(meta, meta_path)


def load_export(path: str | os.PathLike) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Read an export folder (or its ``model.json``): ``(files, meta)``, every file's sha256 checked
    against ``model.json``; a clear :class:`OnnxExportError` naming the file otherwise."""
    p = Path(path)
    folder = p.parent if p.name == META_NAME else p
    meta_path = folder / META_NAME
    meta = read_meta(folder)
    files = {}
    for fname, want in meta["sha256"].items():
        f = folder / fname
        if not f.is_file():
            raise OnnxExportError(f"{f}: missing (listed in {meta_path})")
        try:
            data = f.read_bytes()
        except OSError as e:
            raise OnnxExportError(f"{f}: cannot read it ({e.strerror or e})") from None
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise OnnxExportError(f"{f}: sha256 {got} does not match {want} recorded in {meta_path} "
                                  "(file truncated or altered; export again)")
        files[fname] = data
    return files, meta


class OnnxNet:
    """SiamNet's tracking API (``template``, ``update_template``, ``track``, ``track_boxes``, and the
    stateless ``embed_exemplar``, ``embed``, ``respond``, ``respond_crops``) on ONNX Runtime
    sessions, one per exported file (CPU)."""

    def __init__(self, files: Mapping[str, bytes], meta: Mapping[str, Any], threads: int | None = None,
                 source: str = "exported model") -> None:
        """``files``/``meta`` as :func:`tracker.backends.export.export_model` makes them or :func:`load_export` reads
        them; ``threads``: ONNX Runtime's intra-op threads (None: its default, one per core)."""
        ort = _import_ort()
        self.source = source
        self.meta = dict(meta)
        for key in ("arch", "box_head", "exemplar_sz", "instance_sz", "response_size", "config"):
            if key not in meta:
                raise OnnxExportError(f"{source}: {META_NAME} has no {key!r}")
        boxes = () if not meta["box_head"] else ("head_boxes.onnx",) if "head_boxes.onnx" in files else ("box_head.onnx",)
        missing = [f for f in _REQUIRED + boxes if f not in files]
        if missing:
            raise OnnxExportError(f"{source}: {', '.join(missing)} missing from the export")
        self.arch = meta["arch"]
        self.has_box_head = bool(meta["box_head"])
        self.stride = int(meta.get("stride", 8))  # exports before the NanoTrack network: SiamNet's stride 8
        self.calibrated_score = bool(meta.get("calibrated_score", False))
        self.own_head = bool(meta.get("any_instance_size", False))  # NanoTrack's exports (see export_model)
        self.exemplar_sz, self.instance_sz = int(meta["exemplar_sz"]), int(meta["instance_sz"])
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
        self.threads = threads
        self._sessions = {}
        for fname, data in files.items():
            try:
                self._sessions[fname] = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own types for invalid graphs
                raise OnnxExportError(f"{source}: {fname} is not a loadable ONNX model ({str(e).splitlines()[0]})") from None
        self._check_shapes()
        self._zf: np.ndarray | None = None

    @classmethod
    def from_dir(cls, path: str | os.PathLike, threads: int | None = None) -> "OnnxNet":
        """Load an export folder (sha256 of every file checked)."""
        files, meta = load_export(path)
        return cls(files, meta, threads, source=str(path))

    def _check_shapes(self) -> None:
        """The graphs' input sizes must be those ``model.json`` records (a mismatched .json is an error). A
        backbone that takes any size (older exports took one) is run once on a crop of the recorded size: its
        features must have the recorded shape."""
        want = {"exemplar.onnx": self.exemplar_sz, "backbone.onnx": self.instance_sz}
        for fname, side in want.items():
            shape = self._sessions[fname].get_inputs()[0].shape
            if fname == "backbone.onnx" and all(isinstance(d, str) for d in shape[2:]):
                got = self.embed(np.zeros((1, 3, side, side), np.float32)).shape[1:]
                if list(got) != list(self.meta["feature_shape"]):
                    raise OnnxExportError(f"{self.source}: {fname} gives {list(got)} features for {side} px crops but "
                                          f"{META_NAME} says {self.meta['feature_shape']} ({side} px); export again")
            elif list(shape[1:]) != [3, side, side]:
                raise OnnxExportError(f"{self.source}: {fname} takes {shape} crops but {META_NAME} says "
                                      f"{side} px; export again")

    def check_config(self, config: TrackerConfig) -> None:
        """Refuse tracking parameters the exported graphs cannot serve (crop sizes).
        ``half`` (fp16 on CUDA) does not apply: the graphs are float32 on the CPU."""
        m = self.meta
        if m.get("any_instance_size") and config.exemplar_sz == self.exemplar_sz and config.instance_sz >= config.exemplar_sz:
            return  # the graphs take any search crop size (networks with a head of their own, one search crop)
        if (config.exemplar_sz, config.instance_sz) != (self.exemplar_sz, self.instance_sz):
            raise ValueError(f"{self.source}: exported for {self.exemplar_sz}/{self.instance_sz} px crops, not "
                             f"{config.exemplar_sz}/{config.instance_sz}; export again with these sizes")

    def centre_cell(self, size: int, instance_sz: int) -> float:
        """Index of the response cell at the search crop's centre (recorded at export for its crop size; exports
        without the record: the middle cell)."""
        if "centre_cell" not in self.meta:
            return (size - 1) / 2
        # cells are `stride` crop px apart: another crop size moves the centre by half the difference, in cells
        return float(self.meta["centre_cell"]) + (instance_sz - self.instance_sz) / (2 * self.stride)

    def response_size(self, exemplar_sz: int, instance_sz: int) -> int:
        """Side of the response map (the exported crop sizes; exports that take any search size: run once)."""
        if self.meta.get("any_instance_size") and exemplar_sz == self.exemplar_sz and instance_sz != self.instance_sz:
            zf = np.zeros(self.meta["kernel_shape"], np.float32)
            xf = self.embed(np.zeros((1, 3, instance_sz, instance_sz), np.float32))
            return int(self.score(xf, zf).shape[-1])
        if (exemplar_sz, instance_sz) != (self.exemplar_sz, self.instance_sz):
            raise ValueError(f"{self.source}: exported for {self.exemplar_sz}/{self.instance_sz} px crops, "
                             f"not {exemplar_sz}/{instance_sz}")
        return int(self.meta["response_size"])

    def _run(self, fname: str, **feed: np.ndarray) -> np.ndarray:
        return self._sessions[fname].run(None, feed)[0]

    @staticmethod
    def _array(x) -> np.ndarray:
        """A contiguous float32 array of ``x`` (a numpy array, or a torch tensor on the CPU)."""
        if not isinstance(x, np.ndarray):
            x = x.detach().cpu().float().numpy()
        return np.ascontiguousarray(x, dtype=np.float32)

    def template(self, z: np.ndarray) -> np.ndarray:
        """Embed the exemplar crop (1, 3, Z, Z) and cache its kernel."""
        self._zf = self.embed_exemplar(z)
        return self._zf

    def update_template(self, z: np.ndarray, rate: float) -> np.ndarray:
        """Blend a new exemplar crop into the cached kernel: ``(1 - rate) * old + rate * new``."""
        if self._zf is None:
            raise RuntimeError("OnnxNet.update_template called before template()")
        new = self.embed_exemplar(z)
        self._zf = self._zf + np.float32(rate) * (new - self._zf)
        return self._zf

    def _cached(self) -> np.ndarray:
        if self._zf is None:
            raise RuntimeError("OnnxNet.track called before template()")
        return self._zf

    def embed_exemplar(self, z: np.ndarray) -> np.ndarray:
        """The correlation kernel of an exemplar crop (1, 3, Z, Z), not cached."""
        return self._run("exemplar.onnx", exemplar_crop=self._array(z))

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Features (N, C, H, W) of N search crops (N, 3, X, X)."""
        return self._run("backbone.onnx", search_crops=self._array(x))

    def score(self, xf: np.ndarray, zf: np.ndarray) -> np.ndarray:
        """Responses (S, 1, R, R) of another kernel ``zf`` on search features ``xf`` (:meth:`track_features`)."""
        return self._run("head.onnx", zf=zf, xf=xf)

    @property
    def many_kernels(self) -> bool:
        """Whether :meth:`respond` takes several targets' kernels at once (``heads.onnx``; older exports lack it)."""
        return "heads.onnx" in self._sessions

    def respond(self, xf: np.ndarray, zf: np.ndarray, boxes: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`tracker.networks.models.SiamNet.respond`: responses (S, 1, R, R) of kernel ``zf`` on features ``xf``
        (S, C, H, W) and, with ``boxes``, edge distances. Several targets (B kernels ``zf``, each
        with its own consecutive crops' features, :attr:`many_kernels`): their responses in that order."""
        if boxes and not self.has_box_head:
            raise RuntimeError(f"{self.source}: this {self.arch} network has no box head")
        if len(zf) > 1 and (boxes or not self.many_kernels):
            raise RuntimeError(f"{self.source}: several kernels at once need heads.onnx (export again) and no box head")
        if boxes and "head_boxes.onnx" in self._sessions:  # a network with a head of its own: one pass for both
            resp, edges = self._sessions["head_boxes.onnx"].run(None, {"zf": zf, "xf": xf})
            return resp, edges
        edges = self._run("box_head.onnx", zf=zf, xf=xf) if boxes else None
        return (self.score(xf, zf) if len(zf) == 1 else self._run("heads.onnx", zf=zf, xf=xf)), edges

    @property
    def tracks_crops(self) -> bool:
        """Whether :meth:`respond_crops` runs in one call (``track.onnx``: exports of networks with a head of
        their own)."""
        return "track.onnx" in self._sessions

    def respond_crops(self, x: np.ndarray, zf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Search crops (S, 3, X, X) and a kernel to responses and edge distances (``track.onnx`` in one call)."""
        if not self.tracks_crops:
            return self.respond(self.embed(x), zf, boxes=True)
        resp, edges = self._sessions["track.onnx"].run(None, {"zf": zf, "search_crops": self._array(x)})
        return resp, edges

    def track(self, x: np.ndarray) -> np.ndarray:
        """Responses (S, 1, R, R) of S search crops."""
        return self.track_features(x)[0]

    def track_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Responses (S, 1, R, R) and the search crops' features (S, C, H, W) they came from."""
        zf = self._cached()
        xf = self.embed(x)
        return self.score(xf, zf), xf

    def track_boxes(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Responses (S, 1, R, R) and edge distances (S, 4, R, R), crop px."""
        zf = self._cached()
        return self.respond(self.embed(x), zf, boxes=True)
