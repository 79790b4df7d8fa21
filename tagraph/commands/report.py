"""``tagraph report``: one self-contained HTML page about a run or a results file."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from tagraph.commands._common import fail, os_error_message, run_guarded

EPILOG = """\
examples:
  tagraph report tagraph_demo/pgcn                   (writes tagraph_demo/pgcn/report.html)
  tagraph report runs/ecm --out ecm.html --set data.root=/data/thumos14
  tagraph report --gt examples/data/example_gt.json \\
      --pred examples/data/example_results.json --subset test --out report.html

The page (inline PNGs, no network, no scripts): mAP per tIoU and its plot, AP per class,
DETAD's error diagnosis (as 'tagraph analyze'), AR@AN of --proposals (or of
RUN_DIR/proposals_test.json), and for a 'tagraph train' folder its training curves
(metrics.jsonl) and config, then timelines of the best, the median and the worst test video
by per-video AP. A run's ground truth comes from its config's dataset (as 'tagraph train'
scored it), unless --gt is given. Without matplotlib the page has its tables only.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report`` on the sub-parsers of the ``tagraph`` command."""
    from tagraph.evaluation.analysis import CHARACTERISTIC_BINS

    p = subparsers.add_parser(
        "report", help="one self-contained HTML page: mAP, per-class AP, errors, curves, videos",
        description="Write one self-contained HTML report about a 'tagraph train' folder "
        "(RUN_DIR) or about a results JSON against a ground-truth JSON (--gt and --pred).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", nargs="?", default=None, metavar="RUN_DIR",
                   help="a 'tagraph train' output folder (config.toml, results_test.json, "
                   "metrics.jsonl, eval_test.json)")
    p.add_argument("--gt", default=None, metavar="GT.json",
                   help="ground-truth JSON (with RUN_DIR: instead of the config's dataset)")
    p.add_argument("--pred", default=None, metavar="RESULTS.json",
                   help="results JSON (without RUN_DIR)")
    p.add_argument("--subset", default=None,
                   help="evaluate this subset (case-insensitive; with RUN_DIR and --gt: "
                   "default the config's data.test_subset)")
    p.add_argument("--out", default=None, metavar="FILE.html",
                   help="output page (default: RUN_DIR/report.html, else ./report.html)")
    p.add_argument("--tiou", type=float, nargs="+", default=None, metavar="T",
                   help="tIoU thresholds of the mAP table (default: the run's eval.tiou, "
                   "else the --preset's)")
    p.add_argument("--preset", choices=["activitynet", "thumos14"], default=None,
                   help="thresholds without --tiou: activitynet = 0.5:0.05:0.95, thumos14 = "
                   "0.1:0.1:0.7 (default: the run's eval.tiou, else activitynet)")
    p.add_argument("--analysis-tiou", type=float, default=0.5, metavar="T",
                   help="tIoU threshold of the error diagnosis (default: 0.5)")
    p.add_argument("--bins", choices=sorted(CHARACTERISTIC_BINS), default=None,
                   help="characteristic bins of the diagnosis (default: activitynet; for a run "
                   "thumos14 unless its dataset is activitynet13)")
    p.add_argument("--ambiguous", default=None, metavar="FILE",
                   help="drop predictions overlapping these intervals first (W-TALC)")
    p.add_argument("--proposals", default=None, metavar="PROPOSALS.json",
                   help="class-agnostic proposals (results format) whose AR@AN to show")
    p.add_argument("--videos", type=int, default=3, metavar="N",
                   help="test videos drawn: best, median, worst, ... (default: 3)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with RUN_DIR: override a key of its config (e.g. data.root=...)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.run_dir is None and (args.gt is None or args.pred is None):
        return fail("report", "give a run folder (tagraph report RUN_DIR) or both --gt and "
                    "--pred")
    if args.run_dir is not None and args.pred is not None:
        return fail("report", "--pred is for reports without RUN_DIR (the run's predictions "
                    "are RUN_DIR/results_test.json)")
    def go() -> int:
        try:
            return _run(args)
        except OSError as e:
            if isinstance(e, FileNotFoundError):
                raise
            return fail("report", os_error_message(e))

    return run_guarded("report", go)


def _run(args: argparse.Namespace) -> int:
    from tagraph.evaluation import ACTIVITYNET_TIOU, THUMOS14_TIOU
    from tagraph.report import NO_PLOTS, run_inputs, write_report

    if args.run_dir is not None:
        kw = run_inputs(args.run_dir, ground_truth=args.gt, subset=args.subset,
                        overrides=args.overrides)
        out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    else:
        kw = dict(ground_truth=args.gt, predictions=args.pred, subset=args.subset,
                  bins="activitynet", title=f"tagraph report: {Path(args.pred).name}",
                  sources=[("ground truth", str(args.gt)), ("predictions", str(args.pred))],
                  name=Path(args.pred).stem)
        out = Path(args.out or "report.html")
    if args.tiou is not None:
        kw["tiou"] = args.tiou
    elif args.preset is not None or args.run_dir is None:
        kw["tiou"] = THUMOS14_TIOU if args.preset == "thumos14" else ACTIVITYNET_TIOU
    if args.bins is not None:
        kw["bins"] = args.bins
    if args.ambiguous is not None:
        kw["ambiguous"] = args.ambiguous
    if args.proposals is not None:
        kw["proposals"] = args.proposals
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the page lists the inputs' warnings itself
        write_report(out, analysis_tiou=args.analysis_tiou, num_timelines=args.videos, **kw)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"tagraph report: note: {NO_PLOTS}", file=sys.stderr)
    print(f"wrote {out}")
    return 0
