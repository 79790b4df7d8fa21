r"""Average recall of class-agnostic proposals at a number of proposals per video (AR@AN)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tagraph.evaluation.detection import (
    ACTIVITYNET_TIOU,
    _codes,
    _official_tiou,
    _thresholds,
)
from tagraph.io import Detections, load_annotations, load_results
from tagraph.io.activitynet import _name

__all__ = ["RecallResult", "average_recall"]


def _rank_in_groups(
    group: np.ndarray, score: np.ndarray, num_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Rank items by descending score within groups, with the official ActivityNet tie rule.

    Both official evaluators rank with ``np.argsort(scores)[::-1]`` on the scores of one group
    in file order: ``eval_detection.py`` per class, ``eval_proposal.py`` per video. Ties come out
    in the order numpy's default sort leaves them, reversed; :func:`detection_map` ranks the
    same way. Groups of equal size are sorted in one 2-D call (numpy sorts every row with the
    same routine as a 1-D array, so the order is identical to one call per group).

    Args:
        group (numpy.ndarray): :obj:`[P]` group id of each item, in :obj:`[0, num_groups)`.
        score (numpy.ndarray): :obj:`[P]` scores.
        num_groups (int): Number of groups.

    Returns:
        (numpy.ndarray, numpy.ndarray): :obj:`[P]` item indices, group after group (ascending
        id), each group in rank order; :obj:`[num_groups + 1]` group bounds in that array.
    """
    by_group = np.argsort(group, kind="stable")  # file order inside a group
    counts = np.bincount(group, minlength=num_groups)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    ranked = np.empty(len(group), dtype=np.int64)
    for m in np.unique(counts[counts > 0]):
        (rows,) = np.nonzero(counts == m)
        pos = bounds[rows][:, None] + np.arange(m)
        idx = by_group[pos]
        order = np.argsort(score[idx], axis=1)[:, ::-1]
        ranked[pos] = np.take_along_axis(idx, order, axis=1)
    return ranked, bounds


@dataclass
class RecallResult:
    r"""Recall of ground-truth instances by the top proposals of each video.

    Attributes:
        num_proposals (numpy.ndarray): :obj:`[N]` numbers of proposals per video (AN).
        tiou_thresholds (numpy.ndarray): :obj:`[T]` thresholds.
        recall (numpy.ndarray): :obj:`[T, N]` recall.
        average_recall (numpy.ndarray): :obj:`[N]` recall averaged over thresholds (AR@AN).
        num_gt (int): Ground-truth instances.
    """

    num_proposals: np.ndarray
    tiou_thresholds: np.ndarray
    recall: np.ndarray
    average_recall: np.ndarray
    num_gt: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_proposals": [int(n) for n in self.num_proposals],
            "tiou": [float(t) for t in self.tiou_thresholds],
            "recall": self.recall.tolist(),
            "average_recall": [float(a) for a in self.average_recall],
        }

    def __str__(self) -> str:
        head = ["AN", *[str(int(n)) for n in self.num_proposals]]
        row = ["AR (%)", *[f"{100 * a:.2f}" for a in self.average_recall]]
        widths = [max(len(h), len(r)) for h, r in zip(head, row)]
        return "\n".join(
            "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in
                      enumerate(zip(line, widths)))
            for line in (head, ["-" * w for w in widths], row)
        )

    def __repr__(self) -> str:
        ar = {int(n): round(float(a), 4) for n, a in zip(self.num_proposals, self.average_recall)}
        return f"{self.__class__.__name__}(AR@AN={ar})"


def average_recall(
    ground_truth: str | os.PathLike | Mapping[str, Any],
    proposals: str | os.PathLike | Mapping[str, Any] | Detections,
    num_proposals: Iterable[int] = (50, 100, 200, 500, 1000),
    tiou_thresholds: Iterable[float] | float = ACTIVITYNET_TIOU,
    subset: str | None = None,
) -> RecallResult:
    r"""Average recall at AN proposals per video (AR@AN), class-agnostic.

    Each video's proposals are ranked by descending score and cut to the top :math:`n`; ties
    follow the official ``eval_proposal.py``, ``np.argsort(scores)[::-1]`` on the video's
    proposals in file order (the rule :func:`~tagraph.evaluation.detection_map` uses per
    class). A ground-truth instance is recalled at threshold :math:`\theta` when at least one
    of them has :math:`\mathrm{tIoU} \geq \theta` (no one-to-one matching, as in
    ``eval_proposal.py``); recall is over all instances of the subset, and AR@AN is its mean
    over thresholds,

    .. math::
        \mathrm{AR@}n = \frac{1}{|\Theta|} \sum_{\theta \in \Theta}
        \frac{|\{g : \exists p \in \mathrm{top}_n(v_g),\ \mathrm{tIoU}(p, g) \geq \theta\}|}
        {|G|}.

    The official tool expresses AN as an average over videos of a fixed fraction of each
    video's proposals; with at least :math:`n` proposals in every video both coincide.

    Args:
        ground_truth (str, os.PathLike or dict): GT JSON path, content or
            ``{video_id: VideoAnnotation}``.
        proposals (str, os.PathLike, dict or Detections): Proposals as a results JSON or
            :class:`~tagraph.io.Detections`; labels are ignored.
        num_proposals (Iterable[int], optional): Values of AN.
            (default: :obj:`(50, 100, 200, 500, 1000)`)
        tiou_thresholds (Iterable[float], optional): Thresholds.
            (default: :data:`ACTIVITYNET_TIOU`)
        subset (str, optional): Subset to evaluate (case-insensitive). (default: :obj:`None`)
    """
    thr = _thresholds(tiou_thresholds)
    an = np.asarray(list(num_proposals), dtype=np.int64).reshape(-1)
    if an.size == 0 or (an < 1).any():
        raise ValueError(f"num_proposals must be positive integers, got {an.tolist()}")
    gt = load_annotations(ground_truth, subset=subset)
    det = load_results(proposals)
    vids = [v for v, a in gt.items() if len(a)]
    if not vids:
        raise ValueError(f"{_name(ground_truth)}: the ground truth has no annotated instance")
    names = np.asarray(vids, dtype=str)
    counts = np.fromiter((len(gt[v]) for v in vids), dtype=np.int64, count=len(vids))
    gt_seg = np.concatenate([gt[v].segments for v in vids])
    gt_vid = np.repeat(np.arange(len(vids)), counts)
    G, T = len(gt_seg), len(thr)

    p_vid = _codes(det.video_id, names)
    keep = np.nonzero(p_vid >= 0)[0]
    p_vid, score, seg = p_vid[keep], det.score[keep], det.segment[keep]
    order, vstart = _rank_in_groups(p_vid, score, len(vids))  # by video, official rank order
    v_sorted = p_vid[order]
    rank = np.arange(len(order)) - vstart[v_sorted]
    top = rank < an.max()
    order, v_sorted, rank = order[top], v_sorted[top], rank[top]
    vstart = np.searchsorted(v_sorted, np.arange(len(vids) + 1))
    kcount = np.diff(vstart)

    best = np.full((T, G), np.iinfo(np.int64).max)
    m = kcount[gt_vid]
    (with_props,) = np.nonzero(m > 0)
    if len(with_props):
        mm = m[with_props]
        starts = np.cumsum(mm) - mm
        pair_gt = np.repeat(with_props, mm)
        offs = np.arange(int(mm.sum())) - np.repeat(starts, mm)
        pair_k = np.repeat(vstart[gt_vid[with_props]], mm) + offs  # GT-major, by rank
        tiou = _official_tiou(seg[order[pair_k]], gt_seg[pair_gt])
        (hit,) = np.nonzero(tiou >= thr.min())  # NaN (0/0) never reaches a threshold
        pair_gt, tiou, pair_rank = pair_gt[hit], tiou[hit], rank[pair_k[hit]]
        if len(hit):
            heads = np.flatnonzero(np.diff(pair_gt, prepend=-1))
            big = np.iinfo(np.int64).max
            val = np.where(tiou[None, :] >= thr[:, None], pair_rank[None, :], big)
            best[:, pair_gt[heads]] = np.minimum.reduceat(val, heads, axis=1)
    recall = (best[:, :, None] < an[None, None, :]).sum(axis=1) / G
    return RecallResult(an, thr, recall, recall.mean(axis=0), G)
