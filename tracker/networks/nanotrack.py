"""NanoTrack v3's network, written from its published state_dict and ONNX graphs.

NanoTrack (HonglinChu/SiamTrackers, Apache-2.0) is a Siamese tracker after SiamBAN and LightTrack:

* **trunk**: a MobileNetV3-small-style network (total stride 16; its last block keeps stride 1), shared by
  the 127 px exemplar (-> 8x8) and the 255 px search crop (-> 16x16);
* **neck**: a 1x1 convolution with BatchNorm (96 channels), in the state_dict but not in the released
  graphs' path from trunk to head: loaded (so the load is strict) and not run;
* **head**: two branches (score and box), each fusing a *pointwise* correlation (every exemplar cell's
  feature vector dotted with every search cell's: 64 maps, reweighted by channel attention, then a 2x2
  depthwise conv) and a *depthwise* correlation (the exemplar's central 4x4 cells, channel by channel,
  padding 1); the 160 fused channels go through a 1x1 conv and six depthwise-separable blocks. The score
  branch ends in 2 logits per cell (background, target: a softmax), the box branch in ``exp`` of 4 numbers,
  the distances (crop px) from the cell to the box's left, top, right and bottom edges. 15x15 cells.

Inputs are float tensors ``(N, 3, H, W)``, BGR pixel values in [0, 255], no normalisation (as the release).
The module and parameter names are those of the release, so ``nanotrackv3.pt`` loads with ``strict=True``.
:class:`NanoTrackNet` offers the tracking API of :class:`tracker.networks.models.SiamNet` (``embed``,
``embed_exemplar``, ``respond``, ``template``/``track_boxes``) so the same frame loop runs it; its response
is the score branch's logit difference (target minus background), so ``sigmoid(response)`` is the
softmax probability that the target is at that cell.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["BoxNet", "NanoTrackV3Backbone", "NanoTrackNet", "FusedNanoTrackNet", "NANOTRACK_STRIDE"]

NANOTRACK_STRIDE = 16  # search-crop px per response cell


def _bn_conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, bias: bool = False) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=bias), nn.BatchNorm2d(cout)]


class _SqueezeExcite(nn.Module):
    """Channel reweighting: global average, two linear layers, hard sigmoid."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels),
                                nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean((2, 3)))
        return x * w[:, :, None, None]


class _InvertedResidual(nn.Module):
    """MobileNetV3's block. Without expansion (``hidden == cin``): depthwise, act, SE, pointwise. With it:
    pointwise up, act, depthwise, SE, act, pointwise down. A residual where shape allows."""

    def __init__(self, cin: int, hidden: int, cout: int, k: int, stride: int, se: int, hswish: bool) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        if hidden == cin:
            self.conv = nn.Sequential(*_bn_conv(cin, cin, k, stride, groups=cin), act(),
                                      _SqueezeExcite(cin, se) if se else nn.Identity(), *_bn_conv(cin, cout))
        else:
            self.conv = nn.Sequential(*_bn_conv(cin, hidden), act(), *_bn_conv(hidden, hidden, k, stride, groups=hidden),
                                      _SqueezeExcite(hidden, se) if se else nn.Identity(), act(),
                                      *_bn_conv(hidden, cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


# (hidden, out, kernel, stride, squeeze-excite hidden (0: none), hard-swish) per block after the stem;
# read off nanotrackv3.pt's shapes and the released backbone graph's strides and activations.
_V3_BLOCKS = ((16, 16, 3, 2, 8, False), (72, 24, 3, 2, 0, False), (88, 24, 3, 1, 0, False),
              (96, 40, 5, 2, 24, True), (240, 40, 5, 1, 64, True), (240, 40, 5, 1, 64, True),
              (120, 48, 5, 1, 32, True), (144, 48, 5, 1, 40, True), (288, 96, 5, 1, 72, True))


def pointwise_corr(k: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Every exemplar cell's vector (``k``: (B, C, h, w)) dotted with every search cell's (``s``: (N, C, H, W)):
    (N, h*w, H, W); one exemplar (B = 1) serves N search crops."""
    n, _, h, w = s.shape
    kk = k.flatten(2).transpose(1, 2)  # (B, k*k, C)
    if kk.shape[0] != n:
        kk = kk.expand(n, -1, -1)
    return torch.matmul(kk, s.flatten(2)).reshape(n, kk.shape[1], h, w)


def inverted_residual_trunk(stem: nn.Module, blocks, block: type[nn.Module]) -> nn.Sequential:
    """A MobileNetV3-style trunk: ``stem`` (16 channels out), then one ``block`` per row of ``blocks``
    ((hidden, out, kernel, stride, squeeze-excite hidden, hard swish)), each taking the previous one's channels."""
    layers: list[nn.Module] = [stem]
    cin = 16
    for hidden, cout, k, stride, se, hs in blocks:
        layers.append(block(cin, hidden, cout, k, stride, se, hs))
        cin = cout
    return nn.Sequential(*layers)


class NanoTrackV3Backbone(nn.Module):
    """NanoTrack v3's trunk: a 3x3 stride-2 stem (16 channels, hard swish) and nine inverted-residual blocks;
    96 channels at stride 16 (255 px -> 16x16, 127 px -> 8x8, padded convolutions)."""

    out_channels = 96

    def __init__(self) -> None:
        super().__init__()
        self.features = inverted_residual_trunk(nn.Sequential(*_bn_conv(3, 16, 3, 2), nn.Hardswish()), _V3_BLOCKS,
                                                _InvertedResidual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _Neck(nn.Module):
    """The 1x1 "adjust" layer after the trunk (no activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.downsample = nn.Sequential(*_bn_conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x)


class _Project(nn.Module):
    """The exemplar's and the search features' own 1x1 conv + BN before a correlation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_kernel = nn.Sequential(*_bn_conv(channels, channels, bias=True))
        self.conv_search = nn.Sequential(*_bn_conv(channels, channels, bias=True))


class _ChannelAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class _PointwiseCorr(_Project):
    """Every exemplar cell's feature vector against every search cell's (k*k maps), channel attention, then a
    2x2 depthwise conv (one cell less each way) and a 1x1 conv."""

    def __init__(self, channels: int, cells: int) -> None:
        super().__init__(channels)
        self.CA_layer = _ChannelAttention(cells)
        self.conv = nn.Sequential(*_bn_conv(cells, cells, 2, groups=cells), nn.ReLU6(inplace=True),
                                  *_bn_conv(cells, cells, bias=True))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        corr = pointwise_corr(self.conv_kernel(z), self.conv_search(x))
        return self.conv(self.CA_layer(corr))


class _DepthwiseCorr(_Project):
    """The exemplar's central cells as a depthwise kernel over the search features (padding 1)."""

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        k, s = self.conv_kernel(z), self.conv_search(x)
        n, c, h, w = s.shape
        if k.shape[0] == 1:
            return F.conv2d(s, k.reshape(c, 1, *k.shape[-2:]), padding=1, groups=c)
        out = F.conv2d(s.reshape(1, n * c, h, w), k.reshape(n * c, 1, *k.shape[-2:]), padding=1, groups=n * c)
        return out.reshape(n, c, out.shape[-2], out.shape[-1])


def _tower(channels: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [*_bn_conv(channels, channels, 3, groups=channels), nn.ReLU6(inplace=True), *_bn_conv(channels, channels)]
    return nn.Sequential(*layers)


class _BanHead(nn.Module):
    """NanoTrack v3's head: score logits (N, 2, R, R) and edge distances (N, 4, R, R), crop px."""

    def __init__(self, channels: int = 96, exemplar_cells: int = 8, crop: tuple[int, int] = (2, 6)) -> None:
        super().__init__()
        cells = exemplar_cells * exemplar_cells
        self.crop = crop
        self.corr_dw_reg, self.corr_dw_cls = _DepthwiseCorr(channels), _DepthwiseCorr(channels)
        self.corr_pw_reg, self.corr_pw_cls = _PointwiseCorr(channels, cells), _PointwiseCorr(channels, cells)
        self.down_reg = nn.Sequential(nn.Conv2d(channels + cells, channels, 1))
        self.down_cls = nn.Sequential(nn.Conv2d(channels + cells, channels, 1))
        self.cls_tower, self.bbox_tower = _tower(channels, 6), _tower(channels, 6)
        self.cls_logits = nn.Sequential(nn.Conv2d(channels, 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(channels, 4, 1))

    def _centre(self, z: torch.Tensor) -> torch.Tensor:
        a, b = self.crop
        return z[:, :, a:b, a:b]

    def score(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Score logits (N, 2, R, R): background, target."""
        f = torch.cat([self.corr_pw_cls(z, x), self.corr_dw_cls(self._centre(z), x)], 1)
        return self.cls_logits(self.cls_tower(self.down_cls(f)))

    def edges(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Distances (N, 4, R, R) from each cell to the left, top, right and bottom edges, search-crop px."""
        f = torch.cat([self.corr_pw_reg(z, x), self.corr_dw_reg(self._centre(z), x)], 1)
        return torch.exp(self.bbox_pred(self.bbox_tower(self.down_reg(f))))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score(z, x), self.edges(z, x)


class BoxNet(nn.Module):
    """The tracking API of networks with a score and box head of their own (NanoTrack's), as
    :class:`tracker.networks.models.SiamNet` offers it: ``embed``, ``embed_exemplar``, ``respond``, ``template`` /
    ``track_boxes``. Subclasses define ``embed``, ``embed_exemplar``, ``score`` and ``box_edges``."""

    exemplar_sz = 127
    instance_sz = 255
    stride = NANOTRACK_STRIDE
    has_box_head = True
    calibrated_score = True  # sigmoid(response) is a probability (softmax of two logits), not a relative peak
    own_head = True  # boxes from its own box head: no scale pyramid, one kernel per head call
    tracks_crops = True  # respond_crops: search crops to responses and edges in one call
    many_kernels = False
    arch = "nanotrack"
    reference_cell = 7  # the response cell NanoTrack's own tracker puts at the centre of a 255 px search crop
    _zf: torch.Tensor | None = None

    def centre_cell(self, size: int, instance_sz: int) -> float:
        """Index (fractional) of the response cell at the centre of an ``instance_sz`` px search crop, on each axis
        (``size``: the response's side). The network learned its grid from NanoTrack's tracker, which puts cell
        ``R // 2`` of a 255 px crop's response at the crop's centre; cells are ``stride`` px apart whatever the
        crop, so another crop size moves the centre by half its difference, in cells."""
        return self.reference_cell + (instance_sz - self.instance_sz) / (2 * self.stride)

    @property
    def heads(self) -> nn.Module:
        """The module with the score branch ``score(z, x)`` (logits (N, 2, R, R)) and the box branch ``edges(z, x)``."""
        raise NotImplementedError

    def embed_exemplar(self, z: torch.Tensor) -> torch.Tensor:
        """The exemplar's kernel: its embedding (1, C, 8, 8) for a 127 px crop."""
        return self.embed(z)

    def score(self, xf: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        """Responses (S, 1, R, R): target logit minus background logit, for kernel ``zf`` on features ``xf``."""
        logits = self.heads.score(zf, xf)
        return logits[:, 1:2] - logits[:, 0:1]

    def box_edges(self, xf: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        """Edge distances (S, 4, R, R), search-crop px."""
        return self.heads.edges(zf, xf)

    def score_and_edges(self, xf: torch.Tensor, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Responses (N, 1, R, R) and edge distances (N, 4, R, R)."""
        return self.score(xf, zf), self.box_edges(xf, zf)

    def response_size(self, exemplar_sz: int, instance_sz: int) -> int:
        """Side of the response map for square crops of these sizes (px)."""
        p = next(self.parameters())
        with torch.no_grad():
            zf = self.embed_exemplar(torch.zeros(1, 3, exemplar_sz, exemplar_sz, device=p.device, dtype=p.dtype))
            xf = self.embed(torch.zeros(1, 3, instance_sz, instance_sz, device=p.device, dtype=p.dtype))
            return int(self.score(xf, zf).shape[-1])

    def respond(self, xf: torch.Tensor, zf: torch.Tensor, boxes: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`tracker.networks.models.SiamNet.respond` for one kernel ``zf`` (:meth:`embed_exemplar`) on search
        features ``xf`` (S, C, H, W): responses (S, 1, R, R) and, with ``boxes``, edge distances (S, 4, R, R)."""
        if zf.shape[0] > 1:
            raise ValueError(f"{self.arch}: one exemplar kernel at a time, got {zf.shape[0]}")
        return self.score_and_edges(xf, zf) if boxes else (self.score(xf, zf), None)

    def respond_crops(self, x: torch.Tensor, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`respond` with boxes on search crops (S, 3, X, X) instead of their features."""
        return self.respond(self.embed(x), zf, boxes=True)

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """Embed the exemplar crop (1, 3, 127, 127) and cache its kernel for :meth:`track_boxes`."""
        self._zf = self.embed_exemplar(z)
        return self._zf

    def track_boxes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Responses (S, 1, R, R) and edge distances (S, 4, R, R) of search crops against the cached exemplar."""
        if self._zf is None:
            raise RuntimeError(f"{type(self).__name__}.track_boxes called before template()")
        return self.respond(self.embed(x), self._zf, boxes=True)

    def track(self, x: torch.Tensor) -> torch.Tensor:
        """Responses (S, 1, R, R) of search crops against the cached exemplar."""
        return self.track_boxes(x)[0]


class NanoTrackNet(BoxNet):
    """Trunk + neck + head (v3). The exemplar's kernel is its embedding (1, 96, 8, 8); one kernel serves any
    number of search crops of the same target."""

    def __init__(self, arch: str = "nanotrack-v3") -> None:
        super().__init__()
        self.arch = arch
        self.backbone = NanoTrackV3Backbone()
        self.neck = _Neck(self.backbone.out_channels)
        self.ban_head = _BanHead(self.backbone.out_channels)
        self._zf: torch.Tensor | None = None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, 96, H/16, W/16) of crops (N, 3, H, W): the trunk's output. The released graphs feed the
        trunk straight to the head and leave the neck out (``nanotrack_backbone.onnx`` ends at the trunk's last
        1x1 conv); so does this network. With the neck, the first frame's target probability fell from 1.00 to
        0.46-0.87 on four dev sequences (Car4, David, Woman, Deer)."""
        return self.backbone(x)

    @property
    def heads(self) -> nn.Module:
        return self.ban_head

    def for_inference(self) -> "FusedNanoTrackNet":
        """The same network for tracking (BatchNorm folded first: :func:`tracker.networks.models.prepare_for_inference`):
        the head's two branches stacked into one pass and the exemplar's projections done once per kernel."""
        return FusedNanoTrackNet(self)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: score logits (B, 2, R, R) and edge distances (B, 4, R, R) of B exemplar/search pairs."""
        zf, xf = self.embed_exemplar(z), self.embed(x)
        if zf.shape[0] == 1:
            return self.ban_head(zf, xf)
        outs = [self.ban_head(zf[i:i + 1], xf[i:i + 1]) for i in range(len(zf))]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def _conv(seq: nn.Module) -> nn.Conv2d:
    """The (BN-folded) convolution of a one-conv Sequential."""
    convs = [m for m in seq.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and not any(isinstance(m, nn.BatchNorm2d) for m in seq.modules()), "fold BatchNorm first"
    return convs[0]


def _stack(convs: list[nn.Conv2d], groups: int = 1, pad_out: int | None = None) -> nn.Conv2d:
    """One convolution doing ``convs`` side by side on stacked inputs: ``groups`` 1 (all read the same input)
    or ``len(convs)`` (each its own slice), or depthwise when they are. ``pad_out``: outputs per conv, zero-padded."""
    c0 = convs[0]
    depthwise = c0.groups == c0.in_channels and c0.groups > 1
    outs = [c.out_channels for c in convs]
    width = pad_out or max(outs)
    weight = torch.zeros(len(convs) * width if pad_out else sum(outs), *c0.weight.shape[1:])
    bias = torch.zeros(weight.shape[0])
    row = 0
    for c in convs:
        weight[row:row + c.out_channels] = c.weight.detach()
        if c.bias is not None:
            bias[row:row + c.out_channels] = c.bias.detach()
        row += width if pad_out else c.out_channels
    cin = sum(c.in_channels for c in convs) if (groups > 1 or depthwise) else c0.in_channels
    g = weight.shape[0] if depthwise else groups
    out = nn.Conv2d(cin, weight.shape[0], c0.kernel_size, c0.stride, c0.padding, groups=g, bias=True)
    out.weight.data, out.bias.data = weight, bias
    return out.requires_grad_(False)


class FusedNanoTrackNet(BoxNet):
    """:class:`NanoTrackNet` for tracking, outputs unchanged (to float rounding): the score and box branches run
    side by side as one stack of grouped convolutions (half the graph's nodes), and the exemplar's four 1x1
    projections move into :meth:`embed_exemplar`, so the kernel (1, 384, 8, 8) is computed once per target
    (order: pointwise score, pointwise box, depthwise score, depthwise box)."""

    def __init__(self, net: NanoTrackNet) -> None:
        super().__init__()
        h = net.ban_head
        self.arch, self.backbone, self.crop = net.arch, net.backbone, h.crop
        branches = (h.corr_pw_cls, h.corr_pw_reg, h.corr_dw_cls, h.corr_dw_reg)
        self.kernel = _stack([_conv(b.conv_kernel) for b in branches])
        self.search = _stack([_conv(b.conv_search) for b in branches])
        pw = (h.corr_pw_cls, h.corr_pw_reg)
        self.ca1 = _stack([p.CA_layer.fc1 for p in pw], groups=2)
        self.ca2 = _stack([p.CA_layer.fc2 for p in pw], groups=2)
        self.pw_dw = _stack([p.conv[0] for p in pw])
        self.pw_pw = _stack([p.conv[2] for p in pw], groups=2)
        self.down = _stack([_conv(h.down_cls), _conv(h.down_reg)], groups=2)
        convs = [[m for m in t if isinstance(m, nn.Conv2d)] for t in (h.cls_tower, h.bbox_tower)]
        self.tower = nn.ModuleList(_stack([a, b], groups=1 if a.groups > 1 else 2) for a, b in zip(*convs))
        cls, box = _conv(h.cls_logits), _conv(h.bbox_pred)
        diff = nn.Conv2d(cls.in_channels, 1, 1)  # target minus background logit: the response
        diff.weight.data, diff.bias.data = cls.weight[1:2] - cls.weight[0:1], cls.bias[1:2] - cls.bias[0:1]
        self.out = _stack([diff, box], groups=2, pad_out=4)  # channels 0 (response) and 4-7 (box)
        self.channels = h.corr_dw_cls.conv_search[0].out_channels
        self.cells = h.corr_pw_cls.CA_layer.fc1.in_channels
        self.requires_grad_(False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def embed_exemplar(self, z: torch.Tensor) -> torch.Tensor:
        """The target's kernel: the four projections of its embedding, (1, 4 * 96, 8, 8)."""
        return self.kernel(self.backbone(z))

    def _head(self, xf: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        """Both branches' outputs (N, 8, R, R): the response in channel 0, the box's raw outputs in 4-7."""
        c, k = self.channels, self.cells
        s = self.search(xf)  # (N, 4C, H, W)
        n, _, h, w = s.shape
        kp = zf[:, :2 * c].reshape(1, 2, c, k).transpose(2, 3)  # (1, 2, k, C): pointwise kernels, score then box
        pw = torch.matmul(kp, s[:, :2 * c].reshape(n, 2, c, h * w)).reshape(n, 2 * k, h, w)
        pw = pw * torch.sigmoid(self.ca2(F.relu(self.ca1(pw.mean((2, 3), keepdim=True)))))
        pw = self.pw_pw(F.relu6(self.pw_dw(pw)))  # (N, 2k, R, R)
        a, b = self.crop
        kd = zf[0, 2 * c:, a:b, a:b].reshape(2 * c, 1, b - a, b - a)
        dw = F.conv2d(s[:, 2 * c:], kd, padding=1, groups=2 * c)  # (N, 2C, R, R)
        f = self.down(torch.cat([pw[:, :k], dw[:, :c], pw[:, k:], dw[:, c:]], 1))
        for i in range(0, len(self.tower), 2):
            f = self.tower[i + 1](F.relu6(self.tower[i](f)))
        return self.out(f)

    def score(self, xf: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        return self._head(xf, zf)[:, :1]

    def box_edges(self, xf: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._head(xf, zf)[:, 4:])

    def score_and_edges(self, xf: torch.Tensor, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Responses (N, 1, R, R) and edge distances (N, 4, R, R) from one pass."""
        out = self._head(xf, zf)
        return out[:, :1], torch.exp(out[:, 4:])
