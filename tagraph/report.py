r"""One self-contained HTML page about a set of detections, or about a whole training run.

The page holds, in this order (each a ``<section>`` with the id in brackets): a summary
(``summary``), the mAP per tIoU threshold with its plot (``map``), the AP of every class
(``per-class``), DETAD's error diagnosis from
:func:`~tagraph.evaluation.analyze_detections` (``errors``: false-positive profile, mAP gained
by removing each error type, mAP_N sensitivity and false-negative rates), the proposals'
AR@AN when proposals are given (``recall``), the training curves of a run (``training``), its
config (``config``) and the timelines of the best, the median and the worst test video by
per-video AP (``timelines``). A section without input says so instead of disappearing.

Plots are inline base64 PNGs: no network, no JavaScript, one file to mail or archive. Without
matplotlib (the optional ``plot`` extra) the page is written with its tables only and says that
the plots were skipped.

.. code-block:: python

    from tagraph.report import run_inputs, write_report

    write_report("report.html", "examples/data/example_gt.json",
                 "examples/data/example_results.json", subset="test")
    write_report("runs/ecm/report.html", **run_inputs("runs/ecm"))   # a 'tagraph train' folder
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tagraph.evaluation import (
    ACTIVITYNET_TIOU,
    ERROR_TYPES,
    DetectionAnalysis,
    DetectionResult,
    RecallResult,
    analyze_detections,
    average_recall,
    detection_map,
    filter_ambiguous,
)
from tagraph.evaluation.analysis import PROFILE_K
from tagraph.io import Detections, VideoAnnotation, atomic_write, load_annotations, load_results

__all__ = ["SECTIONS", "build_report", "write_report", "run_inputs"]

#: Section ids of the page, in order.
SECTIONS: tuple[str, ...] = ("summary", "map", "per-class", "errors", "recall", "training",
                             "config", "timelines")
_TITLES = {"summary": "Summary", "map": "mAP per tIoU threshold", "per-class": "AP per class",
           "errors": "Error diagnosis (DETAD)", "recall": "Proposal recall (AR@AN)",
           "training": "Training curves", "config": "Config", "timelines": "Test videos"}
_ERROR_TITLES = ("True positive", "Double detection", "Wrong label", "Localization",
                 "Confusion", "Background")
NO_PLOTS = "plots skipped: matplotlib is not installed (pip install 'tagraph[plot]')"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; color: #1d1d1f; }
h1 { font-size: 1.5em; margin: 24px 0 4px; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 1.0em; margin: 18px 0 6px; }
nav { font-size: 0.9em; margin: 8px 0 0; }
nav a { margin-right: 14px; color: #0b62a4; text-decoration: none; }
table { border-collapse: collapse; font-size: 0.85em; margin: 6px 0 12px; }
th, td { border: 1px solid #d6d6d6; padding: 3px 8px; }
th { background: #f3f3f3; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.best { background: #e6f4e6; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0 4px; }
pre { background: #f7f7f7; border: 1px solid #e2e2e2; padding: 10px; font-size: 0.8em;
      overflow-x: auto; }
p.note { color: #8a5a00; background: #fff7e0; border-left: 3px solid #e0a800;
         padding: 4px 10px; margin: 6px 0; }
p.caption, span.muted { color: #666; font-size: 0.85em; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: 2px 14px;
        font-size: 0.9em; margin: 8px 0; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; word-break: break-all; }
.big { font-size: 1.6em; font-weight: 600; }
"""


# ---------------------------------------------------------------------------------------------
# small HTML helpers (every text goes through _e)
# ---------------------------------------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.{digits}f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1,
           caption: str | None = None, best: set[tuple[int, int]] | None = None) -> str:
    """``rows`` of already formatted cells (escaped here); columns from :obj:`numeric_from`
    on are right-aligned."""
    def cls(j: int, i: int | None = None) -> str:
        c = ["n"] if j >= numeric_from else []
        if i is not None and best and (i, j) in best:
            c.append("best")
        return f' class="{" ".join(c)}"' if c else ""

    out = [f'<p class="caption">{_e(caption)}</p>' if caption else "", "<table>"]
    out.append("<thead><tr>" + "".join(f"<th{cls(j)}>{_e(h)}</th>" for j, h in enumerate(head))
               + "</tr></thead><tbody>")
    for i, r in enumerate(rows):
        out.append("<tr>" + "".join(f"<td{cls(j, i)}>{_e(v)}</td>" for j, v in enumerate(r))
                   + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _kv(items: Sequence[tuple[str, Any]]) -> str:
    return ('<dl class="kv">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
            + "</dl>")


class _Figures:
    """Renders matplotlib figures to inline ``<img>`` tags, or notes that plots are skipped."""

    def __init__(self) -> None:
        try:
            from tagraph.viz import _require_matplotlib

            _require_matplotlib()
            self.ok = True
        except ImportError:
            self.ok = False
        self.errors: list[str] = []

    def img(self, make: Any, alt: str, dpi: int = 100) -> str:
        if not self.ok:
            return f'<p class="caption">({_e(NO_PLOTS)})</p>'
        try:
            fig = make()
        except Exception as e:  # a plot must not cost the whole report
            self.errors.append(f"{alt}: {type(e).__name__}: {e}")
            return _note(f"plot '{alt}' failed: {type(e).__name__}: {e}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def _video_scores(gt: Mapping[str, VideoAnnotation], det: Detections,
                  tiou: np.ndarray) -> dict[str, float]:
    """Per-video AP: the video's own mAP (over its ground-truth classes; predictions of other
    classes cannot change their AP), averaged over the thresholds. One evaluation for all
    videos: the AP of class c on video v alone is the AP of a pseudo-class (v, c) whose
    instances and predictions are those of c in v."""
    vids = [v for v, a in gt.items() if len(a)]
    if not vids:
        return {}
    sep = "\x1f"
    pseudo = {v: dataclasses.replace(gt[v], subset=None,
                                     labels=[f"{v}{sep}{lab}" for lab in gt[v].labels])
              for v in vids}
    if len(det):
        key = np.char.add(np.char.add(det.video_id.astype(str), sep), det.label.astype(str))
        known = np.asarray(sorted({lab for a in pseudo.values() for lab in a.labels}), dtype=str)
        keep = np.isin(key, known)
        det = Detections(det.video_id[keep], key[keep], det.score[keep], det.segment[keep])
    res = detection_map(pseudo, det, tiou)
    row = {v: k for k, v in enumerate(vids)}
    video_of = {lab: row[v] for v, a in pseudo.items() for lab in a.labels}
    v_idx = np.array([video_of[lab] for lab in res.labels], dtype=np.int64)
    ap = res.ap.mean(axis=0)
    total = np.bincount(v_idx, weights=ap, minlength=len(vids))
    count = np.bincount(v_idx, minlength=len(vids))
    return {v: float(total[k] / count[k]) for k, v in enumerate(vids)}


def _pick_videos(scores: Mapping[str, float], n: int) -> list[tuple[str, str, float]]:
    """``(role, video, AP)`` of :obj:`n` videos: the best, the median and the worst (more
    evenly spread between them when :obj:`n` > 3), each video once; ties by video id."""
    if not scores or n <= 0:
        return []
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    m = len(ranked)
    mid = (m - 1) // 2
    wanted = [0, m - 1, mid] + np.round(np.linspace(0, m - 1, max(n, 2))).astype(int).tolist()
    idx: list[int] = []
    for i in wanted:
        if i not in idx and len(idx) < n:
            idx.append(i)
    idx.sort()

    def role(i: int) -> str:
        return ("best" if i == 0 else "worst" if i == m - 1 else "median" if i == mid
                else f"rank {i + 1} of {m}")

    return [(role(i), ranked[i][0], ranked[i][1]) for i in idx]


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------


def _section(sid: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(_TITLES[sid])}</h2>{body}</section>'


def _map_section(results: Mapping[str, DetectionResult], figs: _Figures) -> str:
    first = next(iter(results.values()))
    thr = [f"{t:.2f}" for t in first.tiou_thresholds]
    rows = [[name, *[_pct(m) for m in r.mAP], _pct(r.average_mAP)]
            for name, r in results.items()]
    body = _table(["mAP (%) at tIoU", *thr, "avg"], rows)
    if len(first.tiou_thresholds) > 1:
        from tagraph.viz import plot_map_vs_tiou

        body += figs.img(lambda: plot_map_vs_tiou(dict(results), title="mAP vs tIoU"),
                         "mAP vs tIoU")
    return body


def _class_ap_figure(res: DetectionResult) -> Any:
    from tagraph.viz import _new_figure

    ap = res.ap.mean(axis=0)
    order = np.argsort(-ap, kind="stable")
    C = len(order)
    fig = _new_figure((8.0, 0.9 + 0.24 * max(C, 2)))
    ax = fig.add_subplot()
    y = np.arange(C)
    ax.barh(y, 100 * ap[order], color="#4c78a8", height=0.7)
    ax.set_yticks(y, [f"{res.labels[c]} ({int(res.num_gt[c])})" for c in order],
                  fontsize="small")
    for yy, v in zip(y, 100 * ap[order]):
        ax.annotate(f"{v:.1f}", (v, yy), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize="x-small")
    ax.axvline(100 * res.average_mAP, color="k", linestyle="--", linewidth=1,
               label=f"mAP {100 * res.average_mAP:.1f}")
    ax.set_ylim(C - 0.5, -0.5)
    ax.set_xlim(0, max(5.0, 100 * float(ap.max()) * 1.12) if C else 100)
    ax.set_xlabel(f"AP (%), mean over tIoU {res.tiou_thresholds.min():g}-"
                  f"{res.tiou_thresholds.max():g}")
    ax.set_title("AP per class (ground-truth instances in brackets)", fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig


def _class_section(res: DetectionResult, figs: _Figures) -> str:
    body = figs.img(lambda: _class_ap_figure(res), "AP per class")
    thr = [f"{t:.2f}" for t in res.tiou_thresholds]
    ap = res.ap.mean(axis=0)
    rows = [[label, str(int(res.num_gt[c])), *[_pct(a) for a in res.ap[:, c]], _pct(ap[c])]
            for c, label in enumerate(res.labels)]
    order = np.argsort(-ap, kind="stable")
    body += "<details><summary>AP (%) of every class at every threshold</summary>"
    body += _table(["class", "instances", *thr, "avg"], [rows[c] for c in order],
                   numeric_from=1)
    body += "</details>"
    return body


def _tight(fig: Any) -> Any:
    fig.tight_layout()
    return fig


def _errors_section(a: DetectionAnalysis, figs: _Figures) -> str:
    from tagraph.commands.analyze import plot_fp_profile, plot_sensitivity

    body = _kv([
        ("tIoU of a true positive", f"{a.tiou:g} (localization / confusion errors from "
                                    f"{a.min_tiou:g})"),
        ("mAP", f"{_pct(a.mAP)} %"),
        ("normalized mAP (mAP_N)", f"{_pct(a.mAP_N)} % (N = {a.average_instances:.1f} "
                                   "instances per class)"),
        ("recall of all predictions", f"{_pct(float(a.recall.mean()))} %"),
        ("false-negative rate", f"{_pct(a.fn_rate)} % of the ground-truth instances are not "
                                f"detected at normalized precision > {a.fn_min_precision:g}"),
    ])
    body += "<h3>False-positive profile</h3>"
    body += figs.img(lambda: _tight(plot_fp_profile(a)),
                     "false-positive profile and removal gains")
    prof = a.fp_profile
    body += _table(["top predictions", *_ERROR_TITLES],
                   [[f"{k + 1}G", *[_pct(v, 1) for v in prof[k]]] for k in range(PROFILE_K)],
                   caption="share (%) of each category among the top k*G predictions of every "
                   "class (G: its ground-truth instances)")
    body += "<h3>Removing each error type</h3>"
    rows = [[_ERROR_TITLES[i], f"{100 * a.mAP_gain[name]:+.2f}",
             f"{100 * a.mAP_N_gain[name]:+.2f}"]
            for i, name in enumerate(ERROR_TYPES) if i]
    rows.append(["all false positives", f"{100 * a.mAP_gain['all']:+.2f}",
                 f"{100 * a.mAP_N_gain['all']:+.2f}"])
    gains = [a.mAP_N_gain[n] for n in ERROR_TYPES[1:]]
    best = {(int(np.argmax(gains)), 2)} if max(gains) > 0 else set()
    body += _table(["error type", "mAP gain (points)", "mAP_N gain (points)"], rows,
                   best=best, caption="mAP after dropping the false positives of one type; "
                   "highlighted: the type that costs the most")
    body += "<h3>Sensitivity to action characteristics</h3>"
    body += figs.img(lambda: _tight(plot_sensitivity(a)), "mAP_N and false negatives per bin")
    for name, s in a.sensitivity.items():
        rows = [["instances", *[str(int(n)) for n in s.num_gt]],
                ["mAP_N (%)", *[_pct(v, 1) for v in s.mAP_N]],
                ["false negatives (%)", *[_pct(v, 1) for v in s.fn_rate]]]
        edges = [f"{e:g}" for e in s.edges]
        cap = (f"{name.replace('_', ' ')}, bins '{a.bins_preset}': "
               + ", ".join(f"{b} ({lo}, {hi}]" for b, lo, hi in zip(s.bins, edges, edges[1:])))
        if s.num_unbinned:
            cap += f"; {s.num_unbinned} instances in no bin"
        body += _table([name, *s.bins], rows, caption=cap)
    return body


def _recall_section(rec: RecallResult | None, why: str) -> str:
    if rec is None:
        return f'<p class="caption">{_e(why)}</p>'
    thr = ", ".join(f"{t:g}" for t in rec.tiou_thresholds)
    return _table(["proposals per video (AN)", *[str(int(n)) for n in rec.num_proposals]],
                  [["AR (%)", *[_pct(a) for a in rec.average_recall]]],
                  caption=f"average recall over tIoU {thr}; {rec.num_gt} ground-truth instances")


def _training_figure(history: Sequence[Mapping[str, Any]]) -> Any:
    from tagraph.viz import _new_figure

    epochs = np.array([float(r.get("epoch", i + 1)) for i, r in enumerate(history)])
    skip = {"epoch", "step", "lr", "time", "best_epoch"}
    losses = [k for k in dict.fromkeys(k for r in history for k in r)  # training logs
              if k not in skip and not k.startswith("val_")
              and any(_num(r.get(k)) is not None for r in history)]
    vals = [k for k in dict.fromkeys(k for r in history for k in r)
            if k.startswith("val_") and all(_num(r.get(k)) is not None for r in history)]
    fig = _new_figure((11.0, 3.6))
    ax, bx = fig.subplots(1, 2)
    for k in losses:
        y = np.array([_num(r.get(k)) or np.nan for r in history], dtype=float)
        ax.plot(epochs, y, marker="o", markersize=3, linewidth=1.8 if k == "loss" else 1.0,
                label=k, color="k" if k == "loss" else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch mean")
    ax.set_title("Training loss (bold) and logs")
    if losses:
        ax.legend(fontsize="x-small", ncol=2)
    best = history[-1].get("best_epoch") if history else None
    for k in vals:
        y = np.array([_num(r.get(k)) for r in history], dtype=float)
        scale = 100.0 if "mAP" in k else 1.0
        bx.plot(epochs, scale * y, marker="o", markersize=3, label=k)
    if best is not None:
        for a in (ax, bx):
            a.axvline(float(best), color="#d62728", linestyle="--", linewidth=1)
        bx.plot([], [], color="#d62728", linestyle="--", label=f"best epoch ({best})")
    bx.set_xlabel("epoch")
    bx.set_ylabel("validation metric (mAP in %)")
    bx.set_title("Validation (checkpoint selection)")
    if vals or best is not None:
        bx.legend(fontsize="x-small")
    for a in (ax, bx):
        a.grid(color="0.9")
        if len(epochs) and len(epochs) <= 15:
            a.set_xticks(epochs)
    fig.tight_layout()
    return fig


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _training_section(history: Sequence[Mapping[str, Any]] | None, figs: _Figures) -> str:
    if not history:
        return ('<p class="caption">No training log: not a run folder (build the report from '
                "a 'tagraph train' output folder to see metrics.jsonl here).</p>")
    keys = [k for k in dict.fromkeys(k for r in history for k in r) if k not in ("epoch",)]
    body = figs.img(lambda: _training_figure(history), "training curves")
    best = history[-1].get("best_epoch")
    body += _kv([("epochs", len(history)), ("best epoch (best.pt)", best),
                 *[(k, f"{_pct(history[int(best) - 1].get(k))} %") for k in keys
                   if best and k.startswith("val_") and "mAP" in k
                   and 0 < int(best) <= len(history)]])

    def fmt(k: str, v: Any) -> str:
        x = _num(v)
        if x is None:
            return "" if v is None else str(v)
        if k in ("step", "best_epoch"):
            return str(int(x))
        if k == "lr":
            return f"{x:.3g}"
        if k == "time":
            return f"{x:.1f}"
        return f"{x:.4f}"

    rows = [[str(r.get("epoch", i + 1)), *[fmt(k, r.get(k)) for k in keys]]
            for i, r in enumerate(history)]
    opened = " open" if len(history) <= 12 else ""
    body += f"<details{opened}><summary>metrics.jsonl, one row per epoch</summary>"
    body += _table(["epoch", *keys], rows) + "</details>"
    return body


def _timelines_section(gt: Mapping[str, VideoAnnotation], det: Detections,
                       scores: Mapping[str, float], n: int, figs: _Figures) -> str:
    picks = _pick_videos(scores, n)
    if not picks:
        return '<p class="caption">No evaluated video with ground truth.</p>'
    from tagraph.viz import plot_video

    ranked = sorted(scores.values())
    body = (f'<p class="caption">Per-video AP: the mAP over the video\'s own ground-truth '
            f'classes, averaged over the tIoU thresholds; {len(ranked)} videos with ground '
            f'truth, median {_pct(float(np.median(ranked)), 1)} %. Red bars: ground truth; '
            f'below them the top predictions of each class, coloured by score.</p>')
    body += _table(["", "video", "video AP (%)", "instances", "predictions"],
                   [[role, vid, _pct(ap, 1), str(len(gt[vid])),
                     str(int(np.count_nonzero(det.video_id == vid)))]
                    for role, vid, ap in picks], numeric_from=2)
    for role, vid, ap in picks:
        body += f"<h3>{_e(role)}: {_e(vid)} (video AP {_pct(ap, 1)} %)</h3>"
        body += figs.img(lambda vid=vid: plot_video(gt, det, vid), f"timeline of {vid}")
    return body


# ---------------------------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------------------------


def build_report(
    ground_truth: str | os.PathLike | Mapping[str, Any],
    predictions: str | os.PathLike | Mapping[str, Any] | Detections,
    *,
    subset: str | None = None,
    tiou: Sequence[float] | np.ndarray | None = None,
    analysis_tiou: float = 0.5,
    bins: str = "activitynet",
    ambiguous: str | os.PathLike | Mapping[str, Any] | None = None,
    proposals: str | os.PathLike | Mapping[str, Any] | Detections | None = None,
    num_proposals: Sequence[int] = (50, 100, 200, 500, 1000),
    config_text: str | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    run_summary: Mapping[str, Any] | None = None,
    title: str | None = None,
    sources: Sequence[tuple[str, str]] = (),
    num_timelines: int = 3,
    name: str = "predictions",
    compare: Mapping[str, str | os.PathLike | Mapping[str, Any] | Detections] | None = None,
) -> str:
    r"""The HTML page (one string, self-contained) about :obj:`predictions`.

    Args:
        ground_truth (str, os.PathLike or dict): ActivityNet annotation JSON, its content, or
            ``{video_id: VideoAnnotation}`` (all subsets: the taxonomy is that of the file).
        predictions (str, os.PathLike, dict or Detections): ActivityNet results JSON, its
            content, or :class:`~tagraph.io.Detections`.
        subset (str, optional): Evaluate this subset only (case-insensitive).
            (default: :obj:`None`, every video)
        tiou (list[float], optional): tIoU thresholds of the mAP table.
            (default: :obj:`None`, :data:`~tagraph.evaluation.ACTIVITYNET_TIOU`)
        analysis_tiou (float, optional): tIoU threshold of the error diagnosis.
            (default: :obj:`0.5`)
        bins (str, optional): Characteristic bins of the diagnosis, :obj:`"activitynet"` or
            :obj:`"thumos14"`. (default: :obj:`"activitynet"`)
        ambiguous (str, os.PathLike or dict, optional): W-TALC ambiguous intervals; predictions
            overlapping them are dropped first. (default: :obj:`None`)
        proposals (str, os.PathLike, dict or Detections, optional): Class-agnostic proposals
            (results format, labels ignored) whose AR@AN to show. (default: :obj:`None`)
        num_proposals (list[int], optional): The AN values. (default: 50 to 1000)
        config_text (str, optional): A run's ``config.toml``, shown as text.
        history (list[dict], optional): A run's ``metrics.jsonl`` records (one per epoch).
        run_summary (dict, optional): A run's ``eval_test.json``; its mAP is compared with the
            page's.
        title (str, optional): Page title. (default: :obj:`None`, from the inputs)
        sources (list[tuple[str, str]], optional): ``(what, where)`` lines of the summary.
        num_timelines (int, optional): Test videos drawn (best, median, worst, ...).
            (default: :obj:`3`)
        name (str, optional): Name of the predictions in plots. (default: :obj:`"predictions"`)
        compare (dict[str, predictions], optional): Other methods' predictions by name, shown
            beside these in the mAP table and plot only (predictions of classes without
            ground truth are dropped). (default: :obj:`None`)

    Returns:
        str: The page.
    """
    figs = _Figures()
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gt_all = load_annotations(ground_truth)
        det = load_results(predictions)
        if ambiguous is not None:
            det = filter_ambiguous(det, ambiguous)
        thr = np.asarray(ACTIVITYNET_TIOU if tiou is None else list(tiou), dtype=np.float64)
        res = detection_map(gt_all, det, thr, subset=subset)
        analysis = analyze_detections(gt_all, det, analysis_tiou, subset=subset, bins=bins)
        gt = load_annotations(gt_all, subset=subset)
        results = {name: res}
        known = np.asarray(sorted({lab for v in gt_all.values() for lab in v.labels}), dtype=str)
        for other, pred in (compare or {}).items():
            d = load_results(pred)
            d = filter_ambiguous(d, ambiguous) if ambiguous is not None else d
            results[str(other)] = detection_map(gt_all, d[np.isin(d.label, known)], thr,
                                                subset=subset)
        rec, rec_why = None, ("No proposals given (pass proposals, e.g. 'tagraph report "
                              "--proposals PROPOSALS.json', to see their recall).")
        if proposals is not None:
            try:
                rec = average_recall(gt_all, proposals, num_proposals, thr, subset=subset)
            except (ValueError, OSError) as e:
                rec_why = f"Proposals could not be evaluated: {e}"
    notes += [f"warning: {w.message}" for w in caught]

    scores = _video_scores(gt, det, thr)
    in_subset = np.isin(det.video_id, np.asarray(list(gt), dtype=str)) if len(det) else []

    if run_summary is not None and run_summary.get("average_mAP") is not None:
        stored = float(run_summary["average_mAP"])
        same_thr = np.allclose(run_summary.get("tiou", []), thr) if len(
            run_summary.get("tiou", [])) == len(thr) else False
        if same_thr and abs(stored - res.average_mAP) > 1e-9:
            notes.append(f"the run's eval_test.json has average mAP {100 * stored:.2f} %, this "
                         f"page {100 * res.average_mAP:.2f} % (different ground truth or "
                         "predictions?)")
        if run_summary.get("warning"):
            notes.append(f"run: {run_summary['warning']}")
    if not figs.ok:
        notes.insert(0, NO_PLOTS)

    if title is None:
        title = f"tagraph report: {name}"
    n_inst = int(sum(len(a) for a in gt.values()))
    summary = (f'<p><span class="big">{_pct(res.average_mAP)} %</span> average mAP over tIoU '
               f"{', '.join(f'{t:g}' for t in thr)}; {_pct(analysis.mAP)} % at "
               f"{analysis_tiou:g}.</p>")
    summary += _kv([*sources,
                    ("subset", subset if subset is not None else "all videos"),
                    ("videos evaluated", f"{len(gt)} ({sum(1 for a in gt.values() if len(a))} "
                                         "with ground truth)"),
                    ("classes", len(res.labels)),
                    ("ground-truth instances", n_inst),
                    ("predictions", f"{int(np.count_nonzero(in_subset))} on the evaluated "
                                    f"videos ({len(det)} in all)"),
                    ("positive videos without predictions",
                     res.num_positive_videos_without_predictions)])
    summary += "".join(_note(n) for n in notes)

    sections = {
        "summary": summary,
        "map": _map_section(results, figs),
        "per-class": _class_section(res, figs),
        "errors": _errors_section(analysis, figs),
        "recall": _recall_section(rec, rec_why),
        "training": _training_section(history, figs),
        "config": (f"<pre>{_e(config_text)}</pre>" if config_text else
                   '<p class="caption">No config: not a run folder.</p>'),
        "timelines": _timelines_section(gt, det, scores, num_timelines, figs),
    }
    if figs.errors:
        sections["summary"] += "".join(_note(f"plot failed: {e}") for e in figs.errors)
    nav = "".join(f'<a href="#{s}">{_e(_TITLES[s])}</a>' for s in SECTIONS)
    body = "".join(_section(s, sections[s]) for s in SECTIONS)
    from tagraph import __version__

    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="generator" content="tagraph {_e(__version__)}">'
            f"<style>{_CSS}</style></head><body>"
            f"<header><h1>{_e(title)}</h1><nav>{nav}</nav></header>"
            f"<main>{body}</main></body></html>\n")


def write_report(path: str | os.PathLike, *args: Any, **kwargs: Any) -> Path:
    r"""Writes :func:`build_report`'s page to :obj:`path` atomically (its folder is created);
    returns the path."""
    page = build_report(*args, **kwargs)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, page)
    return out


def run_inputs(
    run_dir: str | os.PathLike,
    *,
    ground_truth: str | os.PathLike | None = None,
    subset: str | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    r""":func:`build_report` arguments of a ``tagraph train`` output folder.

    Reads ``config.toml``, ``results_test.json``, ``eval_test.json`` and ``metrics.jsonl``
    (the last two optional) and, with ``proposals_test.json`` in the folder, the proposals.
    The ground truth is the run's own: the test videos of the config's dataset (opened as
    ``tagraph train`` does, with :obj:`overrides` such as ``data.root=...``), scored like
    ``eval_test.json`` (the taxonomy of the whole annotation file; predictions of classes
    without ground truth dropped). With :obj:`ground_truth` (an annotation JSON), that file's
    :obj:`subset` (default: the config's ``data.test_subset``) is used instead and the dataset
    is not opened.

    Raises:
        FileNotFoundError: No ``config.toml`` or ``results_test.json`` in :obj:`run_dir`.
    """
    from tagraph.engine.config import load_config

    run = Path(run_dir)
    cfg_path, res_path = run / "config.toml", run / "results_test.json"
    for p in (cfg_path, res_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist: '{run}' is not a finished "
                                    "'tagraph train' folder (config.toml, results_test.json)")
    cfg = load_config(cfg_path, list(overrides), validate=False)  # runs of older versions
    d = cfg.get("data", {})
    test_subset = str(d.get("test_subset", "test"))
    history = None
    if (run / "metrics.jsonl").is_file():
        history = [json.loads(line) for line in
                   (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    summary = None
    if (run / "eval_test.json").is_file():
        summary = json.loads((run / "eval_test.json").read_text())
    tiou = cfg.get("eval", {}).get("tiou") or (summary or {}).get("tiou") or [
        0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    det = load_results(res_path)
    ambiguous = None
    if ground_truth is not None:
        gt: Any = ground_truth
        subset = subset or test_subset
        gt_where = str(ground_truth)
    else:
        from tagraph.engine.runner import DatasetNotFoundError, load_data

        try:
            data = load_data(cfg, need_train=False)
        except DatasetNotFoundError as e:
            raise DatasetNotFoundError(f"{e}\nOr pass the annotation file: tagraph report "
                                       f"{run} --gt GT.json") from None
        test = data.test
        ids = ([v.video_id for v in test.videos] if hasattr(test, "videos")
               else [g.video_id for g in test])
        known = set(ids)
        # the runner's scoring: test videos marked as the evaluated subset, the rest not
        gt = {k: dataclasses.replace(v, subset=test_subset if k in known else "__other__")
              for k, v in data.gt.items()}
        subset = test_subset
        ambiguous = data.ambiguous
        gt_where = str(getattr(test, "annotation_file", None) or f"dataset {d.get('dataset')}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # build_report shows the file's warnings
        labels = sorted({lab for v in load_annotations(gt).values() for lab in v.labels})
    if len(det):
        det = det[np.isin(det.label, np.asarray(labels, dtype=str))]
    method, dataset = cfg.get("method", "?"), d.get("dataset", "?")
    out: dict[str, Any] = dict(
        ground_truth=gt, predictions=det, subset=subset, tiou=list(tiou),
        bins="activitynet" if dataset == "activitynet13" else "thumos14",
        ambiguous=ambiguous, config_text=cfg_path.read_text(), history=history,
        run_summary=summary, title=f"tagraph report: {method} on {dataset}",
        sources=[("run folder", str(run.resolve())), ("ground truth", gt_where),
                 ("predictions", str(res_path.resolve()))],
        name=str(method))
    if (run / "proposals_test.json").is_file():
        out["proposals"] = run / "proposals_test.json"
    return out
