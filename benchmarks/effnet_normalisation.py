"""Which input scaling the ImageNet EfficientNet-Lite0 weights expect.

    python benchmarks/effnet_normalisation.py [--root ../shared/data/dev]

Classifies the first-frame target of each dev sequence (square crop, 1.3x the box's long side,
225 px) with three input scalings and prints the top-1 class and probability of each: RGB
``(x - 127) / 128`` (what :mod:`tracker.networks.effnet` uses), RGB with ImageNet's mean/std, and BGR
``(x - 127) / 128`` (the colour order wrong). Needs the ``[train]`` extra.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker.core import ops  # noqa: E402
from tracker.eval.datasets import load_otb  # noqa: E402
from tracker.io.video import read_image  # noqa: E402
from tracker.networks.effnet import EfficientNetLite0, load_imagenet  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
SCALINGS = {
    "rgb (x-127)/128": lambda bgr: (bgr.flip(1) - 127) / 128,
    "rgb imagenet mean/std": lambda bgr: (bgr.flip(1) - MEAN) / STD,
    "bgr (x-127)/128": lambda bgr: (bgr - 127) / 128,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "dev"))
    args = p.parse_args(argv)
    net = load_imagenet(EfficientNetLite0()).eval()
    top = {k: [] for k in SCALINGS}
    print(f"{'sequence':16s} " + " ".join(f"{k:>24s}" for k in SCALINGS))
    for s in load_otb(args.root):
        x, y, w, h = s.init_box
        crop = ops.crop(read_image(s.img_files[0]), (x + w / 2, y + h / 2), max(w, h) * 1.3, 225)
        bgr = torch.from_numpy(crop).permute(2, 0, 1)[None].float()
        cells = []
        with torch.no_grad():
            for k, f in SCALINGS.items():
                feats = net.head(net.blocks(net.stem(f(bgr))))
                prob = net.fc(feats.mean((2, 3))).softmax(1)[0]
                v, i = prob.max(0)
                top[k].append(float(v))
                cells.append(f"class {int(i):3d} p={float(v):.2f}")
        print(f"{s.name:16s} " + " ".join(f"{c:>24s}" for c in cells))
    print(f"{'mean top-1 p':16s} " + " ".join(f"{np.mean(v):24.3f}" for v in top.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
