"""A weight average ("model soup", Wortsman et al. 2022) of networks fine-tuned from one starting point.

Runs of the same recipe from the same initial weights with different seeds end near each other in weight
space; the element-wise mean of their parameters often generalises better than any one of them and costs
nothing at tracking time (one network). Floating-point tensors (parameters and BatchNorm statistics) are
averaged, integer buffers (BatchNorm's batch counts) taken from the first file; the tracking parameters
in the inputs' ``.json`` are kept when they all agree.

    python -m tracker.training.soup runs/KDU/effnet-lite0.pt runs/KDU2/effnet-lite0.pt --out runs/soup.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from ..weights import WeightsError, load_model, resolve, save_weights

if TYPE_CHECKING:
    from ..models import SiamNet

__all__ = ["average_weights", "main"]


def average_weights(paths: Sequence[str | Path]) -> "SiamNet":
    """The network of the first weights file with every floating-point tensor replaced by the mean over
    all files; the files must hold the same architecture (same keys and shapes), else ValueError naming them."""
    if len(paths) < 2:
        raise ValueError(f"a soup needs at least two weights files, got {len(paths)}")
    nets = [load_model(p)[0] for p in paths]
    first = nets[0].state_dict()
    for p, net in zip(paths[1:], nets[1:]):
        other = net.state_dict()
        if net.arch != nets[0].arch or other.keys() != first.keys() or any(
                other[k].shape != v.shape for k, v in first.items()):
            raise ValueError(f"{p}: not the same network as {paths[0]} ({net.arch} against {nets[0].arch}, or other "
                             "tensors): a soup averages runs of one architecture")
    states = [n.state_dict() for n in nets]
    mean = {k: (torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v)
            for k, v in first.items()}
    nets[0].load_state_dict(mean)
    return nets[0]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracker.training.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="+", help="weights files (.pt) of one architecture")
    p.add_argument("--out", required=True, help="the averaged weights (.pt; a .json with its sha256 beside it)")
    args = p.parse_args(argv)
    out = Path(args.out)
    if any(out.resolve() == Path(w).resolve() for w in args.weights):
        print(f"soup: --out {out} is one of the inputs; write the average elsewhere", file=sys.stderr)
        return 2
    try:
        net = average_weights(args.weights)
    except (ValueError, WeightsError) as e:
        print(f"soup: {e}", file=sys.stderr)
        return 2
    configs = [resolve(w).config for w in args.weights]
    config = configs[0] if all(c == configs[0] for c in configs) else {}
    save_weights(net, out, config, soup_of=[str(w) for w in args.weights])
    print(f"wrote {out} (mean of {len(args.weights)} networks, {net.arch}; "
          + ("the inputs' tracking parameters" if config else "no tracking parameters: the inputs' differ, choose "
             "them for the soup (python -m tracker.training.select)") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
