"""``tagraph data check``: what a dataset folder holds and what training would reject;
``tagraph data synth``: synthetic features for the timings of an annotation file."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from tagraph.commands._common import print_warnings, run_guarded

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
    from tagraph.data.synthetic import SYNTHETIC_VARIANTS

    g = sub.add_parser(
        "synth", help="synthetic features for the videos and timings of an annotation file",
        description="Write SyntheticTAL features (tagraph.data.generate_synthetic_features) "
        "for every video of an ActivityNet-style annotation file, with its durations, frame "
        "rates and action instances (e.g. THUMOS14's real ground truth), as a THUMOS-layout "
        "folder: features/<video_id>.npy, clicks.json (background clicks), "
        "proposals/<subset>_proposal_list.txt. The annotation file is read, not copied. "
        "Prints the folder and the --set keys that read it.",
        epilog=SYNTH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("annotations", metavar="ANNOTATIONS", help="ActivityNet-style JSON (every "
                   "video needs 'duration' and 'fps')")
    g.add_argument("--out", required=True, metavar="DIR", help="parent folder; the data go "
                   "to DIR/synthetic-<hash> (reused when the file and settings are unchanged)")
    g.add_argument("--variant", default="i3d512", choices=sorted(SYNTHETIC_VARIANTS),
                   help="feature geometry (default: i3d512, I3D-like 512-d non-negative "
                   "features at a 16-frame stride)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--force", action="store_true", help="regenerate even when present")
    g.set_defaults(func=run_synth, _parser=g)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    return p


SYNTH_EPILOG = """\
example (THUMOS14's real timings, then any method on them as on your own features):
  tagraph data synth /data/thumos14.json --out runs/thumos_like
  tagraph train --config mil/thumos14 --set data.root=runs/thumos_like/synthetic-<hash> \\
      --set data.annotations=/data/thumos14.json --set data.features=features \\
      --set data.feature_stride=16 --set data.clicks=clicks.json
"""


def run_synth(args: argparse.Namespace) -> int:
    def go() -> int:
        from tagraph.data.synthetic import SYNTHETIC_VARIANTS, generate_synthetic_features

        geometry = dict(SYNTHETIC_VARIANTS[args.variant])
        with warnings.catch_warnings(record=True) as caught:
            f = generate_synthetic_features(args.annotations, args.out, geometry,
                                            seed=args.seed, force=args.force)
        print_warnings(caught)
        n = sum(1 for _ in f.feature_dir.glob("*.npy"))
        cfg = f.config
        stride = cfg["stride"]
        print(f"{n} videos, {len(f.classes)} classes, D = {cfg['feature_dim']}, stride "
              f"{stride} frames ({args.variant}): {f.folder}")
        sets = [f"data.root={f.folder}", f"data.annotations={f.annotation_file}",
                "data.features=features", f"data.feature_stride={stride}",
                "data.clicks=clicks.json"]
        print("read it with: " + " ".join(f"--set {s}" for s in sets))
        return 0

    return run_guarded("data synth", go)


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
