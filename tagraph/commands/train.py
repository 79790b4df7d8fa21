"""``tagraph train``: train a method from a TOML config (single process or ``torchrun``)."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from tagraph.commands._common import print_warnings, run_guarded

EPILOG = """\
examples:
  tagraph train --config grn/synthetic --out runs/grn
  tagraph train --config pgcn/thumos14 --set data.root=/data/thumos14 --set optim.lr=0.001
  tagraph train --config runs/grn/config.toml --out runs/grn --resume
  torchrun --nproc_per_node=2 -m tagraph train --config ecm/thumos14 --out runs/ecm

  tagraph train --config ecm/thumos14 --set data.root=/data/my_thumos \
      --set data.features=features --set data.feature_stride=16 --set data.clicks=clicks

CONFIG is a shipped name (tagraph/configs/<method>/<dataset>.toml; list them with
'tagraph info') or a path to a TOML file, which may start from a shipped one with
base = "ecm/thumos14". Every key can be --set, whether or not the file has it; 'tagraph
info --keys [METHOD]' lists them. An unknown key or a bad value is an error.

Before writing anything, train checks the output folder (a non-empty OUT needs --resume or
--overwrite) and the data (the checks of 'tagraph data check'). Then it writes
OUT/config.toml, train.log, {last,best}.pt (best on a validation split of the training
videos), metrics.jsonl, results_test.json and eval_test.json, prints one line per epoch and
the test mAP table, and ends with a WARNING line on stderr when the test predictions are
empty or miss most test videos with ground truth.
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
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of an earlier run in OUT (default: refuse a "
                   "non-empty OUT)")
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
        from tagraph.engine.runner import DataCheckWarning, EmptyPredictionsWarning, train

        cfg = load_config(args.config, args.overrides)
        out = args.out or f"runs/{cfg['method']}_{cfg['data']['dataset']}"
        main = is_main_process()
        write = print
        if not args.quiet:
            try:
                from tqdm.auto import tqdm

                write = tqdm.write
            except ImportError:  # pragma: no cover
                pass
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore", EmptyPredictionsWarning)  # one line at the end
            warnings.simplefilter("always", DataCheckWarning)
            summary = train(cfg, out, resume=args.resume, overwrite=args.overwrite,
                            device=args.device, progress=not args.quiet,
                            test=not args.no_test, console=write if main else None)
        # the data check's and tagraph's own warnings as one WARNING line each
        print_warnings(caught, always=(DataCheckWarning,))
        if not main:
            return 0
        print(f"{cfg['method']} on {cfg['data']['dataset']}: {summary['train_videos']} train / "
              f"{summary['val_videos']} validation / {summary['test_videos']} test videos, "
              f"{summary['classes']} classes, D = {summary['in_channels']}; best epoch "
              f"{summary['best_epoch']} (validation mAP {100 * (summary['val_mAP'] or 0):.2f})")
        result = summary.get("result")
        if result is not None:
            # the coverage of eval_test.json: predictions of any class (the mAP
            # drops those of classes without ground truth, which cover nothing)
            pos = summary.get("positive_videos", result.num_positive_videos)
            print(f"test: {summary['predictions']} predictions on "
                  f"{summary['videos_with_predictions']} of {summary['test_videos']} "
                  f"test videos; predictions for "
                  f"{pos - summary.get('positive_videos_without_predictions', 0)} of {pos} "
                  "ground-truth videos")
            print(result.table())
        print("files written:")
        for f in summary.get("files", []):
            print(f"  {f}")
        if summary.get("warning"):
            print(f"WARNING: {summary['warning']}", file=sys.stderr)
        return 0

    return run_guarded("train", go)
