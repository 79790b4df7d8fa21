r"""Detection mAP, numerically identical to the official ActivityNet evaluator, and fast."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tagraph.evaluation.checks import InputReport, check_inputs, warn_inputs
from tagraph.io import Detections, VideoAnnotation, load_ambiguous, load_annotations, load_results
from tagraph.io.activitynet import _name, _select_subset

__all__ = [
    "ACTIVITYNET_TIOU",
    "THUMOS14_TIOU",
    "DetectionResult",
    "detection_map",
    "filter_ambiguous",
]

#: ActivityNet 1.3 thresholds, exactly the official default ``np.linspace(0.5, 0.95, 10)``.
ACTIVITYNET_TIOU: np.ndarray = np.linspace(0.5, 0.95, 10)
#: THUMOS14 thresholds 0.1:0.1:0.7 (recent papers also quote the 0.3:0.7 average, see
#: :meth:`DetectionResult.average_mAP_over`).
THUMOS14_TIOU: np.ndarray = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])

GroundTruthLike = str | os.PathLike | Mapping[str, Any]
PredictionsLike = str | os.PathLike | Mapping[str, Any] | Detections


@dataclass
class DetectionResult:
    r"""Average precision per class and tIoU threshold.

    Attributes:
        labels (list[str]): Class names (order of first appearance in the ground truth of the
            evaluated subset, as in the official evaluator).
        tiou_thresholds (numpy.ndarray): :obj:`[T]` thresholds.
        ap (numpy.ndarray): :obj:`[T, C]` average precision.
        mAP (numpy.ndarray): :obj:`[T]` mean over classes.
        average_mAP (float): Mean of :obj:`mAP` over thresholds.
        num_gt (numpy.ndarray): :obj:`[C]` ground-truth instances per class.
        num_predictions (int): Predictions scored (after ambiguous filtering).
        num_positive_videos (int): "Positive" videos: those of the evaluated subset with at
            least one ground-truth instance.
        num_positive_videos_with_predictions (int): Positive videos with at least one
            prediction (after ambiguous filtering, any label). Predictions on other videos are
            scored (as false positives) but cover nothing.
        num_prediction_videos (int): Distinct videos of the predictions (before ambiguous
            filtering).
        num_prediction_videos_matched (int): Of those, videos of the evaluated ground truth
            (the subset, with or without instances).
    """

    labels: list[str]
    tiou_thresholds: np.ndarray
    ap: np.ndarray
    mAP: np.ndarray
    average_mAP: float
    num_gt: np.ndarray
    num_predictions: int
    num_positive_videos: int = 0
    num_positive_videos_with_predictions: int = 0
    num_prediction_videos: int = 0
    num_prediction_videos_matched: int = 0

    @property
    def num_positive_videos_without_predictions(self) -> int:
        r"""Positive videos (with ground truth) without any prediction."""
        return self.num_positive_videos - self.num_positive_videos_with_predictions

    def coverage(self) -> dict[str, int]:
        r"""How many positive videos received predictions: ``{"positive_videos",
        "positive_videos_with_predictions", "positive_videos_without_predictions",
        "predictions"}`` (not part of :meth:`to_dict`)."""
        return {
            "positive_videos": self.num_positive_videos,
            "positive_videos_with_predictions": self.num_positive_videos_with_predictions,
            "positive_videos_without_predictions": self.num_positive_videos_without_predictions,
            "predictions": self.num_predictions,
        }

    def average_mAP_over(self, low: float, high: float) -> float:
        r"""Mean mAP over the thresholds in ``[low, high]`` (e.g. THUMOS14's 0.3:0.7)."""
        sel = (self.tiou_thresholds >= low - 1e-9) & (self.tiou_thresholds <= high + 1e-9)
        if not sel.any():
            raise ValueError(f"no tIoU threshold in [{low}, {high}]")
        return float(self.mAP[sel].mean())

    def to_dict(self) -> dict[str, Any]:
        r"""``{"tiou": [...], "mAP": [...], "average_mAP": x, "per_class": {label: [ap]}}``."""
        return {
            "tiou": [float(t) for t in self.tiou_thresholds],
            "mAP": [float(m) for m in self.mAP],
            "average_mAP": float(self.average_mAP),
            "per_class": {
                label: [float(a) for a in self.ap[:, c]] for c, label in enumerate(self.labels)
            },
        }

    def table(self, per_class: bool = False) -> str:
        r"""A plain-text table of mAP (%) per threshold; with :obj:`per_class`, AP per class."""
        thr = [f"{t:.2f}" for t in self.tiou_thresholds]
        extra: list[tuple[str, float]] = [("avg", self.average_mAP)]
        if (
            len(self.tiou_thresholds) > 5
            and np.isclose(self.tiou_thresholds, 0.3).any()
            and np.isclose(self.tiou_thresholds, 0.7).any()
            and not np.isclose(self.tiou_thresholds.min(), 0.3)
        ):
            extra.append(("avg0.3:0.7", self.average_mAP_over(0.3, 0.7)))
        head = ["tIoU", *thr, *[name for name, _ in extra]]
        rows = [["mAP (%)", *[f"{100 * m:.2f}" for m in self.mAP],
                 *[f"{100 * v:.2f}" for _, v in extra]]]
        if per_class:
            for c, label in enumerate(self.labels):
                rows.append([label, *[f"{100 * a:.2f}" for a in self.ap[:, c]],
                             f"{100 * self.ap[:, c].mean():.2f}", *[""] * (len(extra) - 1)])
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = [h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))]
        lines = ["  ".join(fmt), "  ".join("-" * w for w in widths)]
        for r in rows:
            lines.append("  ".join(
                v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))
            ).rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(classes={len(self.labels)}, "
            f"tiou={[round(float(t), 4) for t in self.tiou_thresholds]}, "
            f"average_mAP={self.average_mAP:.4f})"
        )


# ---------------------------------------------------------------------------------------------
# input normalisation
# ---------------------------------------------------------------------------------------------


def _thresholds(tiou_thresholds: Iterable[float] | float) -> np.ndarray:
    thr = np.atleast_1d(np.asarray(tiou_thresholds, dtype=np.float64)).reshape(-1)
    if thr.size == 0:
        raise ValueError("tiou_thresholds must not be empty")
    if not np.isfinite(thr).all() or (thr < 0).any() or (thr > 1).any():
        raise ValueError(f"tiou_thresholds must lie in [0, 1], got {thr.tolist()}")
    return thr


def _ground_truth(
    ground_truth: GroundTruthLike, subset: str | None
) -> tuple[dict[str, VideoAnnotation], dict[str, VideoAnnotation], set[str]]:
    """The whole ground truth, the subset's and the taxonomy (labels of all subsets)."""
    everything = load_annotations(ground_truth)
    taxonomy = {label for ann in everything.values() for label in ann.labels}
    gt = everything if subset is None else _select_subset(everything, subset, _name(ground_truth))
    return everything, gt, taxonomy


def _flatten_gt(
    gt: Mapping[str, VideoAnnotation],
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """GT in file order: class names (first appearance), video names, per-instance codes."""
    vids = [vid for vid, ann in gt.items() if len(ann)]
    if not vids:
        return [], np.empty(0, "<U1"), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(
            (0, 2)
        )
    labels_flat = np.concatenate([np.asarray(gt[v].labels, dtype=str) for v in vids])
    seg = np.concatenate([gt[v].segments for v in vids])
    counts = np.fromiter((len(gt[v]) for v in vids), dtype=np.int64, count=len(vids))
    names, first, cls = np.unique(labels_flat, return_index=True, return_inverse=True)
    # official class order = order of first appearance
    by_first = np.argsort(first, kind="stable")
    relabel = np.empty_like(by_first)
    relabel[by_first] = np.arange(len(by_first))
    labels = names[by_first].tolist()
    vid_names = np.asarray(vids, dtype=str)
    vid_code = np.repeat(np.arange(len(vids)), counts)
    return labels, vid_names, vid_code, relabel[cls.reshape(-1)], seg


def _codes(values: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Index of each value in ``names`` (any order), -1 when absent.

    Looks up runs of equal consecutive values once (predictions usually come grouped by video),
    which is much faster than a string search per element.
    """
    if len(names) == 0 or len(values) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    heads = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    run_values = values[heads]
    order = np.argsort(names)
    sorted_names = names[order]
    pos = np.searchsorted(sorted_names, run_values).clip(max=len(names) - 1)
    code = np.where(sorted_names[pos] == run_values, order[pos], -1)
    return np.repeat(code, np.diff(heads, append=len(values)))


def filter_ambiguous(
    detections: Detections,
    ambiguous: str | os.PathLike | Mapping[str, Any],
) -> Detections:
    r"""Drop detections that overlap an ambiguous interval of their video.

    Following W-TALC's ``filter_segments`` (used by W-TALC, ISSF and most weakly supervised
    THUMOS14 codes with ``Ambiguous_test.txt``), a detection is dropped when it shares any time
    with an ambiguous interval of the same video, whatever its class: the intersection length
    :math:`\min(e, e') - \max(s, s')` is positive. (W-TALC tests the same on its 16-frame
    snippet grid at 25 fps; in seconds the test is exact instead of quantised to 0.64 s.)

    Args:
        detections (Detections): Detections to filter.
        ambiguous (str, os.PathLike or dict): ``Ambiguous_test.txt`` path or
            ``{video_id: [[start, end], ...]}``.

    Returns:
        Detections: The kept detections, in their original order.
    """
    amb = load_ambiguous(ambiguous)
    if not amb or not len(detections):
        return detections
    names = np.asarray(list(amb), dtype=str)
    counts = np.fromiter((len(v) for v in amb.values()), dtype=np.int64, count=len(amb))
    segs = np.concatenate(list(amb.values())).reshape(-1, 2)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    code = _codes(detections.video_id, names)
    (rows,) = np.nonzero(code >= 0)
    m = counts[code[rows]]
    pair_det = np.repeat(rows, m)
    offs = np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m)
    pair_amb = np.repeat(starts[code[rows]], m) + offs
    d = detections.segment[pair_det]
    a = segs[pair_amb]
    overlap = np.minimum(d[:, 1], a[:, 1]) - np.maximum(d[:, 0], a[:, 0]) > 0
    drop = np.zeros(len(detections), dtype=bool)
    drop[pair_det[overlap]] = True
    return detections[~drop]


# ---------------------------------------------------------------------------------------------
# the evaluator
# ---------------------------------------------------------------------------------------------


def _load_inputs(ground_truth: Any, predictions: Any, subset: str | None, ambiguous: Any
                 ) -> tuple[dict[str, VideoAnnotation], Detections, list[str], np.ndarray,
                            np.ndarray, np.ndarray, np.ndarray, np.ndarray, InputReport]:
    r"""Ground truth and predictions as :func:`detection_map` reads them: the
    subset's ground truth, the predictions (ambiguous intervals filtered), the subset's
    class labels and video names, the flattened ground truth (video, class code, segment)
    and each prediction's class code (-1: a taxonomy class without ground truth in the
    subset) and the :func:`~tagraph.evaluation.checks.check_inputs` report, whose messages
    are warned (:class:`~tagraph.evaluation.EvaluationInputWarning`). A label outside the
    taxonomy is an error naming the video and row. Shared by :func:`detection_map` and
    :func:`~tagraph.evaluation.analyze_detections`."""
    everything, gt, taxonomy = _ground_truth(ground_truth, subset)
    if isinstance(predictions, Detections):
        det = load_results(predictions)  # taxonomy checked below, on class codes (faster)
        pred_name = "<Detections>"
    else:
        det = load_results(predictions, taxonomy=taxonomy)
        pred_name = _name(predictions)
    labels, vid_names, gt_vid, gt_cls, gt_seg = _flatten_gt(gt)
    if not labels:
        raise ValueError(
            f"{_name(ground_truth)}: the ground truth has no annotated instance"
            + (f" in subset '{subset}'" if subset is not None else "")
        )
    report = check_inputs(everything, gt, det, subset, _name(ground_truth), pred_name)
    warn_inputs(report, stacklevel=3)
    if ambiguous is not None:
        det = filter_ambiguous(det, ambiguous)
    p_cls = _codes(det.label, np.asarray(labels, dtype=str))
    if (p_cls < 0).any():
        (rows,) = np.nonzero(p_cls < 0)
        unknown = ~np.isin(det.label[rows], np.asarray(sorted(taxonomy), dtype=str))
        if unknown.any():
            row = int(rows[np.argmax(unknown)])
            raise ValueError(
                f"<Detections>: video '{det.video_id[row]}' row {row}: label: label "
                f"{str(det.label[row])!r} is not in the ground-truth taxonomy "
                f"({len(taxonomy)} classes)"
            )
    return gt, det, labels, vid_names, gt_vid, gt_cls, gt_seg, p_cls, report


def detection_map(
    ground_truth: GroundTruthLike,
    predictions: PredictionsLike,
    tiou_thresholds: Iterable[float] | float = ACTIVITYNET_TIOU,
    subset: str | None = None,
    ambiguous: str | os.PathLike | Mapping[str, Any] | None = None,
) -> DetectionResult:
    r"""Interpolated average precision of temporal detections, per class and tIoU threshold.

    Gives the same numbers as the official ActivityNet evaluator
    (`Evaluation/eval_detection.py <https://github.com/activitynet/ActivityNet>`_), which
    THUMOS14 codes (ActionFormer, OpenTAD, W-TALC, ...) also use. For every class :math:`c` of
    the ground truth of :obj:`subset`, the predictions of class :math:`c` are ranked with the
    official rule ``np.argsort(scores)[::-1]`` (descending score; ties in the order numpy's
    default sort leaves them, reversed). Each prediction, in rank order and separately for
    every threshold :math:`\theta`, matches the not yet matched ground-truth instance of class
    :math:`c` in the same video with the highest tIoU, if that tIoU is :math:`\geq \theta`
    (instances ranked by ``np.argsort(tiou)[::-1]``); otherwise it is a false positive, as are
    predictions on videos without ground truth of class :math:`c` (including videos outside the
    subset or unknown). With :math:`P_k, R_k` the precision and recall of the top :math:`k`,

    .. math::
        \mathrm{AP}_c(\theta) = \sum_k (R_k - R_{k-1}) \max_{k' \geq k} P_{k'},

    summed where the recall changes (VOC interpolation), :math:`\mathrm{mAP}(\theta)` is the
    mean over classes (a class without predictions has AP 0) and :attr:`average_mAP` the mean
    over thresholds.

    The greedy matching runs in lock-step: the :math:`k`-th candidate prediction of every
    (class, video) group at once, vectorised over groups and thresholds, so the Python loop
    has as many iterations as the largest group, not one per prediction.

    Args:
        ground_truth (str, os.PathLike or dict): ActivityNet GT JSON path, its parsed content,
            or ``{video_id: VideoAnnotation}``.
        predictions (str, os.PathLike, dict or Detections): Results JSON path, its parsed
            content, or :class:`~tagraph.io.Detections`. Labels must belong to the GT taxonomy
            (all subsets); labels without ground truth in :obj:`subset` are not scored.
        tiou_thresholds (Iterable[float], optional): Thresholds in ``[0, 1]``, e.g.
            :data:`ACTIVITYNET_TIOU` or :data:`THUMOS14_TIOU`. (default: :data:`ACTIVITYNET_TIOU`)
        subset (str, optional): Evaluate the videos of this subset (case-insensitive); the
            classes are those present in its ground truth. (default: :obj:`None`, all videos)
        ambiguous (str, os.PathLike or dict, optional): Ambiguous intervals
            (W-TALC's ``Ambiguous_test.txt``); overlapping predictions are dropped first, see
            :func:`filter_ambiguous`. (default: :obj:`None`)

    Returns:
        DetectionResult: :obj:`.labels`, :obj:`.ap` :obj:`[T, C]`, :obj:`.mAP` :obj:`[T]`,
        :obj:`.average_mAP`, :obj:`.to_dict()`, a table via :obj:`str()`.

    Raises:
        ValueError: Invalid inputs (see :mod:`tagraph.io.activitynet`: duplicate video ids,
            booleans as scores, NaN / inverted / negative segments, unknown labels, a subset
            absent from the ground truth, ...); the message names the file, video and field.

    Warns:
        EvaluationInputWarning: Valid inputs that probably give a wrong number (see
            :func:`~tagraph.evaluation.checks.check_inputs`): prediction videos absent from the
            ground truth (with a ``v_`` prefix hint), predictions ending beyond the video
            durations, several subsets and no :obj:`subset`, no predictions, ground-truth
            videos without predictions. The numbers are computed all the same.
    """
    thr = _thresholds(tiou_thresholds)
    _, det, labels, vid_names, gt_vid, gt_cls, gt_seg, p_cls, report = _load_inputs(
        ground_truth, predictions, subset, ambiguous)
    p_vid = _codes(det.video_id, vid_names)
    ap, num_gt = _average_precision(
        gt_vid, gt_cls, gt_seg, len(vid_names), len(labels),
        p_vid, p_cls, det.score, det.segment, thr,
    )
    mAP = ap.mean(axis=1)
    covered = int(np.count_nonzero(np.bincount(p_vid[p_vid >= 0], minlength=len(vid_names))))
    return DetectionResult(labels, thr, ap, mAP, float(mAP.mean()), num_gt.astype(np.int64),
                           len(det), len(vid_names), covered, report.prediction_videos,
                           report.matched_videos)


def _official_tiou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    # Same float operations, in the same order, as the official ``segment_iou`` (0/0 -> NaN,
    # which the official matching treats as a match ranked first); row-aligned pairs.
    inter = (np.minimum(pred[:, 1], gt[:, 1]) - np.maximum(pred[:, 0], gt[:, 0])).clip(0)
    union = (gt[:, 1] - gt[:, 0]) + (pred[:, 1] - pred[:, 0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _group_pairs(
    starts: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For items with ranges [start, start + count): (item index, position) of every pair."""
    item = np.repeat(np.arange(len(counts)), counts)
    offs = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return item, np.repeat(starts, counts) + offs


def _average_precision(
    gt_vid: np.ndarray,
    gt_cls: np.ndarray,
    gt_seg: np.ndarray,
    num_videos: int,
    num_classes: int,
    p_vid: np.ndarray,
    p_cls: np.ndarray,
    score: np.ndarray,
    seg: np.ndarray,
    thr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    T, C = len(thr), num_classes
    # Predictions of classes without GT in the subset are not scored (official: KeyError).
    keep = p_cls >= 0
    if not keep.all():
        p_vid, p_cls, score, seg = p_vid[keep], p_cls[keep], score[keep], seg[keep]
    P = len(score)

    # 1) Per class, the official ranking: np.argsort(scores_of_class_in_file_order)[::-1].
    by_cls = np.argsort(p_cls, kind="stable")
    bounds = np.searchsorted(p_cls[by_cls], np.arange(C + 1))
    ranked = np.empty(P, dtype=np.int64)  # class-major, official order within class
    for c in range(C):
        a, b = bounds[c], bounds[c + 1]
        if b > a:
            idx = by_cls[a:b]
            ranked[a:b] = idx[np.argsort(score[idx])[::-1]]
    rank = np.empty(P, dtype=np.int64)
    rank[ranked] = np.arange(P)
    num_gt = np.bincount(gt_cls, minlength=C).astype(np.float64)

    tp = _match(gt_vid, gt_cls, gt_seg, num_videos, p_vid, p_cls, seg, ranked, rank, thr)

    # 6) AP per class with the official float operations. Recall only changes at true
    # positives, so the official sum  sum_k (R_k - R_{k-1}) * max_{k' >= k} P_k'  has a
    # non-zero term at each TP (and a trailing (1 - R_last) * 0 term when R_last != 1); the
    # interpolated precision at a TP is the max of the precisions at the TPs from there on.
    # Sums run per (threshold, class) over the same terms, in the same order, as the official
    # ``np.sum``, so the results are bit-identical.
    counts = np.diff(bounds)
    t_i, col = np.nonzero(tp[:, ranked])  # row-major: threshold, class, rank
    cls = np.searchsorted(bounds, col, side="right") - 1
    seg_id = t_i * C + cls
    heads = np.flatnonzero(np.diff(seg_id, prepend=-1))
    n_tp = np.diff(heads, append=len(seg_id))
    tp_cum = (np.arange(len(seg_id)) - np.repeat(heads, n_tp) + 1).astype(np.float64)
    npos = num_gt[cls]
    prec = tp_cum / (col - bounds[cls] + 1).astype(np.float64)
    # exact segmented suffix max: integer ranks of the precisions plus a segment offset
    uniq, prec_rank = np.unique(prec, return_inverse=True)
    key = (len(seg_id) - 1 - np.repeat(np.arange(len(heads)), n_tp)) * len(uniq) + prec_rank
    key = np.maximum.accumulate(key[::-1])[::-1]
    mprec = uniq[key % max(len(uniq), 1)] if len(uniq) else prec
    terms = (tp_cum / npos - (tp_cum - 1.0) / npos) * mprec
    ap = np.zeros((T, C))
    total = np.zeros(T * C, dtype=np.int64)
    total[seg_id[heads]] = n_tp
    has_pred = np.tile(counts > 0, T)
    trailing = has_pred & (total != np.tile(num_gt, T))  # R_last != 1: one more 0.0 term
    start_of = np.zeros(T * C, dtype=np.int64)
    start_of[seg_id[heads]] = heads
    flat = ap.reshape(-1)
    for s in np.nonzero(has_pred)[0]:
        piece = terms[start_of[s]:start_of[s] + total[s]]
        flat[s] = np.sum(np.append(piece, 0.0) if trailing[s] else piece)
    return ap, num_gt


def _match(
    gt_vid: np.ndarray,
    gt_cls: np.ndarray,
    gt_seg: np.ndarray,
    num_videos: int,
    p_vid: np.ndarray,
    p_cls: np.ndarray,
    seg: np.ndarray,
    ranked: np.ndarray,
    rank: np.ndarray,
    thr: np.ndarray,
) -> np.ndarray:
    """Greedy official matching; returns the true-positive mask [T, P]."""
    T, P, G = len(thr), len(rank), len(gt_cls)
    tp = np.zeros((T, P), dtype=bool)
    if P == 0 or G == 0:
        return tp
    thr_min = float(thr.min())

    # 2) (class, video) groups of GT; file order inside a group (the official row order).
    gkey = gt_cls * num_videos + gt_vid
    gorder = np.argsort(gkey, kind="stable")
    ukey, gstart, gcount = np.unique(gkey[gorder], return_index=True, return_counts=True)
    pos_in_group = np.empty(G, dtype=np.int64)
    pos_in_group[gorder] = np.arange(G) - np.repeat(gstart, gcount)
    pkey = np.where(p_vid >= 0, p_cls * num_videos + p_vid, -1)
    gi = np.searchsorted(ukey, pkey).clip(max=len(ukey) - 1)
    (cand,) = np.nonzero((p_vid >= 0) & (ukey[gi] == pkey))
    if len(cand) == 0:
        return tp
    cg = gi[cand]

    # 3) Pairs (prediction, GT of its group) that can match: tIoU >= min threshold needs a
    # positive intersection, found by binary search on GT sorted by (group, start) with a
    # running max of ends. Zero thresholds or 0/0 tIoU (zero-length prediction and GT, NaN
    # in the official code) need every pair of the group: then all pairs are formed.
    zero_len = (seg[cand, 1] == seg[cand, 0]).any() and (gt_seg[:, 1] == gt_seg[:, 0]).any()
    if thr_min <= 0 or zero_len:
        item, pos = _group_pairs(gstart[cg], gcount[cg])
        pair_pred, pair_gt = cand[item], gorder[pos]
    else:
        grp = np.repeat(np.arange(len(ukey)), gcount)
        t0 = min(float(gt_seg.min()), float(seg[cand].min()))
        width = max(float(gt_seg.max()), float(seg[cand].max())) - t0 + 1.0
        by_start = np.lexsort((gt_seg[:, 0], gkey))
        comp_start = grp * width + (gt_seg[by_start, 0] - t0)
        comp_end = np.maximum.accumulate(grp * width + (gt_seg[by_start, 1] - t0))
        margin = 16 * np.finfo(np.float64).eps * (len(ukey) + 1) * width
        lo = np.searchsorted(comp_end, cg * width + (seg[cand, 0] - t0) - margin, "right")
        hi = np.searchsorted(comp_start, cg * width + (seg[cand, 1] - t0) + margin, "left")
        lo = np.maximum(lo, gstart[cg])
        hi = np.maximum(np.minimum(hi, gstart[cg] + gcount[cg]), lo)
        item, pos = _group_pairs(lo, hi - lo)
        pair_pred, pair_gt = cand[item], by_start[pos]
    tiou = _official_tiou(seg[pair_pred], gt_seg[pair_gt])
    # NaN (0/0) compares as "not below the threshold" in the official loop: a match.
    (elig,) = np.nonzero(~(tiou < thr_min))
    if len(elig) == 0:
        return tp
    e_pred, e_gt, e_tiou = pair_pred[elig], pair_gt[elig], tiou[elig]

    # 4) Scan order of the official loop, np.argsort(tiou_row)[::-1]: descending tIoU, NaN
    # first. Only exact ties among a prediction's eligible pairs depend on how numpy orders
    # equal keys; for those predictions the full row is sorted with the official call (rows of
    # one length in one call: numpy sorts each row with the same routine as a 1-D array).
    prio = np.where(np.isnan(e_tiou), -np.inf, -e_tiou)
    n_opt = np.bincount(e_pred, minlength=P)
    (multi,) = np.nonzero(n_opt[e_pred] > 1)  # only these can have ties
    o = multi[np.lexsort((prio[multi], e_pred[multi]))]
    same_pred = e_pred[o][1:] == e_pred[o][:-1]
    same_val = prio[o][1:] == prio[o][:-1]
    tied = np.unique(e_pred[o][1:][same_pred & same_val])
    if len(tied):
        is_tied = np.zeros(P, dtype=bool)
        is_tied[tied] = True
        sel = is_tied[e_pred]
        row_of = np.full(P, -1, dtype=np.int64)
        row_of[tied] = np.arange(len(tied))
        tg = gi[tied]
        m_t = gcount[tg]
        tprio = np.zeros((len(tied), int(m_t.max())), dtype=np.float64)
        for mm in np.unique(m_t):
            rows = np.nonzero(m_t == mm)[0]
            block_gt = gorder[gstart[tg[rows]][:, None] + np.arange(mm)]
            row_tiou = _official_tiou(
                np.repeat(seg[tied[rows]], mm, axis=0), gt_seg[block_gt.reshape(-1)]
            ).reshape(len(rows), mm)
            order = np.argsort(row_tiou, axis=1)[:, ::-1]
            inv = np.empty_like(order)
            np.put_along_axis(inv, order, np.arange(mm)[None, :], axis=1)
            tprio[rows, :mm] = inv
        prio[sel] = tprio[row_of[e_pred[sel]], pos_in_group[e_gt[sel]]]

    e_ok = ~(e_tiou[None, :] < thr[:, None])  # [T, E]

    # 5a) GTs whose candidates have no other eligible GT: the best-ranked candidate with
    # tIoU >= threshold takes it, independently of everything else. Rank r is the position in
    # ``ranked``, so the winner of a GT is the minimum rank over its eligible pairs.
    cpx_gt = np.zeros(G, dtype=bool)
    cpx_gt[e_gt[n_opt[e_pred] > 1]] = True
    cpx = cpx_gt[e_gt]
    (simple,) = np.nonzero(~cpx)
    if len(simple):
        s_gt, s_rank = e_gt[simple], rank[e_pred[simple]]
        o = np.lexsort((s_rank, s_gt))
        s_gt, s_rank, s_ok = s_gt[o], s_rank[o], e_ok[:, simple[o]]
        heads = np.flatnonzero(np.concatenate(([True], s_gt[1:] != s_gt[:-1])))
        best = np.minimum.reduceat(np.where(s_ok, s_rank, P), heads, axis=1)
        t_i, h_i = np.nonzero(best < P)
        tp[t_i, ranked[best[t_i, h_i]]] = True

    # 5b) The rest (predictions with several eligible GTs and the GTs they touch): lock-step
    # greedy matching; step k handles the k-th such prediction (by rank) of every (class,
    # video) group at once, vectorised over groups and thresholds.
    (rest,) = np.nonzero(cpx)
    if len(rest) == 0:
        return tp
    e_pred, e_gt, prio, e_ok = e_pred[rest], e_gt[rest], prio[rest], e_ok[:, rest]
    cp = np.unique(e_pred)
    g_cp = gi[cp]
    o = np.lexsort((rank[cp], g_cp))
    first = np.concatenate(([True], g_cp[o][1:] != g_cp[o][:-1]))
    grp_first = np.maximum.accumulate(np.where(first, np.arange(len(o)), 0))
    step_of = np.zeros(P, dtype=np.int64)
    step_of[cp[o]] = np.arange(len(o)) - grp_first
    steps = step_of[e_pred]
    so = np.argsort(steps, kind="stable")  # keeps pairs of a prediction together
    e_pred, e_gt, prio, steps, e_ok = e_pred[so], e_gt[so], prio[so], steps[so], e_ok[:, so]
    step_bounds = np.searchsorted(steps, np.arange(int(steps[-1]) + 2))
    locked = np.zeros((T, G), dtype=bool)
    for s in range(len(step_bounds) - 1):
        a, b = step_bounds[s], step_bounds[s + 1]
        pp, g = e_pred[a:b], e_gt[a:b]
        seg_start = np.flatnonzero(np.concatenate(([True], pp[1:] != pp[:-1])))
        ok = e_ok[:, a:b] & ~locked[:, g]
        val = np.where(ok, prio[a:b], np.inf)
        best = np.minimum.reduceat(val, seg_start, axis=1)  # [T, predictions in step]
        tp[:, pp[seg_start]] = best != np.inf
        lens = np.diff(seg_start, append=b - a)
        chosen = ok & (val == np.repeat(best, lens, axis=1))
        t_i, j_i = np.nonzero(chosen)
        locked[t_i, g[j_i]] = True
    return tp
