"""``tagraph predict``: detections of the test subset from a checkpoint, as results JSON."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from tagraph.commands._common import run_guarded

EPILOG = """\
examples:
  tagraph predict --checkpoint runs/grn/best.pt --out runs/grn/results.json
  tagraph predict --checkpoint best.pt --out results.json --set data.root=/data/thumos14

The checkpoint's stored config rebuilds the data and the model (--set changes it, e.g.
data.root); only the results file is written. Score it with 'tagraph evaluate'.
Ends with a WARNING line on stderr when the predictions are empty or miss most test
videos with ground truth.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="write ActivityNet results JSON of a checkpoint on the test subset",
        description="Predict the test subset of a checkpoint's config (deterministic, whole "
        "videos) and write an ActivityNet results JSON.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a tagraph train .pt")
    p.add_argument("--out", required=True, metavar="RESULTS.json", help="results file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the checkpoint's config (e.g. data.root=...)")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', ... (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    def go() -> int:
        from tagraph.engine.runner import EmptyPredictionsWarning, predict_checkpoint

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyPredictionsWarning)  # one line at the end
            s = predict_checkpoint(args.checkpoint, args.out, overrides=args.overrides,
                                   device=args.device, progress=not args.quiet,
                                   evaluate=False)
        print(f"{s['predictions']} detections written to {args.out}")
        n_pos, n_miss = s["positive_videos"], s["positive_videos_without_predictions"]
        print(f"predictions for {n_pos - n_miss} of {n_pos} ground-truth test videos; "
              f"{n_miss} have none")
        if s.get("warning"):
            print(f"WARNING: {s['warning']}", file=sys.stderr)
        return 0

    return run_guarded("predict", go)
