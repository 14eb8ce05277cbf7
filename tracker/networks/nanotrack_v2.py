"""NanoTrack v2's network (OpenCV's 48-channel release), written from its ONNX graphs.

NanoTrack (HonglinChu/SiamTrackers) is a Siamese tracker after SiamBAN and LightTrack; OpenCV's
``cv2.TrackerNano`` ships its v2 as two graphs, ``nanotrack_backbone_sim.onnx`` and ``nanotrack_head_sim.onnx``
(Apache-2.0; ``../shared/peers/nanotrack_v2``). Their BatchNorms are folded into the convolutions, so this
module has plain convolutions with biases and no BatchNorm. Read off the graphs:

* **trunk**: a MobileNetV3-small-style network (total stride 16), shared by the 127 px exemplar (-> 8x8) and
  the 255 px search crop (-> 16x16): a 3x3 stride-2 stem (16 channels, hard swish) and eight inverted-residual
  blocks, the first eight of NanoTrack v3's nine (ReLU in the first three, hard swish after; squeeze-excite
  with a hard sigmoid in blocks 1 and 4-8; residual adds in blocks 3, 5, 6 and 8); 48 channels out, no neck;
* **head**: two branches (score and box), each a *pointwise* correlation only (both inputs through a 1x1
  conv, then every exemplar cell's feature vector dotted with every search cell's: 64 maps, reweighted by
  channel attention with a sigmoid) and a tower of six depthwise-separable blocks (3x3 depthwise without
  bias, padding 1, 1x1 conv, ReLU6; 64 -> 96 channels). The score branch ends in 2 logits per cell
  (background, target: a softmax), the box branch in ``exp`` of 4 numbers, the distances (search-crop px)
  from the cell to the box's left, top, right and bottom edges. 16x16 cells, one per search-feature cell:
  cell ``i`` is centred on crop px ``16 i`` (0-based pixel index), so cell 8, not 7.5, is the crop centre
  (+1 px), as ``cv2.TrackerNano`` takes it.

Inputs are float tensors ``(N, 3, H, W)``, BGR pixel values in [0, 255], no normalisation (as the release).
:class:`NanoTrackV2Net` offers the tracking API of :class:`tracker.networks.nanotrack.NanoTrackNet`; its response is
the score branch's logit difference (target minus background), so ``sigmoid(response)`` is the softmax
probability that the target is at that cell. :func:`state_dict_from_onnx` reads the weights from the graphs
(strictly: every weight used once, every parameter given one) and :func:`convert` writes them to a file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

from .nanotrack import (
    BoxNet,
    _ChannelAttention,
    _SqueezeExcite,
    inverted_residual_trunk,
    pointwise_corr,
)

__all__ = ["NanoTrackV2Backbone", "NanoTrackV2Net", "state_dict_from_onnx", "convert"]


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=bias)


class _InvertedResidual(nn.Module):
    """MobileNetV3's block, BN folded. Without expansion (``hidden == cin``): depthwise, act, SE, pointwise.
    With it: pointwise up, act, depthwise, SE (if any), act, pointwise down. A residual where shape allows."""

    def __init__(self, cin: int, hidden: int, cout: int, k: int, stride: int, se: int, hswish: bool) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        excite = [_SqueezeExcite(hidden, se)] if se else []
        if hidden == cin:
            layers = [_conv(cin, cin, k, stride, groups=cin), act(), *excite, _conv(cin, cout)]
        else:
            layers = [_conv(cin, hidden), act(), _conv(hidden, hidden, k, stride, groups=hidden), *excite, act(),
                      _conv(hidden, cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


# (hidden, out, kernel, stride, squeeze-excite hidden (0: none), hard-swish) per block after the stem, read off
# the backbone graph's initialiser shapes, conv attributes and activation nodes.
_V2_BLOCKS = ((16, 16, 3, 2, 8, False), (72, 24, 3, 2, 0, False), (88, 24, 3, 1, 0, False),
              (96, 40, 5, 2, 24, True), (240, 40, 5, 1, 64, True), (240, 40, 5, 1, 64, True),
              (120, 48, 5, 1, 32, True), (144, 48, 5, 1, 40, True))


class NanoTrackV2Backbone(nn.Module):
    """NanoTrack v2's trunk: (N, 3, H, W) BGR 0-255 -> (N, 48, H/16, W/16) (padded convolutions: 255 px -> 16x16,
    127 px -> 8x8, 223 px -> 14x14)."""

    out_channels = 48

    def __init__(self) -> None:
        super().__init__()
        self.features = inverted_residual_trunk(nn.Sequential(_conv(3, 16, 3, 2), nn.Hardswish()), _V2_BLOCKS,
                                                _InvertedResidual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _PointwiseCorr(nn.Module):
    """Exemplar (B, C, k, k) and search (N, C, H, W) features each through a 1x1 conv, then every exemplar cell's
    vector dotted with every search cell's: (N, k*k, H, W) maps, reweighted by channel attention. A single
    exemplar (B = 1) serves N search crops."""

    def __init__(self, channels: int, cells: int) -> None:
        super().__init__()
        self.conv_kernel = _conv(channels, channels)
        self.conv_search = _conv(channels, channels)
        self.CA_layer = _ChannelAttention(cells)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.CA_layer(pointwise_corr(self.conv_kernel(z), self.conv_search(x)))


def _tower(cin: int, channels: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [_conv(cin, cin, 3, groups=cin, bias=False), _conv(cin, channels), nn.ReLU6(inplace=True)]
        cin = channels
    return nn.Sequential(*layers)


class _PointwiseHead(nn.Module):
    """NanoTrack v2's head: score logits (N, 2, R, R) and edge distances (N, 4, R, R), crop px; R = the search
    features' side. Submodules are registered in the head graph's order (box correlation first)."""

    def __init__(self, channels: int = 48, exemplar_cells: int = 8, tower: int = 96) -> None:
        super().__init__()
        cells = exemplar_cells * exemplar_cells
        self.corr_pw_reg, self.corr_pw_cls = _PointwiseCorr(channels, cells), _PointwiseCorr(channels, cells)
        self.cls_tower, self.cls_logits = _tower(cells, tower, 6), nn.Conv2d(tower, 2, 1)
        self.bbox_tower, self.bbox_pred = _tower(cells, tower, 6), nn.Conv2d(tower, 4, 1)

    def score(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Score logits (N, 2, R, R): background, target."""
        return self.cls_logits(self.cls_tower(self.corr_pw_cls(z, x)))

    def edges(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Distances (N, 4, R, R) from each cell to the left, top, right and bottom edges, search-crop px."""
        return torch.exp(self.bbox_pred(self.bbox_tower(self.corr_pw_reg(z, x))))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score(z, x), self.edges(z, x)


class NanoTrackV2Net(BoxNet):
    """Trunk + head (v2, 48 channels), with :class:`tracker.networks.nanotrack.BoxNet`'s tracking API. The exemplar's
    kernel is its embedding (1, 48, 8, 8); one kernel serves any number of search crops of the same target."""

    reference_cell = 8  # 16 cells for a 255 px crop: NanoTrack's tracker (and cv2.TrackerNano) centre cell 8

    def __init__(self, arch: str = "nanotrack-v2") -> None:
        super().__init__()
        self.arch = arch
        self.backbone = NanoTrackV2Backbone()
        self.head = _PointwiseHead(self.backbone.out_channels)
        self._zf: torch.Tensor | None = None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, 48, H/16, W/16) of crops (N, 3, H, W), BGR 0-255."""
        return self.backbone(x)

    @property
    def heads(self) -> nn.Module:
        return self.head

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: score logits (B, 2, R, R) and edge distances (B, 4, R, R) of B exemplar/search pairs
        (or of one exemplar against B search crops)."""
        return self.head(self.embed_exemplar(z), self.embed(x))


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


def _weights_from_graph(path: str | Path, part: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """``part``'s parameters (named ``prefix`` + name) from the graph at ``path``: its Conv and Gemm nodes, in
    graph order, paired with ``part``'s Conv2d and Linear layers in registration order; kinds, attributes and
    shapes must agree, and every float initialiser with a shape (a weight) must be used exactly once."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in ("Conv", "Gemm")]
    layers = [(n, m) for n, m in part.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    _check(len(nodes) == len(layers), f"{path}: {len(nodes)} Conv/Gemm nodes, the module has {len(layers)} layers")
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for node, (name, layer) in zip(nodes, layers):
        at = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        where = f"{path}: node {node.name or node.output[0]} -> {prefix}{name}"
        if node.op_type == "Conv":
            _check(isinstance(layer, nn.Conv2d) and list(at.get("strides", [1, 1])) == list(layer.stride)
                   and list(at.get("pads", [0, 0, 0, 0])) == list(layer.padding) * 2
                   and at.get("group", 1) == layer.groups and list(at.get("dilations", [1, 1])) == [1, 1],
                   f"{where}: conv attributes {at} differ from {layer}")
        else:
            _check(isinstance(layer, nn.Linear) and at.get("transB") == 1 and at.get("transA", 0) == 0
                   and at.get("alpha", 1.0) == 1.0 and at.get("beta", 1.0) == 1.0,
                   f"{where}: Gemm attributes {at} do not make a Linear {layer}")
        params = [("weight", layer.weight)] + ([("bias", layer.bias)] if layer.bias is not None else [])
        _check(len(node.input) - 1 == len(params), f"{where}: {len(node.input) - 1} weights for {len(params)} params")
        for init, (pname, p) in zip(node.input[1:], params):
            _check(init in inits and init not in used, f"{where}: {init} is not an unused initialiser")
            _check(tuple(inits[init].shape) == tuple(p.shape),
                   f"{where}.{pname}: shape {inits[init].shape} != {tuple(p.shape)}")
            used.add(init)
            state[f"{prefix}{name}.{pname}"] = torch.from_numpy(inits[init].copy())
    left = sorted(n for n, a in inits.items() if n not in used and a.dtype.kind == "f" and a.ndim > 0)
    _check(not left, f"{path}: weights left unused: {left}")
    return state


def state_dict_from_onnx(backbone_onnx: str | Path, head_onnx: str | Path) -> dict[str, torch.Tensor]:
    """:class:`NanoTrackV2Net`'s state_dict (float32 tensors) from OpenCV's two graphs, checked to be complete:
    it loads with ``strict=True``. Needs the ``onnx`` package."""
    net = NanoTrackV2Net()
    state = {**_weights_from_graph(backbone_onnx, net.backbone, "backbone."),
             **_weights_from_graph(head_onnx, net.head, "head.")}
    want = set(net.state_dict())
    _check(set(state) == want, f"keys missing {sorted(want - set(state))}, unexpected {sorted(set(state) - want)}")
    return state


def convert(backbone_onnx: str | Path, head_onnx: str | Path, out_pt: str | Path) -> Path:
    """Write :func:`state_dict_from_onnx`'s tensors to ``out_pt`` with ``torch.save`` (loadable with
    ``torch.load(weights_only=True)``), atomically: a temporary file beside it, then ``os.replace``."""
    out = Path(out_pt)
    state = state_dict_from_onnx(backbone_onnx, head_onnx)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
