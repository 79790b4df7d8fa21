"""``tagraph analyze``: why a detector fails (DETAD error diagnosis of a results JSON)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from tagraph.evaluation.analysis import (
    CHARACTERISTIC_BINS,
    ERROR_TYPES,
    PROFILE_K,
    DetectionAnalysis,
    analyze_detections,
)

EPILOG = """\
examples:
  tagraph analyze --gt examples/data/example_gt.json \\
      --pred examples/data/example_results.json --subset test
  tagraph analyze --gt thumos14.json --pred results.json --subset test --bins thumos14 \\
      --out analysis/
  tagraph analyze --gt activity_net.v1-3.min.json --pred results.json --subset validation \\
      --json > analysis.json

Follows DETAD (Alwassel et al., "Diagnosing Error in Temporal Action Detectors", ECCV 2018):
false-positive profile of the top k*G predictions per class (k = 1..10), mAP gained by
removing each false-positive type, normalized mAP (mAP_N) and its sensitivity to instance
coverage, length and number of instances per video, with false-negative rates per bin.
Matching is that of 'tagraph evaluate' (official ActivityNet).
"""

COLORS = ("#33a02c", "#b2df8a", "#1f78b4", "#fb9a99", "#e31a1c", "#a6cee3")  # DETAD's


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``analyze`` on the sub-parsers of the ``tagraph`` command."""
    p = subparsers.add_parser(
        "analyze",
        help="why a detector fails: false-positive profile, mAP_N sensitivity (DETAD)",
        description="DETAD error diagnosis of an ActivityNet-style results JSON against a "
        "ground-truth JSON at one tIoU threshold.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gt", required=True, metavar="GT.json",
                   help="ground truth: {'database': {video: {'subset', 'duration', "
                   "'annotations': ...}}}")
    p.add_argument("--pred", required=True, metavar="RESULTS.json",
                   help="detections: {'results': {video: [{'label', 'score', 'segment'}]}}")
    p.add_argument("--subset", default=None,
                   help="analyse this subset only (case-insensitive, e.g. test, validation)")
    p.add_argument("--tiou", type=float, default=0.5, metavar="T",
                   help="tIoU threshold of a true positive (default: 0.5)")
    p.add_argument("--bins", choices=["auto", *sorted(CHARACTERISTIC_BINS)], default="auto",
                   help="characteristic bins: DETAD's ActivityNet (paper) or THUMOS14 ones; "
                   "auto = thumos14 when the evaluated instances' median length is under 30 s "
                   "(all of them would fall in ActivityNet's XS bin), else activitynet "
                   "(default: auto)")
    p.add_argument("--ambiguous", default=None, metavar="FILE",
                   help="drop predictions overlapping these intervals first "
                   "(W-TALC Ambiguous_test.txt: 'video start end' lines)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write DIR/analysis.json and, with matplotlib, DIR/fp_profile.png and "
                   "DIR/sensitivity.png")
    p.add_argument("--json", action="store_true", help="print all figures as one JSON object")
    p.set_defaults(func=run)
    return p


def auto_bins(gt: str, subset: str | None) -> str:
    """``"thumos14"`` when the median ground-truth instance of :obj:`subset` is
    shorter than 30 s (ActivityNet's XS bin would hold nearly all), else
    ``"activitynet"``."""
    import numpy as np

    from tagraph.io import load_annotations

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported by the analysis itself
        anns = load_annotations(gt)
    key = subset.lower() if subset else None
    lengths = [float(e - s) for a in anns.values()
               if key is None or (a.subset or "").lower() == key for s, e in a.segments]
    return "thumos14" if lengths and float(np.median(lengths)) < 30.0 else "activitynet"


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            bins = args.bins if args.bins != "auto" else auto_bins(args.gt, args.subset)
            result = analyze_detections(args.gt, args.pred, args.tiou, subset=args.subset,
                                        ambiguous=args.ambiguous, bins=bins)
        except (ValueError, OSError) as e:
            return _error(e)
    data = result.to_dict()
    info = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps(data))
    else:
        subset = f", subset '{args.subset}'" if args.subset else ""
        print(f"{args.pred} vs {args.gt}{subset}: {len(result.labels)} classes, "
              f"{int(result.num_gt.sum())} ground-truth instances, "
              f"{result.num_predictions} predictions")
        print(result.table())
    if args.out is not None:
        try:
            written = write_outputs(result, data, args.out)
        except OSError as e:
            return _error(e)
        for path in written:
            print(f"wrote {path}", file=info)
        if len(written) == 1:
            print("tagraph analyze: note: no plots (matplotlib is not installed: "
                  "pip install 'tagraph[plot]')", file=sys.stderr)
    # last (and only on success): the input warnings of the shared loader
    from tagraph.commands.evaluate import warning_lines

    for line in warning_lines("analyze", caught):
        print(line, file=sys.stderr)
    return 0


def _error(e: Exception) -> int:
    from tagraph.commands._common import os_error_message

    msg = os_error_message(e) if isinstance(e, OSError) else str(e)
    print(f"tagraph analyze: error: {msg}", file=sys.stderr)
    return 2


def write_outputs(result: DetectionAnalysis, data: dict[str, Any], out: str) -> list[Path]:
    """Writes ``analysis.json`` (atomically) and, when matplotlib is installed, the PNG plots
    into :obj:`out` (created if needed); returns the paths written."""
    from tagraph.io import atomic_write

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "analysis.json"
    atomic_write(path, json.dumps(data, indent=1) + "\n")
    written = [path]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return written
    from tagraph.viz import save_figure

    for name, fig in (("fp_profile.png", plot_fp_profile(result)),
                      ("sensitivity.png", plot_sensitivity(result))):
        save_figure(fig, folder / name)
        written.append(folder / name)
    return written


def plot_fp_profile(result: DetectionAnalysis) -> Any:
    """DETAD's figure: stacked FP-profile bars of the top k*G predictions and the mAP_N gain
    of removing each false-positive type."""
    import numpy as np

    from tagraph.viz import _new_figure

    fig = _new_figure((11.0, 4.2))
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    prof = 100 * result.fp_profile
    x = np.arange(PROFILE_K)
    bottom = np.zeros(PROFILE_K)
    titles = [t.replace("_", " ").capitalize() for t in ERROR_TYPES]
    for i, title in enumerate(titles):
        ax.bar(x, prof[:, i], 0.85, bottom=bottom, color=COLORS[i], label=title)
        bottom += prof[:, i]
    ax.set_xticks(x, [f"{k + 1}G" for k in x])
    ax.set_ylim(0, 100)
    ax.set_xlabel("top predictions per class")
    ax.set_ylabel("error breakdown (%)")
    ax.set_title(f"False-positive profile (tIoU {result.tiou:g})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
    gain = result.mAP_N_gain
    names = list(ERROR_TYPES[1:])
    vals = [100 * gain[t] for t in names]
    bars = bx.bar(np.arange(len(names)), vals, color=COLORS[1:])
    for b, v in zip(bars, vals):
        bx.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    bx.set_xticks(np.arange(len(names)), titles[1:], rotation=30, ha="right", fontsize=8)
    bx.set_ylabel("mAP_N improvement (points)")
    bx.set_title("Removing each error type")
    return fig


def plot_sensitivity(result: DetectionAnalysis) -> Any:
    """mAP_N per characteristic bin (dashed: overall mAP_N) and false-negative rate per bin."""
    import numpy as np

    from tagraph.viz import _new_figure

    fig = _new_figure((11.0, 6.0))
    ax, bx = fig.subplots(2, 1, sharex=True)
    colors = ("#386cb0", "#f0027f", "#bf5b17")
    ticks, labels, x0 = [], [], 0
    for i, (name, s) in enumerate(result.sensitivity.items()):
        x = x0 + np.arange(len(s.bins))
        m = np.nan_to_num(100 * s.mAP_N)
        f = np.nan_to_num(100 * s.fn_rate)
        ax.bar(x, m, color=colors[i % 3], label=name.replace("_", " "))
        bx.bar(x, f, color=colors[i % 3])
        ticks += list(x)
        labels += [f"{b}\n{n}" for b, n in zip(s.bins, s.num_gt)]  # bin, instances
        x0 += len(s.bins) + 1
    ax.axhline(100 * result.mAP_N, color="k", linestyle="--", linewidth=1)
    ax.set_ylabel("mAP_N (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Sensitivity to action characteristics (tIoU {result.tiou:g}; "
                 f"bins: {result.bins_preset})")
    ax.legend(fontsize=8)
    bx.set_ylabel("false negatives (%)")
    bx.set_xlabel("bin and number of ground-truth instances")
    bx.set_ylim(0, 100)
    bx.set_xticks(ticks, labels)
    return fig
