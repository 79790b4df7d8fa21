"""The ``tagraph`` command line: ``tagraph <command> ...`` (also ``python -m tagraph``).

Sub-commands live in :mod:`tagraph.commands`, one module each with an ``add_parser``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tagraph import __version__


def build_parser() -> argparse.ArgumentParser:
    from tagraph.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="tagraph",
        description="Graph-based temporal action localization on PyTorch Geometric.",
    )
    parser.add_argument("--version", action="version", version=f"tagraph {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(subparsers)
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
