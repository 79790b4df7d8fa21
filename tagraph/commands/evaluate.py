"""``tagraph evaluate``: detection mAP of a results JSON against an ActivityNet-style GT JSON."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from tagraph.evaluation import (
    ACTIVITYNET_TIOU,
    THUMOS14_TIOU,
    DetectionResult,
    detection_map,
)

PRESETS = {"activitynet": ACTIVITYNET_TIOU, "thumos14": THUMOS14_TIOU}

EPILOG = """\
examples:
  tagraph evaluate --gt examples/data/example_gt.json \\
      --pred examples/data/example_results.json --subset test --tiou 0.3 0.5 0.7
  tagraph evaluate --gt thumos14.json --pred results.json --subset test --preset thumos14
  tagraph evaluate --gt activity_net.v1-3.min.json --pred results.json --subset validation \\
      --json > metrics.json

Numbers are identical to the official ActivityNet evaluator (Evaluation/eval_detection.py).
Inputs that the official tool would score silently but wrongly are refused (exit status 2:
duplicate video ids, true/false as scores, NaN / inverted / negative segments, ...); where a
wrong number is likely the score comes with WARNING: lines on stderr (prediction videos
absent from the ground truth, a 'v_' prefix on one side, times beyond the video durations,
several subsets and no --subset, no predictions, ground-truth videos without predictions).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the sub-parsers of the ``tagraph`` command."""
    p = subparsers.add_parser(
        "evaluate",
        help="detection mAP of a results JSON (ActivityNet-identical)",
        description="Interpolated AP per class and tIoU threshold of an ActivityNet-style "
        "results JSON against a ground-truth JSON; mAP per threshold and its average.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gt", default=None, metavar="GT.json",
                   help="ground truth: {'database': {video: {'subset', 'annotations': ...}}}")
    p.add_argument("--pred", default=None, metavar="RESULTS.json",
                   help="detections: {'results': {video: [{'label', 'score', 'segment'}]}}; "
                   "with --checkpoint, where its results go (default: results_test.json "
                   "beside the checkpoint)")
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="predict the test subset of this 'tagraph train' checkpoint and score it "
                   "against its config's dataset, in one go (thresholds: the config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with --checkpoint: override a key of its config (e.g. data.root=...)")
    p.add_argument("--device", default="auto", help="with --checkpoint: 'auto', 'cpu', 'cuda'")
    p.add_argument("--subset", default=None,
                   help="evaluate this subset only (case-insensitive, e.g. test, validation)")
    p.add_argument("--tiou", type=float, nargs="+", default=None, metavar="T",
                   help="tIoU thresholds (default: the --preset's)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="activitynet",
                   help="threshold preset: activitynet = 0.5:0.05:0.95, thumos14 = 0.1:0.1:0.7 "
                   "(default: activitynet)")
    p.add_argument("--ambiguous", default=None, metavar="FILE",
                   help="drop predictions overlapping these intervals first "
                   "(W-TALC Ambiguous_test.txt: 'video start end' lines)")
    p.add_argument("--per-class", action="store_true", help="also print AP per class")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object {"tiou", "mAP", "average_mAP", "per_class", '
                   '"positive_videos", "positive_videos_with_predictions", '
                   '"positive_videos_without_predictions", "predictions"}')
    p.set_defaults(func=run, _parser=p)
    return p


def _run_checkpoint(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tagraph.commands._common import run_guarded

    pred = args.pred or str(Path(args.checkpoint).parent / "results_test.json")
    out: dict[str, Any] = {}

    def go() -> int:
        from tagraph.engine.runner import EmptyPredictionsWarning, predict_checkpoint

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyPredictionsWarning)  # one line at the end
            out.update(predict_checkpoint(args.checkpoint, pred, overrides=args.overrides,
                                          device=args.device, progress=not args.json))
        return 0

    rc = run_guarded("evaluate", go)
    if rc:
        return rc
    result = out["result"]
    if args.json:
        print(json.dumps({**result.to_dict(), **result.coverage()}))
    else:
        print(f"{args.checkpoint} -> {pred}: {out['videos']} test videos, "
              f"{len(result.labels)} classes, {out['predictions']} predictions")
        print(_coverage_line(result))
        print(result.table(per_class=args.per_class))
    if out.get("warning"):
        print(f"WARNING: {out['warning']}", file=sys.stderr)
    return 0


def _coverage_line(result: DetectionResult) -> str:
    """``predictions for X of Y ground-truth videos; Z have none``."""
    return (f"predictions for {result.num_positive_videos_with_predictions} of "
            f"{result.num_positive_videos} ground-truth videos; "
            f"{result.num_positive_videos_without_predictions} have none")


def _classes_line(result: DetectionResult) -> str:
    """``classes (ground-truth instances): A 12, B 40, ...`` of the evaluated subset."""
    counts = ", ".join(f"{label} {int(n)}" for label, n in zip(result.labels, result.num_gt))
    return f"{len(result.labels)} classes (ground-truth instances): {counts}"


def warning_lines(command: str, caught: list[warnings.WarningMessage]) -> list[str]:
    """One ``WARNING: ...`` line per distinct warning, in order: the inputs that probably
    give a wrong number (:class:`~tagraph.evaluation.EvaluationInputWarning`) and the file
    format warnings alike. (:obj:`command` is kept for callers; it is not printed.)"""
    del command
    return list(dict.fromkeys(f"WARNING: {w.message}" for w in caught))


def run(args: argparse.Namespace) -> int:
    from tagraph.commands._common import fail, os_error_message

    if args.checkpoint is not None:
        return _run_checkpoint(args)
    if args.gt is None or args.pred is None:
        args._parser.error("--gt and --pred are required (or --checkpoint)")
    thresholds = args.tiou if args.tiou is not None else PRESETS[args.preset]
    bad = [t for t in thresholds if not 0 <= t <= 1]
    if bad:
        return fail("evaluate", f"--tiou: thresholds must lie in [0, 1], got {bad[0]:g}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = detection_map(args.gt, args.pred, thresholds, subset=args.subset,
                                   ambiguous=args.ambiguous)
        except (ValueError, OSError) as e:
            msg = os_error_message(e) if isinstance(e, OSError) else str(e)
            return fail("evaluate", msg)
    if args.json:
        print(json.dumps({**result.to_dict(), **result.coverage()}))
    else:
        subset = f", subset '{args.subset}'" if args.subset else ""
        print(f"{args.pred} vs {args.gt}{subset}: {len(result.labels)} classes, "
              f"{int(result.num_gt.sum())} ground-truth instances, "
              f"{result.num_predictions} predictions")
        print(_classes_line(result))
        print(f"{result.num_prediction_videos} prediction videos, "
              f"{result.num_prediction_videos_matched} of them in the evaluated ground truth")
        print(_coverage_line(result))
        print(result.table(per_class=args.per_class))
    for line in warning_lines("evaluate", caught):  # last, where they are seen
        print(line, file=sys.stderr)
    return 0
