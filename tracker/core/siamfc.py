"""The SiamFC frame loop: crop, score, find the peak, move and rescale the box.

A frame's path: :meth:`SiamFCTracker.update` validates it, crops ``scale_num`` search
regions around the last centre (:mod:`tracker.core.ops`), embeds them (``net.embed``), scores them
against the target's exemplar kernel (``net.respond``, the kernel being the tracker's state, so
one network serves many targets: :mod:`tracker.core.multi`), upsamples the responses, penalises scale
changes, blends in a Hann window, and converts the peak's offset back to image pixels
(``scale_every`` > 1: the pyramid on every N-th frame, the current scale alone between). In
long-term mode a target lost for a while is also searched for over the whole frame
(:mod:`tracker.core.redetect`).
Networks with a box head (:class:`tracker.networks.models.BoxHead`) search one scale: every response
cell proposes a box from its edge distances, and :func:`tracker.core.postprocess.find_box` picks
one by score, size-change penalty and window; the box's centre, width and height follow it
(its aspect ratio can change).
On CUDA the crop, network and post-processing all run on the device; one small
transfer per frame brings back the peak.
"""
from __future__ import annotations

import contextlib
import copy
import os
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

try:  # a deployment install (numpy, OpenCV, ONNX Runtime) tracks exported models without torch
    import torch
except ImportError:
    torch = None

from ..backends.loading import BACKENDS
from ..backends.onnx_net import OnnxNet
from . import ops, postprocess, redetect
from .config import TrackerConfig
from .device import CPU_TORCH_BATCH, HAS_TORCH, embed_in_batches, resolve_device
from .device import to_host as _host
from .inputs import as_bgr_frame, as_box
from .ops import TOTAL_STRIDE
from .result import REACQUIRED, SEARCHING, TRACKING, TrackResult

if TYPE_CHECKING:
    from ..networks.models import SiamNet

__all__ = ["SiamFCTracker", "TrackResult", "resolve_device", "embed_in_batches", "BACKENDS", "HAS_TORCH",
           "TRACKING", "SEARCHING", "REACQUIRED", "CPU_TORCH_BATCH"]


class SiamFCTracker(redetect.LongTermSearch):
    """Single-object SiamFC tracker: ``init(frame, box)`` once, then ``update(frame)`` per frame.

    Frames are BGR ``uint8`` ``(H, W, 3)`` arrays; boxes ``(x, y, w, h)`` 0-based pixels.
    """

    def __init__(self, net: SiamNet | OnnxNet, config: TrackerConfig | None = None, device: str | torch.device = "auto",
                 pipeline: str = "auto", name: str | None = None) -> None:
        """``net``: a :class:`SiamNet` (torch, CPU or CUDA) or an :class:`tracker.backends.onnx_net.OnnxNet` (ONNX
        Runtime, CPU; its exported crop sizes and scales must match ``config``).
        ``pipeline``: ``"numpy"`` (OpenCV crops, host post-processing), ``"torch"`` (all on
        ``device``) or ``"auto"`` (torch on CUDA, numpy on CPU)."""
        self.config = (config or TrackerConfig()).with_crop_sizes(net)  # unset: the sizes the network is built for
        onnx = isinstance(net, OnnxNet)
        self.backend = "onnxruntime" if onnx else "torch"
        if pipeline not in ("auto", "numpy", "torch"):
            raise ValueError(f"pipeline must be 'auto', 'numpy' or 'torch', got {pipeline!r}")
        if onnx:
            if str(device) not in ("auto", "cpu") or pipeline == "torch":
                raise ValueError(f"the ONNX Runtime back-end runs on the CPU with the numpy pipeline, not "
                                 f"device={device!r}, pipeline={pipeline!r}")
            self.device = torch.device("cpu") if torch is not None else "cpu"
            self.pipeline = "numpy"
            net.check_config(self.config)
            self.net = net
        else:
            from ..networks.models import prepare_for_inference

            self.device = resolve_device(device)
            self.pipeline = ("torch" if self.device.type == "cuda" else "numpy") if pipeline == "auto" else pipeline
            self.dtype = torch.float16 if (self.config.half and self.device.type == "cuda") else torch.float32
            self.net = prepare_for_inference(net).to(self.device, self.dtype).to(memory_format=torch.channels_last)
        self.name = name or f"siamfc-{net.arch}"
        self.stride = int(getattr(net, "stride", TOTAL_STRIDE))  # search-crop px per response cell
        # Calibrated networks' scores are their probability that the target is there (sigmoid of the
        # response); the others' are the peak relative to the first frame's.
        self.calibrated = bool(getattr(net, "calibrated_score", False))
        own_head = bool(getattr(net, "own_head", False))  # NanoTrack's: score and box branches of its own
        if own_head and not self.config.box_head:
            raise ValueError(f"box_head=False: {net.arch} gives its boxes from its own box head and has no scale "
                             "pyramid; use a network such as siamfc-effnet for the pyramid's options")
        # Crops to boxes in one network call, where the network offers it (NanoTrack's; ONNX: track.onnx).
        self._one_call = self.uses_box_head and bool(getattr(net, "tracks_crops", False))
        n = self.config.scale_num
        self.scale_factors = self.config.scale_factors
        self.penalties = np.where(np.arange(n) == n // 2, 1.0, self.config.scale_penalty)
        # The image pyramid on every scale_every-th frame; box heads search their one crop every frame.
        self.scale_every = 1 if self.uses_box_head else self.config.scale_every
        self._updates, self._scale_frame = 0, True  # frames since init; does this one search every scale
        self.upscale_sz = self.config.response_up * self.net.response_size(self.config.exemplar_sz, self.config.instance_sz)
        hann = np.outer(np.hanning(self.upscale_sz), np.hanning(self.upscale_sz))
        self.hann = (hann / hann.sum()).astype(np.float32)
        r = self.upscale_sz // self.config.response_up
        # Box heads and the whole-frame search: the response cell at the crop centre (the middle one, or for
        # NanoTrack's networks where its grid puts it), and the box heads' window over the cells, peaking there.
        self.centre_cell = float(net.centre_cell(r, self.config.instance_sz))
        self.cell_window = postprocess.cosine_window(r, self.centre_cell)
        if self.pipeline == "torch":
            self._hann_t = torch.from_numpy(self.hann).to(self.device)
            self._pen_t = torch.as_tensor(self.penalties, dtype=torch.float32, device=self.device).view(-1, 1, 1)
        self._frame_size: tuple[int, int] | None = None
        self.zf = None  # the target's correlation kernel (net.embed_exemplar), set by init()
        self.state = TRACKING
        self.search_score: float | None = None  # long_term: the best whole-frame peak's score of the last search

    def spawn(self) -> "SiamFCTracker":
        """A tracker for another target, not started (``init`` it): it shares this one's network (no copy
        of the weights), configuration, device and pipeline, and has its own state (box, kernel, scale)."""
        new = copy.copy(self)
        new._frame_size, new.zf, new.state = None, None, TRACKING
        return new

    @property
    def uses_box_head(self) -> bool:
        """Whether boxes come from the network's box head (else from the scale pyramid)."""
        return self.net.has_box_head and self.config.box_head

    def search_sizes(self) -> np.ndarray:
        """Sides (image px) of the search crops cut from this frame: one per scale of :attr:`scale_ids`."""
        return (self.x_sz * self.scale_factors)[self.scale_ids]

    @property
    def scale_ids(self) -> np.ndarray:
        """Which of :attr:`scale_factors` this frame's image pyramid searches: all of them, or with
        ``scale_every`` > 1, on the frames between, the current scale alone."""
        n = len(self.scale_factors)
        return np.arange(n) if self._scale_frame else np.array([n // 2])

    def _begin_frame(self) -> None:
        """Start a frame: count it, say whether it searches every scale (``scale_every``), and in long-term mode
        note the box it starts from (a lost frame keeps it)."""
        self._scale_frame = self._updates % self.scale_every == 0
        self._updates += 1
        if self.config.long_term:
            self._last_held = (self.center.copy(), self.target_sz.copy(), self.x_sz)

    def network(self, x: torch.Tensor | np.ndarray) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray | None]:
        """The network's part of a frame on the crops of :meth:`search_sizes`, in this tracker's mode:
        responses (S, 1, R, R) and, where boxes come from the box head, its edge distances."""
        return self._respond(self.net.embed(x))

    def _respond(self, xf: torch.Tensor | np.ndarray) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray | None]:
        """:meth:`network` after the backbone: the head on search features ``xf`` with this target's kernel."""
        return self._respond_with(xf, self.zf)

    def _respond_with(self, xf, zf) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray | None]:
        """:meth:`_respond` with kernels ``zf``: this target's, or several targets' (torch; see ``net.respond``)."""
        if self.uses_box_head:
            return self.net.respond(xf, zf, boxes=True)
        return self.net.respond(xf, zf)

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, device: str | torch.device = "auto",
                        config: TrackerConfig | dict | None = None, backend: str = "auto",
                        threads: int | None = None, preset: str | None = None, **kwargs) -> "SiamFCTracker":
        """Load shipped or user weights by name or path (default: :data:`tracker.networks.weights.DEFAULT`).
        Tracking parameters: the paper's defaults, then those stored with the weights, then ``config``
        (a :class:`TrackerConfig` replaces, a dict overrides); crop sizes left unset are the network's.
        A folder made by ``siamtrack export`` is loaded with :meth:`from_onnx`.
        ``backend="auto"`` (the default, as in the demos) takes the export shipped beside the weights when the
        run is on the CPU, onnxruntime is installed and that export serves ``config`` (the same boxes, 1.2-1.5x
        faster), and PyTorch otherwise; ``backend="torch"`` always PyTorch. ``backend="onnxruntime"`` runs the
        network with ONNX Runtime on the CPU (``threads``: its intra-op threads; None: its default): from the
        export shipped beside the weights (``<name>-onnx/``) when it was made from this very file and serves
        ``config``, else exported in memory
        (:func:`tracker.backends.export.export_model`, ~10 s). Without torch installed, only exports can run: the
        shipped export of a name is then used whatever ``backend`` says. ``preset``: a named set of overrides
        the weights' ``.json`` lists (``nanotrack-v2``: ``"fast"``), applied before ``config``."""
        from ..backends.loading import from_pretrained

        return from_pretrained(cls, name_or_path, device, config, backend, threads, preset, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | os.PathLike, config: dict | None = None, threads: int | None = None,
                  device: str = "cpu", **kwargs) -> "SiamFCTracker":
        """Track with an exported model folder (``siamtrack export``) on ONNX Runtime, CPU (``device``
        "auto" or "cpu"). Tracking parameters: those in its ``model.json``, then ``config`` overrides (crop
        sizes are fixed by the export, but for the NanoTrack networks' search size). ``threads``: ONNX Runtime's
        intra-op threads."""
        from ..backends.loading import from_onnx

        return from_onnx(cls, path, config, threads, device, **kwargs)

    # -- the frame loop -------------------------------------------------------------------

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        """Start tracking the object in ``box`` = ``(x, y, w, h)`` (0-based px) of ``frame``."""
        frame = as_bgr_frame(frame)
        h_img, w_img = frame.shape[:2]
        x, y, w, h = as_box(box, (w_img, h_img))
        cfg = self.config
        self._frame_size = (w_img, h_img)
        self.center = np.array([x + w / 2, y + h / 2])
        self.target_sz = np.array([w, h])
        self.init_sz = self.target_sz.copy()
        z_sz = ops.context_size(w, h, cfg.context)
        self.x_sz = z_sz * cfg.instance_sz / cfg.exemplar_sz
        self.init_x_sz = self.x_sz
        self._updates, self._scale_frame = 0, True
        self.state, self._lost_run, self._search_turn = TRACKING, 0, 0
        self._last_held = None
        self.avg_color = np.array(cv2.mean(frame)[:3])
        with self._inference():
            img = None
            if self.pipeline == "torch":
                img = self._to_device(frame)
                self._avg_t = torch.as_tensor(self.avg_color, dtype=torch.float32, device=self.device)
            self.zf = self.net.embed_exemplar(self._crops(frame, img, [z_sz], cfg.exemplar_sz))  # this target's kernel
            # Reference peak for the score: the exemplar against its own frame.
            xf = self.net.embed(self._crops(frame, img, [self.x_sz], cfg.instance_sz))
            self.size_bias = np.ones(2)
            if self.uses_box_head:
                resp, edges = self.net.respond(xf, self.zf, boxes=True)
                if cfg.size_bias:
                    self.size_bias = postprocess.size_bias(_host(edges)[0], self.target_sz * cfg.instance_sz / self.x_sz)
            else:
                resp = self.net.respond(xf, self.zf)[0]
            ref = float(resp.max())
            self.psr_ref = max(postprocess.psr(_host(resp)[0, 0]), 1e-6) if cfg.psr_score else 1.0
        self.ref_peak = max(ref, 1e-6)

    def update(self, frame: np.ndarray) -> TrackResult:
        """Locate the target in the next frame; returns its box and a confidence score."""
        frame = self._check_frame(frame, "SiamFCTracker.update")
        self._begin_frame()
        with self._inference():
            img = self._to_device(frame) if self.pipeline == "torch" else None
            crops = self._crops(frame, img, self.search_sizes(), self.config.instance_sz)
            if self._one_call:
                return self._step(frame, img, None, head=self.net.respond_crops(crops, self.zf))
            return self._step(frame, img, self.net.embed(crops))

    def _check_frame(self, frame: np.ndarray, caller: str) -> np.ndarray:
        """``frame`` validated as a BGR image of the size tracking started on."""
        if self._frame_size is None:
            raise RuntimeError(f"{caller} called before init()")
        frame = as_bgr_frame(frame)
        size = (frame.shape[1], frame.shape[0])
        if size != self._frame_size:
            raise ValueError(f"frame: size changed from {self._frame_size[0]}x{self._frame_size[1]} "
                             f"to {size[0]}x{size[1]} mid-stream; call init() again for a new stream")
        return frame

    def _step(self, frame: np.ndarray, img: torch.Tensor | None, xf: torch.Tensor | np.ndarray | None,
              head: tuple | None = None) -> TrackResult:
        """The rest of :meth:`update` once the backbone has embedded this frame's search crops (``xf``,
        those of :meth:`search_sizes`): head, peak, box update, template update. Runs inside
        :meth:`_inference`; ``img`` is the frame on the device (torch pipeline) or None;
        ``head``: the head's outputs (responses, edges) where the network gave them from the crops directly."""
        cfg = self.config
        resp, edges = head if head is not None else self._respond(xf)
        if self.uses_box_head:
            # A few KB to the host, on CUDA too: one post-processing for both pipelines.
            choice = postprocess.find_box(_host(resp)[:, 0], _host(edges),
                                          self.x_sz * self.scale_factors / cfg.instance_sz, self.target_sz,
                                          self.cell_window, cfg.window_influence, cfg.penalty_k, self.stride,
                                          self.size_bias, self.centre_cell)
            self._move_box(choice)
            return self._after(frame, img, choice.logit * self._sharpness(resp[0, 0]))
        if self.pipeline == "torch":
            scale_id, row, col, peak, sharp = self._peaks_device(resp)[0]
            peak *= self._sharpness(sharp)
        else:
            resp = _host(resp)[:, 0]
            scale_id, row, col, peak = self._peak_host(resp)
            peak *= self._sharpness(resp[scale_id])
        self._move(int(scale_id), row, col)
        return self._after(frame, img, peak)

    def _peaks_device(self, resp: torch.Tensor) -> np.ndarray:
        """Device-side peaks of responses (B * S, 1, R, R), B targets of this configuration: (B, 5) rows of
        scale index, row, col, raw peak and its peak-to-sidelobe ratio (:func:`postprocess.find_peaks_torch`)."""
        n, r = len(self.scale_factors), resp.shape[-1]
        pen = self._pen_t if self._scale_frame else self._pen_t[n // 2:n // 2 + 1]
        return postprocess.find_peaks_torch(resp.reshape(-1, len(pen), r, r).float(), self.upscale_sz, pen,
                                            self._hann_t, self.config.window_influence)

    def _peak_host(self, resp: np.ndarray) -> tuple[int, float, float, float]:
        """Host-side peak of responses ``resp`` (S, R, R) (OpenCV's bicubic upsampling): scale index, row, col
        and the chosen scale's raw peak."""
        up = np.stack([cv2.resize(r, (self.upscale_sz, self.upscale_sz), interpolation=cv2.INTER_CUBIC)
                       for r in resp])
        pen = self.penalties if self._scale_frame else self.penalties[self.scale_ids]
        scale_id, row, col = postprocess.find_peak(up, pen, self.hann, self.config.window_influence)
        return scale_id, row, col, float(resp[scale_id].max())

    def _sharpness(self, psr) -> float:
        """What the raw peak is multiplied by for the score: with ``psr_score``, the chosen scale's
        peak-to-sidelobe ratio relative to the first frame's (a flat or many-peaked map lowers it); else 1.
        ``psr``: that ratio (the device computes it with the peaks) or the raw response map (R, R) to take it from."""
        if not self.config.psr_score:
            return 1.0
        return (float(psr) if np.ndim(psr) == 0 else postprocess.psr(_host(psr))) / self.psr_ref

    def _after(self, frame: np.ndarray, img: torch.Tensor | None, peak: float) -> TrackResult:
        """A step's end once the box has moved: score and ``lost`` from the raw ``peak``; the template update
        on frames where the target is held; the long-term states."""
        cfg = self.config
        score = self._score_of(peak)
        # Long term: once lost, the target is held again only at redetect_threshold (hysteresis), and until then
        # the box stays where it was last held rather than following whatever the local search found.
        lost = score < (cfg.redetect_threshold if cfg.long_term and self._lost_run else cfg.lost_threshold)
        if cfg.long_term and lost:
            self.center, self.target_sz, self.x_sz = self._last_held
        if cfg.template_lr > 0 and not lost:
            z_sz = self.x_sz * cfg.exemplar_sz / cfg.instance_sz
            new = self.net.embed_exemplar(self._crops(frame, img, [z_sz], cfg.exemplar_sz))
            self.zf = torch.lerp(self.zf, new, cfg.template_lr) if torch is not None and torch.is_tensor(new) \
                else self.zf + np.float32(cfg.template_lr) * (new - self.zf)
        if not cfg.long_term:
            return TrackResult(self.box, score, lost)
        r = self._long_term(score, lost)
        return self._search_frame(frame, img, r) if self.state == SEARCHING else r

    def score_at(self, frame: np.ndarray, box: Sequence[float]) -> float:
        """How well ``box`` (x, y, w, h) of ``frame`` matches the target, as :attr:`TrackResult.score` measures
        it (without ``psr_score``'s sharpness factor): the best response within one cell of the centre of a
        search crop (the current one's size) centred on the box. Changes no state (one more backbone pass)."""
        frame = self._check_frame(frame, "SiamFCTracker.score_at")
        x, y, w, h = box
        with self._inference():
            img = self._to_device(frame) if self.pipeline == "torch" else None
            return self._score_around(frame, img, np.array([x + w / 2, y + h / 2]))

    def _score_around(self, frame: np.ndarray, img: torch.Tensor | None, centre: np.ndarray) -> float:
        """:meth:`score_at` for a box centred at ``centre`` (x, y, image px), inside :meth:`_inference`."""
        crop = self._cut(frame, img, [self._plan([self.x_sz], centre)], self.config.instance_sz)
        resp = _host(self.net.respond(self.net.embed(crop), self.zf)[0])[0, 0]
        lo, hi = max(int(np.floor(self.centre_cell - 1)), 0), int(np.ceil(self.centre_cell + 1)) + 1
        return self._score_of(float(resp[lo:hi, lo:hi].max()))

    def relocate(self, box: Sequence[float]) -> None:
        """Move the target's estimate to ``box`` (x, y, w, h), keeping the exemplar: its centre, and its size as
        far as this tracker's sizing allows (box heads: width and height; the scale pyramid: the scale, the
        initial aspect ratio kept)."""
        x, y, w, h = (float(v) for v in box)
        w_img, h_img = self._frame_size
        self.center = np.clip(np.array([x + w / 2, y + h / 2]), [0, 0], [w_img, h_img])
        self.state, self._lost_run = TRACKING, 0  # placed on the target: not searching
        if self.uses_box_head:
            self._set_size(np.array([w, h]))
            return
        cfg = self.config
        lo = max(cfg.min_scale, 2.0 / min(self.init_sz))
        rel = float(np.clip(np.sqrt(w * h / np.prod(self.init_sz)), lo, cfg.max_scale))
        self.target_sz = self.init_sz * rel
        self.x_sz = self.init_x_sz * rel

    def _score_of(self, peak: float) -> float:
        """A raw response ``peak`` as :attr:`TrackResult.score` in [0, 1]: the probability ``sigmoid(peak)`` for a
        calibrated network, else the peak relative to the first frame's, clipped."""
        if self.calibrated:
            return float(1.0 / (1.0 + np.exp(-np.clip(peak, -50.0, 50.0))))
        return float(np.clip(peak / self.ref_peak, 0.0, 1.0))

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Current estimate ``(x, y, w, h)``, 0-based pixels."""
        x, y = self.center - self.target_sz / 2
        return float(x), float(y), float(self.target_sz[0]), float(self.target_sz[1])

    # -- helpers --------------------------------------------------------------------------

    def _move(self, scale_id: int, row: float, col: float) -> None:
        """Box centre to the peak (``row``, ``col`` in the upsampled response of this frame's scale
        ``scale_id``), size towards the chosen scale. The search of scale ``scale_id`` was centred on the box
        with side ``x_sz * scale_factors[scale_ids[scale_id]]``; on a frame that searches the current scale
        alone (``scale_every``) the size stays."""
        cfg = self.config
        centre, side = self.center, self.scale_factors[self.scale_ids[scale_id]]
        factor = side if self._scale_frame else 1.0  # the current scale alone (scale_every): the size stays
        disp = np.array([col, row]) - (self.upscale_sz - 1) / 2  # in upsampled response px
        disp = disp * self.stride / cfg.response_up  # in search-crop px
        disp = disp * self.x_sz * side / cfg.instance_sz  # in image px
        w_img, h_img = self._frame_size
        self.center = np.clip(centre + disp, [0, 0], [w_img, h_img])
        # scale_lr is a rate per frame: with scale_every N, a scale frame moves the size as far as N frames would.
        lr = cfg.scale_lr if self.scale_every == 1 else 1 - (1 - cfg.scale_lr) ** self.scale_every
        scale = (1 - lr) + lr * factor
        # Keep the box between min_scale and max_scale of its initial size, and at least 2 px.
        lo = max(cfg.min_scale, 2.0 / min(self.init_sz))
        rel = np.clip(self.target_sz[0] * scale / self.init_sz[0], lo, cfg.max_scale)
        self.target_sz = self.init_sz * rel
        self.x_sz = self.init_x_sz * rel

    def _set_size(self, size: np.ndarray) -> None:
        """Box ``(w, h)`` (image px), kept between min_scale and max_scale of the initial size and at
        least 2 px, and the search region that goes with it."""
        cfg = self.config
        self.target_sz = np.clip(size, np.maximum(cfg.min_scale * self.init_sz, 2.0), cfg.max_scale * self.init_sz)
        self.x_sz = ops.context_size(*self.target_sz, cfg.context) * cfg.instance_sz / cfg.exemplar_sz

    def _move_box(self, c: postprocess.BoxChoice) -> None:
        """Box-head update: the centre moves to the chosen proposal's, the size towards its size by
        ``scale_lr`` times its penalised score."""
        cfg = self.config
        w_img, h_img = self._frame_size
        self.center = np.clip(self.center + np.array([c.dx, c.dy]), [0, 0], [w_img, h_img])
        lr = cfg.scale_lr * c.weight
        self._set_size((1 - lr) * self.target_sz + lr * np.array([c.w, c.h]))

    def _crops(self, frame: np.ndarray, img: torch.Tensor | None, sizes, out_sz: int) -> torch.Tensor | np.ndarray:
        """Square crops of ``sizes`` (image px) around the current centre, ready for the network:
        (len(sizes), 3, out_sz, out_sz) float, channels-last (see :meth:`_cut`)."""
        return self._cut(frame, img, [self._plan(sizes)], out_sz)

    def _plan(self, sizes, center=None) -> tuple:
        """What :meth:`_cut` needs to crop ``sizes`` around ``center`` (default: the target's) for this target."""
        return (self.center if center is None else center, sizes, self.avg_color, getattr(self, "_avg_t", None))

    def _cut(self, frame: np.ndarray, img: torch.Tensor | None, plans: Sequence[tuple], out_sz: int) -> torch.Tensor | np.ndarray:
        """One batch of crops, for one or more targets of this network: for each plan (:meth:`_plan`:
        centre, sizes, mean colour, the same on the device), squares of those sizes (image px) around that
        centre, padded with that colour, in order: (N, 3, out_sz, out_sz) float, channels-last. Cut on the
        device from ``img`` in one ``grid_sample`` (torch pipeline) or by OpenCV from ``frame``; for ONNX
        Runtime a contiguous NCHW float32 numpy array."""
        if self.pipeline == "torch":
            crops = [(c, s, p) for c, sizes, _, p in plans for s in sizes]
            x = ops.crop_torch_many(img, [c for c, _, _ in crops], [s for _, s, _ in crops], out_sz,
                                    torch.stack([p for _, _, p in crops]))
        else:
            return self._as_input(np.concatenate([ops.crop_multi(frame, c, sizes, out_sz, avg)
                                                  for c, sizes, avg, _ in plans]))
        return self._as_input(x)

    def _as_input(self, crops: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Crops as the network takes them: ``crops`` (N, H, W, 3) ``uint8`` from OpenCV, or (N, 3, H, W) float
        on the device; for ONNX Runtime a contiguous NCHW float32 numpy array, for torch channels-last."""
        if isinstance(crops, np.ndarray):
            if self.backend == "onnxruntime":  # numpy end to end: no torch kernels (nor their threads) per frame
                return cv2.dnn.blobFromImages(list(crops))  # NHWC uint8 -> NCHW float32, one C++ pass
            # (N, H, W, 3) uint8 -> (N, 3, H, W): a permuted view, already channels-last in memory.
            crops = torch.from_numpy(crops).permute(0, 3, 1, 2)
        return crops.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)

    def _inference(self) -> contextlib.AbstractContextManager:
        """torch's inference mode around a frame's work, where torch runs it."""
        return torch.inference_mode() if self.backend == "torch" else contextlib.nullcontext()

    def _to_device(self, frame: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frame).to(self.device, non_blocking=True).permute(2, 0, 1).float()
