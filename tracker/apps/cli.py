"""The ``siamtrack`` console script. Each subcommand lives in its own module, which
exposes ``register(subparsers)``; that adds its parser(s) with ``func=<callable(args) -> int>``."""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that register subcommands, in the order they appear in --help: the commands each adds, and
# whether they need PyTorch (track, webcam and eval also run exported models on ONNX Runtime without it).
_MODULES = [("tracker.apps.demo", ("track", "webcam"), False), ("tracker.apps.track_many", ("track-many",), False),
            ("tracker.eval.cli", ("eval",), False),
            ("tracker.training.cli", ("train",), True), ("tracker.apps.bench", ("bench",), True),
            ("tracker.apps.export_cmd", ("export",), True)]


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _needs_torch(command: str):
    def run(args: argparse.Namespace) -> int:  # noqa: ARG001
        print(f"siamtrack {command}: needs PyTorch, which this install lacks (a deployment install tracks "
              "exported models only: siamtrack track --model EXPORT_DIR); pip install torch to use it", file=sys.stderr)
        return 2
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siamtrack", description="SiamFC visual object tracker")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    torch_ok = _have_torch()
    for name, commands, needs_torch in _MODULES:
        if needs_torch and not torch_ok:
            for command in commands:
                p = sub.add_parser(command, help="(needs PyTorch, not installed)", add_help=False)
                p.set_defaults(func=_needs_torch(command), takes_anything=True)
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_anything", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
