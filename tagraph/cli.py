"""The ``tagraph`` command line: ``tagraph <command> ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tagraph import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagraph",
        description="Graph-based temporal action localization on PyTorch Geometric.",
    )
    parser.add_argument("--version", action="version", version=f"tagraph {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
