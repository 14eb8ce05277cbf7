"""The Siamese network: a shared backbone, a cross-correlation head and an optional box head.

Backbones are chosen by name from :data:`ARCHITECTURES`. All have total stride 8, and each
declares the crop sizes its geometry is built for (``exemplar_sz``, ``instance_sz``), the
scale of its cross-correlation (``out_scale``) and how the exemplar's map becomes the
correlation kernel (``exemplar``):

* ``alexnet`` and ``lite`` are unpadded: a 127 px exemplar gives a 6x6 embedding, a 255 px
  search region a 22x22 one, and their correlation a 17x17 response.
* ``effnet-lite0`` (:mod:`tracker.networks.effnet`) is ImageNet-pretrained and padded: 129 px -> 17x17,
  cut to its central 7x7; 257 px -> 33x33; a 27x27 response.

Inputs are float tensors ``(N, 3, H, W)`` holding BGR pixel values in [0, 255].

The optional :class:`BoxHead` (anchor-free, as in SiamFC++) predicts, at each response position,
the distances from that position to the target's left, top, right and bottom edges in search-crop
pixels, so the tracker reads the box's size and aspect at the
peak instead of searching over scales.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.ops import TOTAL_STRIDE
from .effnet import EffNetLite0Backbone, EffNetLite0S2Backbone
from .nanotrack import FusedNanoTrackNet, NanoTrackNet
from .nanotrack_v2 import NanoTrackV2Net

__all__ = ["AlexNet", "LiteNet", "BoxHead", "SiamNet", "xcorr", "xcorr_gather", "correlation_index", "xcorr_depthwise", "build_model", "ARCHITECTURES",
           "prepare_for_inference", "fold_batchnorm", "response_positions", "TOTAL_STRIDE", "NETWORKS",
           "known_architectures"]



def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class _Unpadded(nn.Module):
    """SiamFC's geometry: unpadded convolutions, 127/255 px crops, the whole exemplar map as kernel."""

    exemplar_sz = 127
    instance_sz = 255
    out_scale = 0.001

    def exemplar(self, zf: torch.Tensor) -> torch.Tensor:
        return zf


class AlexNet(_Unpadded):
    """SiamFC's AlexNet with BatchNorm (conv 11/5/3/3/3, two channel groups in conv2/4/5)."""

    out_channels = 256

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(3, 96, 11, 2),
            nn.MaxPool2d(3, 2),
            *_conv_bn_relu(96, 256, 5, groups=2),
            nn.MaxPool2d(3, 2),
            *_conv_bn_relu(256, 384, 3),
            *_conv_bn_relu(384, 384, 3, groups=2),
            nn.Conv2d(384, 256, 3, groups=2),  # no BN / ReLU after the last conv
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _dw_pw(cin: int, cout: int, stride: int = 1, last: bool = False) -> list[nn.Module]:
    """Depthwise 3x3 then pointwise 1x1 (MobileNet block, unpadded)."""
    layers: list[nn.Module] = [*_conv_bn_relu(cin, cin, 3, stride, groups=cin)]
    if last:
        layers.append(nn.Conv2d(cin, cout, 1))
    else:
        layers += _conv_bn_relu(cin, cout, 1)
    return layers


class LiteNet(_Unpadded):
    """The CPU-fast backbone: a dense 3x3 stem, then depthwise/pointwise blocks.

    Unpadded like AlexNet: 127 -> 6 and 255 -> 22, total stride 8, about 1/40 of
    AlexNet's multiply-adds per search region.
    """

    out_channels = 128

    def __init__(self, width: tuple[int, ...] = (24, 48, 96, 128)) -> None:
        super().__init__()
        c1, c2, c3, c4 = width
        self.features = nn.Sequential(
            *_conv_bn_relu(3, c1, 3, 2),  # 127 -> 63
            *_dw_pw(c1, c2, 2),  # -> 31
            *_dw_pw(c2, c2),  # -> 29
            *_dw_pw(c2, c3, 2),  # -> 14
            *_dw_pw(c3, c3),  # -> 12
            *_dw_pw(c3, c4),  # -> 10
            *_dw_pw(c4, c4),  # -> 8
            *_dw_pw(c4, self.out_channels, last=True),  # -> 6
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


ARCHITECTURES: dict[str, type[nn.Module]] = {"alexnet": AlexNet, "lite": LiteNet, "effnet-lite0": EffNetLite0Backbone,
                                             "effnet-lite0-s2": EffNetLite0S2Backbone}
# Whole networks with heads of their own (not a backbone under SiamNet's head), by name.
NETWORKS: dict[str, type[nn.Module]] = {"nanotrack-v3": NanoTrackNet, "nanotrack-v2": NanoTrackV2Net}


def known_architectures() -> list[str]:
    """Every name :func:`build_model` takes: SiamNet backbones, then whole networks."""
    return [*ARCHITECTURES, *NETWORKS]


def xcorr(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-correlate exemplar embeddings ``z`` (B, C, h, w) with search embeddings ``x``.

    ``x`` is (B * k, C, H, W): the first k search maps go with exemplar 0, the next k
    with exemplar 1, and so on (k scales per exemplar). One grouped convolution scores
    them all; returns (B * k, 1, H - h + 1, W - w + 1).
    """
    b, c, h, w = z.shape
    n = x.shape[0]
    if n % b:
        raise ValueError(f"xcorr: search batch {n} is not a multiple of exemplar batch {b}")
    k = n // b
    if b == 1:
        return F.conv2d(x, z)
    # Group g holds exemplar g's kernel and its k search maps stacked along channels.
    xs = x.reshape(b, k, c, x.shape[-2], x.shape[-1]).transpose(0, 1).reshape(k, b * c, x.shape[-2], x.shape[-1])
    out = F.conv2d(xs, z, groups=b)  # (k, b, H', W')
    return out.transpose(0, 1).reshape(n, 1, out.shape[-2], out.shape[-1])


def xcorr_depthwise(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel correlation of ``z`` (B, C, h, w) with ``x`` (B * k, C, H, W), same
    pairing as :func:`xcorr`; returns (B * k, C, H - h + 1, W - w + 1)."""
    b, c, h, w = z.shape
    n = x.shape[0]
    if n % b:
        raise ValueError(f"xcorr_depthwise: search batch {n} is not a multiple of exemplar batch {b}")
    k = n // b
    xs = x.reshape(b, k, c, x.shape[-2], x.shape[-1]).transpose(0, 1).reshape(k, b * c, x.shape[-2], x.shape[-1])
    out = F.conv2d(xs, z.reshape(b * c, 1, h, w), groups=b * c)  # (k, b*c, H', W')
    return out.reshape(k, b, c, out.shape[-2], out.shape[-1]).transpose(0, 1).reshape(n, c, out.shape[-2], out.shape[-1])


def correlation_index(k: int, h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Gather index of :func:`xcorr_gather` for a k x k kernel over h x w features: for kernel cell
    (dy, dx) and response cell (y, x), the flat position of ``(dy * k + dx, y + dy, x + dx)``."""
    rows, cols = h - k + 1, w - k + 1
    dy, dx, y, x = torch.meshgrid(torch.arange(k), torch.arange(k), torch.arange(rows), torch.arange(cols), indexing="ij")
    return ((dy * k + dx) * h * w + (y + dy) * w + (x + dx)).reshape(-1).to(device)


def xcorr_gather(z: torch.Tensor, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """:func:`xcorr` for exemplars ``z`` (B, C, k, k) and search maps ``x`` (N, C, H, W), paired as
    :func:`xcorr` pairs them, written as a matrix product and a gather (``index`` from
    :func:`correlation_index`): ``Z^T X`` holds every kernel cell's dot product with every feature position,
    and each response cell sums its k*k entries. Same result to float rounding; for one exemplar and
    3 x 64 x 25 x 25 features, a 7 x 7 kernel, on 2 CPU cores it took 0.21 ms in PyTorch against the
    convolution's 0.91, and 0.42 ms in ONNX Runtime against 0.84 (a convolution whose weights are a graph
    input cannot be pre-packed); (N, 1, H-k+1, W-k+1)."""
    n, c, h, w = x.shape
    b, k = z.shape[0], z.shape[-1]
    if b == 1:
        y = torch.matmul(z.reshape(c, k * k).t(), x.reshape(n, c, h * w)).reshape(n, -1)
        return torch.index_select(y, 1, index).reshape(n, k * k, h - k + 1, w - k + 1).sum(1, keepdim=True)
    if n % b:
        raise ValueError(f"xcorr_gather: search batch {n} is not a multiple of exemplar batch {b}")
    return xcorr_gather_many(z, x, index)


def xcorr_gather_many(z: torch.Tensor, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """:func:`xcorr_gather` for B exemplars, each with its N / B consecutive search maps, with no checks on
    the shapes (the ONNX export traces it with the batch sizes symbolic); (N, 1, H-k+1, W-k+1)."""
    n, c, h, w = x.shape
    b, k = z.shape[0], z.shape[-1]
    zt = z.reshape(b, 1, c, k * k).transpose(2, 3)  # (B, 1, k*k, C): each exemplar with its n/B maps
    y = torch.matmul(zt, x.reshape(b, -1, c, h * w)).reshape(n, -1)
    return torch.index_select(y, 1, index).reshape(n, k * k, h - k + 1, w - k + 1).sum(1, keepdim=True)


def response_positions(size: int, instance_sz: int = 255, device: torch.device | str = "cpu") -> torch.Tensor:
    """Search-crop coordinates (px, continuous) of the response cells' centres: (2, size, size) as (x, y).

    The centre cell sits at the crop centre; neighbours are :data:`TOTAL_STRIDE` px apart."""
    r = (torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2) * TOTAL_STRIDE + instance_sz / 2
    ys, xs = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([xs, ys])


class BoxHead(nn.Module):
    """Anchor-free box regression on depthwise-correlated features.

    Output (N, 4, S, S) (S: the response size): distances (left, top, right, bottom) in search-crop px from each
    response cell's centre to the target's edges, ``base * exp(.)`` so they stay positive.
    """

    def __init__(self, in_channels: int, hidden: int = 64, base: float = 32.0) -> None:
        super().__init__()
        self.base = base
        self.adjust_z = nn.Conv2d(in_channels, hidden, 1)
        self.adjust_x = nn.Conv2d(in_channels, hidden, 1)
        self.features = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 4, 1),
        )

    def kernel(self, zf: torch.Tensor) -> torch.Tensor:
        """The exemplar's correlation kernel (cached by :meth:`SiamNet.template`)."""
        return self.adjust_z(zf)

    def forward(self, zk: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        out = self.features(xcorr_depthwise(zk, self.adjust_x(xf)))
        return self.base * torch.exp(out.clamp(max=6.0))


class SiamNet(nn.Module):
    """Backbone + cross-correlation head (response scaled by the backbone's ``out_scale`` plus a
    learnable bias), and optionally a :class:`BoxHead`.

    ``template(z)`` embeds and caches the exemplar once; ``track(x)`` scores search
    regions (one per scale) against the cached exemplar, ``track_boxes(x)`` also returns
    the box head's edge distances. ``forward(z, x)`` / ``forward_boxes(z, x)`` are the
    training paths for a batch of pairs.
    """

    stride = TOTAL_STRIDE  # search-crop px per response cell
    calibrated_score = False  # the response is a raw similarity: scores are relative to the first frame's peak

    @staticmethod
    def centre_cell(size: int, instance_sz: int) -> float:
        """Index of the response cell at the centre of the search crop, on each axis (symmetric: ``(size - 1) / 2``
        for a response of side ``size``, whatever the crop size)."""
        return (size - 1) / 2

    def __init__(self, backbone: nn.Module, arch: str, box_head: BoxHead | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.arch = arch
        self.out_scale = backbone.out_scale
        self.bias = nn.Parameter(torch.zeros(1))
        self.box_head = box_head
        self._zf: torch.Tensor | None = None
        self._corr_index: tuple | None = None  # (key, gather index) of the cached exemplar's correlation

    @property
    def has_box_head(self) -> bool:
        return self.box_head is not None

    @property
    def exemplar_sz(self) -> int:
        """Exemplar crop size (px) the backbone's geometry is built for."""
        return self.backbone.exemplar_sz

    @property
    def instance_sz(self) -> int:
        """Search crop size (px) the backbone's geometry is built for."""
        return self.backbone.instance_sz

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def embed_exemplar(self, z: torch.Tensor) -> torch.Tensor:
        """The correlation kernel of exemplar crops: their embedding, cut as the backbone says."""
        return self.backbone.exemplar(self.backbone(z))

    def response_size(self, exemplar_sz: int, instance_sz: int) -> int:
        """Side of the response map for square crops of these sizes (px)."""
        with torch.no_grad():
            p = next(self.parameters())
            zf = self.embed_exemplar(torch.zeros(1, 3, exemplar_sz, exemplar_sz, device=p.device, dtype=p.dtype))
            xf = self.embed(torch.zeros(1, 3, instance_sz, instance_sz, device=p.device, dtype=p.dtype))
        return xf.shape[-1] - zf.shape[-1] + 1

    def head(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return xcorr(zf, xf) * self.out_scale + self.bias

    def _score(self, xf: torch.Tensor, zf: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`head` of the cached exemplar (or of kernel ``zf``) on search maps ``xf``, as :func:`xcorr_gather`."""
        zf = self._zf if zf is None else zf
        key = (zf.shape[-1], tuple(xf.shape[-2:]), xf.device)  # the index does not depend on the batch
        if self._corr_index is None or self._corr_index[0] != key:  # the same every frame: build it once
            self._corr_index = (key, correlation_index(zf.shape[-1], *xf.shape[-2:], device=xf.device))
        return xcorr_gather(zf, xf, self._corr_index[1]) * self.out_scale + self.bias

    def score(self, xf: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        """Responses (S, 1, R, R) of another kernel ``zf`` (1, C, k, k) (:meth:`embed_exemplar`) on search
        features ``xf`` (:meth:`track_features`), as the ONNX export's head graph computes them."""
        return self._score(xf, zf)

    def _cache(self, zf: torch.Tensor) -> torch.Tensor:
        self._zf = zf
        return zf

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """Embed the exemplar crop (1, 3, exemplar_sz, exemplar_sz) and cache its kernel for :meth:`track`."""
        return self._cache(self.embed_exemplar(z))

    def update_template(self, z: torch.Tensor, rate: float) -> torch.Tensor:
        """Blend a new exemplar crop into the cached kernel: ``(1 - rate) * old + rate * new``."""
        if self._zf is None:
            raise RuntimeError("SiamNet.update_template called before template()")
        return self._cache(torch.lerp(self._zf, self.embed_exemplar(z), rate))

    def _cached(self, what: str) -> torch.Tensor:
        if self._zf is None:
            raise RuntimeError(f"SiamNet.{what} called before template()")
        return self._zf

    def respond(self, xf: torch.Tensor, zf: torch.Tensor, boxes: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's part of a frame, for kernel ``zf`` (1, C, k, k) (:meth:`embed_exemplar`) on search
        features ``xf`` (S, C, H, W) (:meth:`embed`): responses (S, 1, R, R) and, with ``boxes`` (needs a box
        head), the box head's edge distances (S, 4, R, R), crop px. The kernel is an argument, not state, so
        one network serves many targets; B targets at once: kernels (B, C, k, k) with B * S search maps
        (target 0's S first), outputs in the same order."""
        if boxes and self.box_head is None:
            raise RuntimeError(f"SiamNet: this {self.arch} network has no box head")
        edges = self.box_head(self.box_head.kernel(zf), xf) if boxes else None
        return self._score(xf, zf), edges

    def track(self, x: torch.Tensor) -> torch.Tensor:
        """Response maps (S, 1, R, R) of S search crops (S, 3, instance_sz, instance_sz) against the cached exemplar."""
        return self.track_features(x)[0]

    def track_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`track`'s responses (S, 1, R, R) and the search crops' features (S, C, H, W) they came from."""
        zf = self._cached("track")
        xf = self.embed(x)
        return self.respond(xf, zf)[0], xf

    def track_boxes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Responses (S, 1, R, R) and edge distances (S, 4, R, R), crop px (needs a box head)."""
        zf = self._cached("track_boxes")
        if self.box_head is None:
            raise RuntimeError(f"SiamNet.track_boxes: this {self.arch} network has no box head")
        return self.respond(self.embed(x), zf, boxes=True)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Training path: responses (B, 1, R, R) of B exemplar/search pairs."""
        return self.head(self.embed_exemplar(z), self.embed(x))

    def forward_boxes(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path with the box head: responses (B, 1, R, R) and edge distances (B, 4, R, R)."""
        if self.box_head is None:
            raise RuntimeError(f"SiamNet.forward_boxes: this {self.arch} network has no box head")
        zf, xf = self.embed_exemplar(z), self.embed(x)
        return self.head(zf, xf), self.box_head(self.box_head.kernel(zf), xf)


def build_model(arch: str, box_head: bool = False) -> SiamNet | NanoTrackNet:
    """A freshly initialised :class:`SiamNet` with the named backbone (a key of :data:`ARCHITECTURES`),
    with a :class:`BoxHead` when ``box_head``; or a whole network of :data:`NETWORKS` (their own heads, so
    ``box_head`` is ignored). Pretrained backbones start random here too: training
    loads their ImageNet weights (:func:`tracker.networks.effnet.load_imagenet`), tracking loads a whole
    trained network."""
    if arch in NETWORKS:
        return NETWORKS[arch](arch)
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(known_architectures())}")
    backbone = ARCHITECTURES[arch]()
    head = BoxHead(backbone.out_channels, hidden=getattr(backbone, "box_hidden", 64)) if box_head else None
    net = SiamNet(backbone, arch, box_head=head)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if hasattr(backbone, "init_neck"):
        backbone.init_neck()
    if net.box_head is not None:  # start near base-sized boxes around every cell
        nn.init.normal_(net.box_head.features[-1].weight, std=0.01)
    return net


def _fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
    b = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.data = (b - bn.running_mean) * scale + bn.bias
    return fused


def _fold(seq: nn.Sequential) -> nn.Sequential:
    """``seq`` with each Conv2d + BatchNorm2d pair fused, nested Sequentials included."""
    layers = list(seq)
    out: list[nn.Module] = []
    i = 0
    while i < len(layers):
        if isinstance(layers[i], nn.Conv2d) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d):
            out.append(_fuse_conv_bn(layers[i], layers[i + 1]))
            i += 2
        else:
            _fold_children(layers[i])
            out.append(layers[i])
            i += 1
    return nn.Sequential(*out)


def _fold_children(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            setattr(module, name, _fold(child))
        else:
            _fold_children(child)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-mode, gradient-free copy of ``module`` with every BatchNorm folded into the conv before it."""
    module = copy.deepcopy(module).eval()
    if isinstance(module, nn.Sequential):
        module = _fold(module)
    else:
        _fold_children(module)
    return module.requires_grad_(False)


def prepare_for_inference(net: SiamNet | NanoTrackNet) -> SiamNet | FusedNanoTrackNet:
    """An eval-mode copy with every BatchNorm folded into the conv before it (same outputs, fewer ops); a
    network with an inference form of its own (``for_inference``) in that form."""
    net = copy.deepcopy(net).eval()
    _fold_children(net)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.for_inference() if hasattr(net, "for_inference") else net
