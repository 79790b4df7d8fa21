"""``tagraph data check``: what a dataset folder holds and what training would reject."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tagraph.commands._common import run_guarded

EPILOG = """\
examples:
  tagraph data check --config ecm/synthetic
  tagraph data check --config ecm/thumos14 --set data.root=/data/thumos14 \\
      --set data.feature_stride=16 --set data.features=features
  tagraph data check /data/my_thumos --set data.feature_stride=16

With ROOT and no --config, the folder is read as a JSON dataset: the one *.json under
ROOT/annotations (or ROOT) and the first of ROOT/features, ROOT/i3d_features; every
data.* key can be --set (list them with 'tagraph info --keys'). The report goes to stdout,
its ERROR and WARNING lines to stderr. Exit status 1 when training would reject the data
(missing features, empty subsets, mixed feature dimensions, ...).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "data", help="check a dataset folder against a config (tagraph data check)",
        description="Dataset tools.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    c = sub.add_parser(
        "check", help="videos, features, stride, classes, proposals and clicks of a dataset",
        description="Read a config's dataset (or a folder) and report, per subset, videos, "
        "feature files found and missing, shape and dtype, the stride implied by T and the "
        "durations, ground-truth segments outside the video, classes, proposal and click "
        "coverage; the same checks 'tagraph train' runs first.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("root", nargs="?", default=None, metavar="ROOT",
                   help="a dataset folder (without --config: read as data.dataset = 'json')")
    c.add_argument("--config", default=None, metavar="CONFIG",
                   help="shipped config name (e.g. ecm/thumos14) or TOML file")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted, TOML value), repeatable")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=run, _parser=c)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    return p


def _guess(root: Path) -> list[str]:
    """``--set`` items for a bare folder: its annotation JSON and feature folder."""
    out = [f"data.root={json.dumps(str(root))}"]
    for where in (root / "annotations", root):
        found = sorted(where.glob("*.json")) if where.is_dir() else []
        if len(found) == 1:
            out.append(f"data.annotations={json.dumps(str(found[0]))}")
            break
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise ValueError(f"{where}: several JSON files ({names}); pick one with "
                             "--set data.annotations=...")
    else:
        raise ValueError(f"{root}: no annotation JSON in {root}/annotations or {root}; "
                         "set one with --set data.annotations=...")
    for name in ("features", "i3d_features"):
        if (root / name).is_dir():
            out.append(f"data.features={name}")
            break
    else:
        raise ValueError(f"{root}: no 'features' or 'i3d_features' folder; set one with "
                         "--set data.features=...")
    return out


def run(args: argparse.Namespace) -> int:
    if args.root is None and args.config is None:
        args._parser.error("give --config CONFIG or a dataset folder ROOT")
    result: dict[str, Any] = {}

    def go() -> int:
        from tagraph.engine.config import load_config
        from tagraph.engine.data_check import check_data

        if args.config is None:
            cfg = load_config("mil/thumos14", ["data.dataset=json", "data.feature_stride=16",
                                               *_guess(Path(args.root)), *args.overrides])
        else:
            sets = list(args.overrides)
            if args.root is not None:
                sets.insert(0, f"data.root={json.dumps(str(args.root))}")
            cfg = load_config(args.config, sets)
        report = check_data(cfg)
        result["report"] = report
        if args.json:
            print(json.dumps(report.to_dict()))
        else:
            print(report.table(problems=False))
            for line in report.problems():  # problems on stderr, like the other commands
                print(line, file=sys.stderr)
        return 0 if report.ok else 1

    return run_guarded("data check", go)
