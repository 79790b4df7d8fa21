"""``tagraph train``: train a method from a TOML config (single process or ``torchrun``)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from tagraph.commands._common import run_guarded

EPILOG = """\
examples:
  tagraph train --config grn/synthetic --out runs/grn
  tagraph train --config pgcn/thumos14 --set data.root=/data/thumos14 --set optim.lr=0.001
  tagraph train --config runs/grn/config.toml --out runs/grn --resume
  torchrun --nproc_per_node=2 -m tagraph train --config ecm/thumos14 --out runs/ecm

CONFIG is a shipped name (tagraph/configs/<method>/<dataset>.toml; list them with
'tagraph info') or a path to a TOML file. The resolved config is saved as OUT/config.toml.
Writes OUT/{last,best}.pt (best on a validation split of the training videos),
metrics.jsonl, train.log, results_test.json and eval_test.json. Ends with a WARNING line on
stderr when the test predictions are empty or miss most test videos with ground truth.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a method from a config (checkpoints, metrics, test results)",
        description="Train a method from a TOML config; pick the checkpoint on validation mAP "
        "(a split of the training videos) and evaluate it on the test subset.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, metavar="CONFIG",
                   help="shipped config name (e.g. pgcn/thumos14) or TOML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted, TOML value), repeatable")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: runs/<method>_<dataset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pt (model, optimizer, scheduler, RNG, epoch)")
    p.add_argument("--device", default="auto",
                   help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1' (default: auto)")
    p.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    def go() -> int:
        from tagraph.engine.config import load_config
        from tagraph.engine.distributed import is_main_process
        from tagraph.engine.runner import EmptyPredictionsWarning, train

        cfg = load_config(args.config, args.overrides)
        out = args.out or f"runs/{cfg['method']}_{cfg['data']['dataset']}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyPredictionsWarning)  # one line at the end
            summary = train(cfg, out, resume=args.resume, device=args.device,
                            progress=not args.quiet, test=not args.no_test)
        if is_main_process():
            short = {k: v for k, v in summary.items() if k != "history"}
            print(json.dumps(short, indent=1))
            print(f"outputs in {out}")
            if summary.get("warning"):
                print(f"WARNING: {summary['warning']}", file=sys.stderr)
        return 0

    return run_guarded("train", go)
