r"""Plots for temporal action localization: detection timelines, CAS curves, mAP vs tIoU.

Every function draws on a :class:`matplotlib.figure.Figure` with an Agg canvas (no
:mod:`matplotlib.pyplot`, no global backend change), so it works headless, in scripts and in
notebooks (a returned figure displays inline), and leaves the user's backend alone.
matplotlib is optional (``pip install 'tagraph[plot]'``) and imported only when a function
runs.

.. code-block:: python

    from tagraph.viz import plot_video, plot_map_vs_tiou, save_figure

    fig = plot_video("thumos14.json", "results.json", "video_test_0000004")
    save_figure(fig, "video_test_0000004.png")

    save_figure(plot_map_vs_tiou({"P-GCN": res_pgcn, "MLP": res_mlp}), "map.png")

Times are seconds everywhere. Labels are class names (:obj:`str`) or class indices (:obj:`int`,
named through :obj:`class_names`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tagraph.io import Detections, VideoAnnotation, atomic_open, load_annotations, load_results

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_timeline", "plot_video", "plot_map_vs_tiou", "save_figure"]

MISSING_MATPLOTLIB = "tagraph.viz needs matplotlib: pip install 'tagraph[plot]'"

GT_COLOR = "#d62728"
GT_EDGE = "#6b0f10"
SCORE_CMAP = "viridis"
MAX_LANES = 4  # prediction sub-rows per class; further overlapping predictions share the last
CAS_TOP_PREDICTED = 2  # predicted classes the CAS panel draws besides the ground-truth ones


def _require_matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as e:
        raise ImportError(MISSING_MATPLOTLIB) from e
    return matplotlib


def _new_figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _numpy(x: Any, dtype: Any = None) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _names(labels: Any, class_names: Sequence[str] | None, what: str) -> np.ndarray:
    """Labels (names or indices) as a ``[N]`` array of class names."""
    arr = _numpy(labels).reshape(-1)
    if arr.size == 0:
        return np.empty(0, dtype=str)
    if arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        idx = arr.astype(np.int64)
        if class_names is None:
            return np.char.add("class ", idx.astype(str))
        bad = (idx < 0) | (idx >= len(class_names))
        if bad.any():
            raise ValueError(
                f"{what}: label index {int(idx[bad][0])} out of range for "
                f"{len(class_names)} class_names"
            )
        return np.asarray(class_names, dtype=str)[idx]
    return arr.astype(str)


def _segments(x: Any, what: str) -> np.ndarray:
    seg = _numpy(x, np.float64)
    if seg.size == 0:
        return np.zeros((0, 2))
    if seg.ndim != 2 or seg.shape[1] != 2:
        raise ValueError(f"{what}: expected [N, 2] (start, end) seconds, got shape {seg.shape}")
    return seg


def _class_key(class_names: Sequence[str] | None) -> Any:
    """Sort key of a class name: its index in class_names, or the number in 'class N'."""
    index = {str(n): i for i, n in enumerate(class_names or [])}

    def key(name: str) -> tuple[int, float, str]:
        if name in index:
            return (0, index[name], name)
        if name.startswith("class ") and name[6:].isdigit():
            return (1, int(name[6:]), name)
        return (2, 0, name)

    return key


def _top_k_per_class(labels: np.ndarray, scores: np.ndarray, top_k: int | None) -> np.ndarray:
    """Indices of the :obj:`top_k` highest-scoring predictions of each class."""
    if top_k is None or len(scores) == 0:
        return np.arange(len(scores))
    order = np.lexsort((-scores, labels))  # by class, then score descending
    lab = labels[order]
    first = np.r_[True, lab[1:] != lab[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(lab)), 0))
    rank = np.arange(len(lab)) - start
    return np.sort(order[rank < top_k])


def _lanes(segments: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Greedy interval packing (best score first) of one class's predictions into lanes."""
    lane = np.zeros(len(scores), dtype=np.int64)
    ends: list[float] = []
    for i in np.argsort(-scores, kind="stable"):  # at most top_k items: plotting, not a hot path
        s, e = segments[i]
        free = [j for j, end in enumerate(ends) if end <= s]
        if free:
            lane[i] = free[0]
            ends[free[0]] = e
        elif len(ends) < MAX_LANES:
            lane[i] = len(ends)
            ends.append(e)
        else:
            lane[i] = MAX_LANES - 1
            ends[-1] = max(ends[-1], e)
    return lane


def plot_timeline(
    gt_segments: Any = None,
    gt_labels: Any = None,
    pred_segments: Any = None,
    pred_labels: Any = None,
    pred_scores: Any = None,
    *,
    duration: float | None = None,
    class_names: Sequence[str] | None = None,
    top_k: int | None = 20,
    max_classes: int | None = 10,
    cas: Any = None,
    cas_times: Any = None,
    cas_classes: Sequence[int | str] | None = None,
    cas_predicted: Sequence[int | str] | None = None,
    cas_normalize: str = "class",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    r"""Timeline of one video: ground truth and predictions, one row per class.

    Each row shows the ground-truth instances of a class as a red bar on top and, below it, the
    :obj:`top_k` highest-scoring predictions of that class, coloured by score (colour bar on
    the right), packed into up to four sub-rows so that overlapping predictions stay visible
    (the best ones first). Classes with ground truth come first; classes with predictions only
    (false positives) follow by best score, up to :obj:`max_classes` rows in all.

    The colour map spans the shown scores' own range (given in the legend), so that scores
    that all lie within, say, 0.1-0.3 still use all its colours.

    With :obj:`cas`, a panel beneath (same time axis) draws the class activation sequence of a
    weakly-supervised model, one curve per class: the ground-truth classes (solid, over a light
    shading of that class's ground truth) and the top predicted classes (dashed), each labelled
    in the legend. By default each curve is min-max normalised over the video
    (:obj:`cas_normalize="class"`, the legend gives its raw range): one class with much larger
    activations then no longer flattens the others, and the curves show what the detectors'
    per-video, per-class ``normalize="minmax"`` thresholds see.

    Args:
        gt_segments (array-like or VideoAnnotation, optional): :obj:`[M, 2]` ground-truth
            (start, end) in seconds, or a :class:`~tagraph.io.VideoAnnotation` (then
            :obj:`gt_labels` must be :obj:`None`; its duration and id are used).
        gt_labels (array-like, optional): :obj:`[M]` class names or indices.
        pred_segments (array-like or Detections, optional): :obj:`[P, 2]` predicted
            (start, end) in seconds, or :class:`~tagraph.io.Detections` of this video (then
            :obj:`pred_labels` and :obj:`pred_scores` must be :obj:`None`).
        pred_labels (array-like, optional): :obj:`[P]` class names or indices.
        pred_scores (array-like, optional): :obj:`[P]` confidences.
        duration (float, optional): Video length in seconds: the time axis is
            :obj:`[0, duration]`. (default: :obj:`None`, the annotation's duration or the last
            time plotted)
        class_names (list[str], optional): Names of integer labels and CAS columns; also
            orders the rows. (default: :obj:`None`)
        top_k (int, optional): Predictions shown per class. (default: :obj:`20`,
            :obj:`None` for all)
        max_classes (int, optional): Most rows; classes with ground truth are always shown.
            (default: :obj:`10`, :obj:`None` for no limit)
        cas (array-like, optional): :obj:`[T, C]` (or :obj:`[T]`) class activation sequence.
        cas_times (array-like, optional): :obj:`[T]` times (s) of the CAS snippets.
            (default: :obj:`None`, :obj:`T` evenly spaced snippet centres over :obj:`duration`)
        cas_classes (list[int or str], optional): Exactly the CAS columns to draw (indices or
            names). (default: :obj:`None`, the ground-truth classes and the top predicted ones,
            see :obj:`cas_predicted`)
        cas_predicted (list[int or str], optional): The classes the model predicts for the
            video (e.g. its best video-level scores), drawn after the ground-truth classes.
            (default: :obj:`None`, the two best prediction-only rows of the timeline, else the
            two columns outside the ground truth with the highest peak; five without ground
            truth)
        cas_normalize (str, optional): :obj:`"class"`: every curve min-max rescaled to
            :obj:`[0, 1]` over the video; :obj:`"none"`: raw values. (default: :obj:`"class"`)
        title (str, optional): Title. (default: :obj:`None`, the video id when known)
        ax (matplotlib.axes.Axes, optional): Draw into these axes (colour bar and CAS panel
            are appended to them). (default: :obj:`None`, a new figure)

    Returns:
        matplotlib.figure.Figure: The figure (not shown; see :func:`save_figure`).
    """
    _require_matplotlib()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    video_id = None
    # --- inputs -------------------------------------------------------------------------------
    if isinstance(gt_segments, VideoAnnotation):
        if gt_labels is not None:
            raise ValueError("plot_timeline: gt_labels must be None when gt_segments is a "
                             "VideoAnnotation")
        ann = gt_segments
        video_id = ann.video_id
        if duration is None:
            duration = ann.duration
        gt_seg, gt_lab = ann.segments, np.asarray(ann.labels, dtype=str)
    elif gt_segments is None:
        gt_seg, gt_lab = np.zeros((0, 2)), np.empty(0, dtype=str)
    else:
        if gt_labels is None:
            raise ValueError("plot_timeline: gt_labels is required with gt_segments")
        gt_seg = _segments(gt_segments, "gt_segments")
        gt_lab = _names(gt_labels, class_names, "gt_labels")
    if isinstance(pred_segments, Detections):
        if pred_labels is not None or pred_scores is not None:
            raise ValueError("plot_timeline: pred_labels and pred_scores must be None when "
                             "pred_segments is Detections")
        vids = np.unique(pred_segments.video_id)
        if len(vids) > 1:
            raise ValueError(
                f"plot_timeline: the Detections hold {len(vids)} videos; select one with "
                "det[det.video_id == vid] or use plot_video"
            )
        if len(vids) == 1 and video_id is None:
            video_id = str(vids[0])
        pr_seg = pred_segments.segment
        pr_lab, pr_score = pred_segments.label.astype(str), pred_segments.score
    elif pred_segments is None:
        pr_seg, pr_lab, pr_score = np.zeros((0, 2)), np.empty(0, dtype=str), np.zeros(0)
    else:
        if pred_labels is None or pred_scores is None:
            raise ValueError("plot_timeline: pred_labels and pred_scores are required with "
                             "pred_segments")
        pr_seg = _segments(pred_segments, "pred_segments")
        pr_lab = _names(pred_labels, class_names, "pred_labels")
        pr_score = _numpy(pred_scores, np.float64).reshape(-1)
    if len(gt_lab) != len(gt_seg):
        raise ValueError(f"plot_timeline: {len(gt_seg)} gt_segments but {len(gt_lab)} gt_labels")
    if not len(pr_seg) == len(pr_lab) == len(pr_score):
        raise ValueError(
            f"plot_timeline: {len(pr_seg)} pred_segments, {len(pr_lab)} pred_labels and "
            f"{len(pr_score)} pred_scores must have the same length"
        )

    cas_arr = None
    if cas is not None:
        cas_arr = _numpy(cas, np.float64)
        if cas_arr.ndim == 1:
            cas_arr = cas_arr[:, None]
        if cas_arr.ndim != 2:
            raise ValueError(f"plot_timeline: cas must be [T, C] or [T], got {cas_arr.shape}")
    if duration is None:
        ends = [gt_seg[:, 1], pr_seg[:, 1]]
        if cas_times is not None:
            ends.append(_numpy(cas_times, np.float64).reshape(-1))
        ends_all = np.concatenate(ends)
        duration = float(ends_all.max()) if ends_all.size else 1.0
    duration = float(duration)
    if not duration > 0:
        raise ValueError(f"plot_timeline: duration must be positive, got {duration}")

    # --- rows: GT classes first, then prediction-only classes by best score -------------------
    keep = _top_k_per_class(pr_lab, pr_score, top_k)
    pr_seg, pr_lab, pr_score = pr_seg[keep], pr_lab[keep], pr_score[keep]
    key = _class_key(class_names)
    rows = sorted(set(gt_lab.tolist()), key=key)
    others = sorted(set(pr_lab.tolist()) - set(rows),
                    key=lambda c: (-pr_score[pr_lab == c].max(), key(c)))
    hidden = 0
    if max_classes is not None and len(rows) + len(others) > max_classes:
        n = max(max_classes - len(rows), 0)
        hidden = len(others) - n
        others = others[:n]
    rows += others
    row_of = {c: i for i, c in enumerate(rows)}
    shown = np.isin(pr_lab, rows)
    pr_seg, pr_lab, pr_score = pr_seg[shown], pr_lab[shown], pr_score[shown]

    # --- figure ------------------------------------------------------------------------------
    row_in = 0.5
    n_rows = max(len(rows), 1)
    own = ax is None
    if own:
        label_in = 0.25 + 0.075 * max([len(c) for c in rows] + [5])
        cas_in = 1.8 if cas_arr is not None else 0.0
        height = 0.8 + n_rows * row_in + cas_in + 0.6
        width = 11.0
        fig = _new_figure((width, height))
        right_in = 0.7 + (0.9 if cas_arr is not None else 0.0)  # colour bar ticks, CAS legend
        ax = fig.add_axes((label_in / width, 0.6 / height,
                           1 - (label_in + right_in) / width, 1 - 1.4 / height))
    else:
        fig = ax.figure
    divider = make_axes_locatable(ax)

    # Row i spans [i - 0.5, i + 0.5] (y axis inverted: row 0 on top). GT band on top, then
    # the prediction lanes.
    gt_top, gt_h = -0.42, 0.26
    pr_top, pr_h = -0.12, 0.54
    if len(gt_seg):
        y = np.array([row_of[c] for c in gt_lab.tolist()], dtype=np.float64)
        ax.barh(y + gt_top, gt_seg[:, 1] - gt_seg[:, 0], height=gt_h, left=gt_seg[:, 0],
                align="edge", color=GT_COLOR, edgecolor=GT_EDGE, linewidth=0.4, zorder=3)

    vmin, vmax = _score_range(pr_score)
    norm = Normalize(vmin=vmin, vmax=vmax)
    cmap = SCORE_CMAP
    if len(pr_seg):
        row = np.array([row_of[c] for c in pr_lab.tolist()], dtype=np.int64)
        lane = np.zeros(len(row), dtype=np.int64)
        n_lanes = np.ones(len(rows), dtype=np.int64)
        for r in np.unique(row):
            m = row == r
            lane[m] = _lanes(pr_seg[m], pr_score[m])
            n_lanes[r] = lane[m].max() + 1
        lane_h = pr_h / n_lanes[row]
        order = np.argsort(pr_score, kind="stable")  # best drawn last (on top)
        sm = ScalarMappable(norm=norm, cmap=cmap)
        ax.barh((row + pr_top + lane * lane_h)[order],
                (pr_seg[:, 1] - pr_seg[:, 0])[order], height=lane_h[order] * 0.9,
                left=pr_seg[order, 0], align="edge", color=sm.to_rgba(pr_score[order]),
                edgecolor="0.15", linewidth=0.3, zorder=2)

    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_xlim(0.0, duration)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(rows)
    gt_classes = set(gt_lab.tolist())
    for tick, c in zip(ax.get_yticklabels(), rows):
        if c not in gt_classes:  # prediction-only classes (false positives) in grey
            tick.set_color("0.45")
    ax.tick_params(axis="y", length=0)
    for r in range(1, len(rows)):
        ax.axhline(r - 0.5, color="0.85", linewidth=0.8, zorder=1)
    ax.grid(axis="x", color="0.92", zorder=0)
    ax.set_axisbelow(True)
    if not rows:
        ax.text(0.5, 0.5, "no ground truth and no predictions", transform=ax.transAxes,
                ha="center", va="center", color="0.4")

    has_pred = len(pr_seg) > 0
    handles = [Patch(facecolor=GT_COLOR, edgecolor=GT_EDGE, linewidth=0.4, label="ground truth")]
    if has_pred:
        shown_k = f", top {top_k} per class" if top_k is not None else ""
        lo, hi = float(pr_score.min()), float(pr_score.max())
        span = f"{lo:.2g}" if lo == hi else f"{lo:.2g} to {hi:.2g}"
        handles.append(Patch(facecolor=_cmap(cmap)(0.6), edgecolor="0.15", linewidth=0.3,
                             label=f"predictions (colour = score, {span}{shown_k})"))
    if hidden:
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label=f"+{hidden} classes with predictions only, not shown"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(handles),
              frameon=False, fontsize="small", borderaxespad=0.1, handlelength=1.5)
    if title is None:
        title = video_id
    if title:
        ax.set_title(title, loc="left", fontsize="medium", pad=20)  # above the legend

    if has_pred:
        bar = divider.append_axes("right", size=0.15, pad=0.1)
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=bar, label="score")

    if cas_arr is not None:
        _cas_panel(ax, divider, cas_arr, cas_times, cas_classes, cas_predicted, cas_normalize,
                   class_names, rows, own, gt_seg, gt_lab, duration)
    else:
        ax.set_xlabel("time (s)")
    return fig


def _score_range(scores: np.ndarray) -> tuple[float, float]:
    """Colour-map limits: the scores' own range (a window of 0.1 around a single value), so
    that scores all within 0.1-0.3 still span the whole colour map."""
    if len(scores) == 0:
        return 0.0, 1.0
    lo, hi = float(scores.min()), float(scores.max())
    if not hi - lo > 1e-9 * max(1.0, abs(hi)):
        return lo - 0.05, hi + 0.05
    return lo, hi


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def _cas_column(c: int | str, column: dict[str, int], C: int, what: str) -> int:
    if isinstance(c, str):
        if c not in column:
            raise ValueError(f"plot_timeline: {what}: unknown class {c!r}")
        return column[c]
    if not 0 <= int(c) < C:
        raise ValueError(f"plot_timeline: {what}: column {c} out of range for a CAS with {C} "
                         "columns")
    return int(c)


def _cas_panel(
    ax: Axes,
    divider: Any,
    cas: np.ndarray,
    cas_times: Any,
    cas_classes: Sequence[int | str] | None,
    cas_predicted: Sequence[int | str] | None,
    cas_normalize: str,
    class_names: Sequence[str] | None,
    rows: list[str],
    own: bool,
    gt_seg: np.ndarray,
    gt_lab: np.ndarray,
    duration: float,
) -> None:
    from matplotlib.patches import Patch

    T, C = cas.shape
    if cas_normalize not in ("class", "none"):
        raise ValueError(f"plot_timeline: cas_normalize must be 'class' or 'none', got "
                         f"{cas_normalize!r}")
    if cas_times is None:
        times = (np.arange(T) + 0.5) * (duration / T)
    else:
        times = _numpy(cas_times, np.float64).reshape(-1)
        if len(times) != T:
            raise ValueError(f"plot_timeline: {T} CAS snippets but {len(times)} cas_times")
    names = (list(class_names) if class_names is not None and len(class_names) == C
             else [f"class {c}" for c in range(C)] if C > 1 else ["activation"])
    if class_names is not None and len(class_names) != C and C > 1:
        raise ValueError(f"plot_timeline: cas has {C} columns but class_names has "
                         f"{len(class_names)} names")
    column = {n: i for i, n in enumerate(names)}
    gt_classes = set(gt_lab.tolist())
    role: dict[int, str] = {}  # column -> "GT" / "predicted" / ""
    if cas_classes is None:
        for c in rows:
            if c in column and c in gt_classes:
                role[column[c]] = "GT"
        if cas_predicted is not None:
            extra = [_cas_column(c, column, C, "cas_predicted") for c in cas_predicted]
        else:  # the prediction-only rows of the timeline (by best score), else the CAS peaks
            extra = [column[c] for c in rows if c in column and c not in gt_classes]
            if not extra:
                extra = np.argsort(-cas.max(axis=0), kind="stable").tolist()
            extra = [c for c in extra if c not in role][:CAS_TOP_PREDICTED if role else 5]
        for c in extra:
            role.setdefault(c, "predicted")
        if not role:
            role = {c: "" for c in np.argsort(-cas.max(axis=0), kind="stable")[:5].tolist()}
    else:
        for c in cas_classes:
            col = _cas_column(c, column, C, "cas_classes")
            role.setdefault(col, "GT" if names[col] in gt_classes else "")
    cols = list(role)[:10]

    # our own figure reserved 1.8 in for the panel; in user axes it takes a third of them
    cax = divider.append_axes("bottom", size=1.6 if own else "50%", pad=0.25, sharex=ax)
    colors = _cmap("tab10")
    for j, c in enumerate(cols):
        color = colors(j % 10)
        y = cas[:, c]
        label = names[c] + (f" ({role[c]})" if role[c] else "")
        if cas_normalize == "class":
            lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
            y = (y - lo) / (hi - lo) if hi > lo else np.full_like(y, 0.5)
            label += f"\nraw {lo:.3g} to {hi:.3g}"
        cax.plot(times, y, color=color, linewidth=1.2, label=label,
                 linestyle="-" if role[c] == "GT" else "--")
        for s, e in gt_seg[gt_lab == names[c]]:
            cax.axvspan(s, e, color=color, alpha=0.12, linewidth=0)
    ax.tick_params(axis="x", labelbottom=False)
    cax.set_xlim(0.0, duration)
    cax.set_xlabel("time (s)")
    if cas_normalize == "class":
        cax.set_ylim(-0.05, 1.05)
        cax.set_yticks([0.0, 0.5, 1.0])
        cax.set_ylabel("CAS (min-max\nper class)")
    else:
        cax.set_ylabel("CAS")
    cax.grid(color="0.92")
    if cols:
        handles, _ = cax.get_legend_handles_labels()
        if any(role[c] == "GT" for c in cols):
            handles.append(Patch(facecolor="0.55", alpha=0.3, linewidth=0,
                                 label="ground truth\n(shaded, line colour)"))
        cax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                   fontsize="x-small", frameon=False)


def plot_video(
    gt: VideoAnnotation | Mapping[str, Any] | str | os.PathLike | None,
    predictions: Detections | Mapping[str, Any] | str | os.PathLike | None,
    video_id: str,
    **kwargs: Any,
) -> Figure:
    r"""Timeline of one video from whole ground-truth and results files, see
    :func:`plot_timeline` (also the function behind ``tagraph plot``).

    Args:
        gt (VideoAnnotation, dict, str or os.PathLike, optional): Ground truth: an ActivityNet
            annotation file, its parsed content, ``{video_id: VideoAnnotation}``, or the
            video's :class:`~tagraph.io.VideoAnnotation`.
        predictions (Detections, dict, str or os.PathLike, optional): Results: an ActivityNet
            results file, its parsed content, or :class:`~tagraph.io.Detections` (any videos).
        video_id (str): Video to plot.
        **kwargs: Passed to :func:`plot_timeline` (:obj:`top_k`, :obj:`cas`, :obj:`title`, ...).

    Raises:
        ValueError: The video is in neither the ground truth nor the predictions.
    """
    _require_matplotlib()
    ann = None
    if isinstance(gt, VideoAnnotation):
        if gt.video_id != video_id:
            raise ValueError(f"plot_video: the VideoAnnotation is of video '{gt.video_id}', "
                             f"not '{video_id}'")
        ann = gt
    elif gt is not None:
        annotations = load_annotations(gt)
        ann = annotations.get(video_id)
    det = None
    if predictions is not None:
        det = load_results(predictions)
        det = det[det.video_id == video_id]
    if ann is None and (det is None or len(det) == 0):
        where = [str(x) for x, y in ((gt, ann), (predictions, det))
                 if x is not None and not isinstance(x, (Mapping, VideoAnnotation, Detections))]
        src = f" ({', '.join(where)})" if where else ""
        raise ValueError(f"plot_video: video '{video_id}' is in neither the ground truth nor "
                         f"the predictions{src}")
    if kwargs.get("title") is None:
        kwargs["title"] = video_id
    return plot_timeline(ann, None, det, **kwargs)


def _curve(result: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(result, Mapping):
        if "tiou" not in result or "mAP" not in result:
            raise ValueError(f"plot_map_vs_tiou: result '{name}' needs keys 'tiou' and 'mAP', "
                             f"got {sorted(result)}")
        tiou, m = result["tiou"], result["mAP"]
    elif hasattr(result, "tiou_thresholds") and hasattr(result, "mAP"):
        tiou, m = result.tiou_thresholds, result.mAP
    else:
        raise TypeError(f"plot_map_vs_tiou: result '{name}' must be a DetectionResult or a dict "
                        f"with 'tiou' and 'mAP', got {type(result).__name__}")
    tiou = _numpy(tiou, np.float64).reshape(-1)
    m = _numpy(m, np.float64).reshape(-1)
    if len(tiou) != len(m):
        raise ValueError(f"plot_map_vs_tiou: result '{name}': {len(tiou)} tIoU thresholds but "
                         f"{len(m)} mAP values")
    return tiou, m


def plot_map_vs_tiou(
    results: Any,
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    r"""mAP (%) as a function of the tIoU threshold, one line per method.

    Args:
        results (dict[str, DetectionResult or dict] or one of them): Evaluation results by
            method name: :class:`~tagraph.evaluation.DetectionResult` objects (anything with
            :obj:`tiou_thresholds` and :obj:`mAP`) or their :meth:`to_dict` form
            ``{"tiou": [...], "mAP": [...]}`` (mAP as fractions in :obj:`[0, 1]`).
        title (str, optional): Title. (default: :obj:`None`)
        ax (matplotlib.axes.Axes, optional): Draw into these axes. (default: :obj:`None`,
            a new figure)

    Returns:
        matplotlib.figure.Figure: The figure.
    """
    _require_matplotlib()
    single = not isinstance(results, Mapping) or ("tiou" in results and "mAP" in results)
    named = {"": results} if single else dict(results)
    if ax is None:
        fig = _new_figure((6.0, 4.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    markers = "osD^v<>p*h"
    all_t = []
    for i, (name, res) in enumerate(named.items()):
        tiou, m = _curve(res, str(name))
        order = np.argsort(tiou)
        avg = 100 * float(m.mean()) if len(m) else float("nan")
        label = f"{name} (avg {avg:.1f})" if name else f"avg {avg:.1f}"
        ax.plot(tiou[order], 100 * m[order], marker=markers[i % len(markers)], markersize=4,
                linewidth=1.5, label=label)
        all_t.append(tiou)
    ticks = np.unique(np.round(np.concatenate(all_t), 4)) if all_t else np.zeros(0)
    if 0 < len(ticks) <= 12:
        ax.set_xticks(ticks)
    ax.set_xlabel("tIoU threshold")
    ax.set_ylabel("mAP (%)")
    ax.set_ylim(bottom=0)
    ax.grid(color="0.9")
    if named:
        ax.legend(fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    if len(fig.axes) == 1 and fig.get_layout_engine() is None:
        fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> None:
    r"""Write :obj:`fig` to :obj:`path` atomically (temporary file, then :func:`os.replace`).

    The format follows the suffix: ``.png`` (also when there is none), ``.pdf`` or ``.svg``;
    another suffix is an error.

    Args:
        fig (matplotlib.figure.Figure): The figure.
        path (str or os.PathLike): Destination file; its folder must exist.
        dpi (int, optional): Resolution of raster output. (default: :obj:`150`)
    """
    _require_matplotlib()
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"save_figure: {path}: unsupported format '{fmt}' (png, pdf or svg)")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight", facecolor="white")
