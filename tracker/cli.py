"""The ``siamtrack`` console script. Each subcommand lives in its own module, which
exposes ``register(subparsers)``; that adds its parser(s) with ``func=<callable(args) -> int>``."""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that register subcommands, in the order they appear in --help.
_MODULES = ["tracker.demo", "tracker.eval.cli", "tracker.training.cli", "tracker.bench", "tracker.export"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siamtrack", description="SiamFC visual object tracker")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
