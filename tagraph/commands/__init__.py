"""Sub-commands of the ``tagraph`` command line.

Each module defines ``add_parser(subparsers)``, which registers its sub-command and sets
``func`` (a callable taking the parsed :class:`argparse.Namespace` and returning an exit
code) as the parser default. :data:`COMMANDS` lists the modules in the order they appear in
``tagraph --help``.
"""

from tagraph.commands import analyze, data, demo, evaluate, info, plot, predict, report, train

COMMANDS = [demo, train, evaluate, analyze, report, predict, plot, data, info]

__all__ = ["COMMANDS"]
