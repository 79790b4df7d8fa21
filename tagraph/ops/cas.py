"""Class activation sequences (CAS) -> scored, non-maximum-suppressed detections.

One vectorised implementation for every weakly supervised method (GRN, ECM,
BackTAL, ISSF), configured per method by :class:`CASDetectionConfig`: no loop
over videos, classes, thresholds or snippets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from tagraph.ops.padding import group_membership, length_groups
from tagraph.ops.sort import unique_rows

__all__ = [
    "CASDetectionConfig",
    "CASDetections",
    "cas_segments",
    "cas_to_detections",
    "grouped_nms",
    "segment_minmax",
    "select_classes",
    "threshold_range",
]


def threshold_range(start: float, stop: float, step: float) -> tuple[float, ...]:
    r"""Thresholds :obj:`start, start + step, ...` below :obj:`stop` (like
    :func:`numpy.arange`, without its floating-point drift)."""
    n = max(0, math.ceil((stop - start) / step - 1e-9))
    return tuple(round(start + i * step, 10) for i in range(n))


@dataclass
class CASDetectionConfig:
    r"""How a method turns its class activation sequence into detections.

    Args:
        class_threshold (float): Keep the classes whose video score is
            :math:`\geq` this. (default: :obj:`0.1`)
        top1_fallback (bool): Keep the best class of a video where no class
            passes. (default: :obj:`True`)
        thresholds (Sequence[float]): Activation thresholds; every run of
            consecutive snippets with activation :math:`\geq` a threshold is a
            candidate. (default: :obj:`(0.5,)`)
        outer_lambda (float): Margin :math:`\lambda`: the outer score is the mean
            CAS over :math:`\lceil \lambda L \rceil` snippets on each side of a
            candidate of :math:`L` snippets, clipped to the video.
            (default: :obj:`0.25`)
        gamma (float): Weight :math:`\gamma` of the video score in the candidate
            score :math:`\mathrm{inner} - \mathrm{outer} + \gamma\,v_c`.
            (default: :obj:`0.2`)
        nms_method (str): :obj:`"hard"`, :obj:`"gaussian"` or :obj:`"linear"`.
            (default: :obj:`"hard"`)
        iou_threshold (float): Hard NMS: suppress overlaps above it; soft: only
            overlaps above it decay. (default: :obj:`0.5`)
        sigma (float): Gaussian soft-NMS width. (default: :obj:`0.5`)
        soft_score_threshold (float): Soft-NMS drops scores below it.
            (default: :obj:`1e-3`)
        min_length (int): Minimum candidate length in snippets. (default: :obj:`1`)
        max_per_video (int, optional): Keep the best detections per video.
            (default: :obj:`None`)
        ignore_background (bool): The last CAS / video-score column is a
            background class (BackTAL, ISSF): it is never detected.
            (default: :obj:`False`)
        class_relative (bool): Compare :math:`v_c / \max_{c'} v_{c'}` (the
            video's own best class scores 1) with :obj:`class_threshold`
            instead of :math:`v_c`: a scale-free class selection.
            (default: :obj:`False`)
        normalize (str): :obj:`"minmax"` rescales the thresholded activation
            and the CAS of the contrast score to :math:`[0, 1]` per video and
            class (:func:`segment_minmax`) before thresholding, so that
            :obj:`thresholds` are fractions of each video's own range, whatever
            the model's score scale; :obj:`"none"` thresholds the raw values.
            (default: :obj:`"none"`)
    """

    class_threshold: float = 0.1
    top1_fallback: bool = True
    thresholds: Sequence[float] = field(default_factory=lambda: (0.5,))
    outer_lambda: float = 0.25
    gamma: float = 0.2
    nms_method: str = "hard"
    iou_threshold: float = 0.5
    sigma: float = 0.5
    soft_score_threshold: float = 1e-3
    min_length: int = 1
    max_per_video: int | None = None
    ignore_background: bool = False
    class_relative: bool = False
    normalize: str = "none"

    def __post_init__(self) -> None:
        if self.normalize not in ("none", "minmax"):
            raise ValueError(f"CASDetectionConfig: unknown normalize '{self.normalize}' "
                             "(none or minmax)")
        if self.nms_method not in ("hard", "gaussian", "linear"):
            raise ValueError(
                f"CASDetectionConfig: unknown nms_method '{self.nms_method}' "
                "(hard, gaussian or linear)"
            )
        if len(self.thresholds) == 0:
            raise ValueError("CASDetectionConfig: 'thresholds' is empty")
        self.thresholds = tuple(float(t) for t in self.thresholds)


class CASDetections(NamedTuple):
    r"""Detections of a batch: graph index in the batch, class, score, and
    :obj:`[start, end]` in seconds, one row per detection."""

    batch: Tensor
    labels: Tensor
    scores: Tensor
    segments: Tensor


def _ptr(batch: Tensor, num_graphs: int) -> Tensor:
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=batch.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


def segment_minmax(x: Tensor, batch: Tensor, num_graphs: int | None = None) -> Tensor:
    r"""Per video and column :math:`(x - m) / (M - m)` with :math:`M, m` the
    video's max / min of that column (0 where :math:`M = m`): every video's
    scores span :math:`[0, 1]`, whatever their offset and scale.

    Args:
        x (torch.Tensor): Scores :obj:`[N, C]`.
        batch (torch.Tensor): Graph index of each row, :obj:`[N]`.
        num_graphs (int, optional): :obj:`B`. (default: :obj:`None`)
    """
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    c = x.size(1)
    idx = batch.unsqueeze(-1).expand_as(x)
    mx = x.new_full((num_graphs, c), float("-inf")).scatter_reduce(0, idx, x, "amax")
    mn = x.new_full((num_graphs, c), float("inf")).scatter_reduce(0, idx, x, "amin")
    delta = mx - mn
    ok = delta > 0
    out = (x - mn[batch]) / torch.where(ok, delta, torch.ones_like(delta))[batch]
    return torch.where(ok[batch], out, torch.zeros_like(out))


def select_classes(video_scores: Tensor, threshold: float, top1_fallback: bool = True,
                   relative: bool = False) -> Tensor:
    r"""Boolean :obj:`[B, C]` mask of the classes whose video score is
    :math:`\geq` :obj:`threshold` (with :obj:`relative`, whose score divided by
    the video's best score is; plus each video's best class where none passes,
    if :obj:`top1_fallback`)."""
    v = video_scores
    if relative and v.numel() > 0:
        top = v.max(-1, keepdim=True).values
        v = torch.where(top > 0, v / top.clamp(min=torch.finfo(v.dtype).tiny),
                        (v >= top).to(v.dtype))
    keep = v >= threshold
    if top1_fallback and keep.numel() > 0:
        none = ~keep.any(-1)
        best = video_scores.argmax(-1)
        keep[none, best[none]] = True
    return keep


def cas_segments(
    act: Tensor,
    batch: Tensor,
    thresholds: Sequence[float] | Tensor,
    keep: Tensor | None = None,
    min_length: int = 1,
    num_graphs: int | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Runs of consecutive snippets whose activation is :math:`\geq` a threshold,
    for all thresholds, classes and videos at once (run-length encoding of the
    :obj:`[H, C, N]` mask: a run starts where the previous snippet of the same
    video is not above threshold and ends where the next one is not).

    Args:
        act (torch.Tensor): Activations of shape :obj:`[N, C]` (or :obj:`[N, 1]`,
            class-agnostic, shared by all classes of :obj:`keep`).
        batch (torch.Tensor): Sorted graph index of each snippet, :obj:`[N]`.
        thresholds (Sequence[float] or torch.Tensor): :obj:`H` thresholds.
        keep (torch.Tensor, optional): :obj:`[B, C]` mask of the (video, class)
            pairs to search. (default: :obj:`None`, all)
        min_length (int, optional): Minimum run length. (default: :obj:`1`)
        num_graphs (int, optional): :obj:`B`. (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor): For each run
        its graph, class, first snippet and one-past-last snippet (global node
        indices of the batch).
    """
    n = act.size(0)
    device = act.device
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if n > 0 else 0
    if keep is not None and act.size(1) == 1:
        act = act.expand(n, keep.size(1))
    thr = torch.as_tensor(thresholds, dtype=act.dtype, device=device).flatten()
    empty = torch.empty(0, dtype=torch.long, device=device)
    if n == 0 or thr.numel() == 0:
        return empty, empty, empty, empty
    ptr = _ptr(batch, num_graphs)
    local = torch.arange(n, device=device) - ptr[:-1][batch]
    first = local == 0
    last = local == (ptr[1:] - ptr[:-1])[batch] - 1
    above = act.T.unsqueeze(0) >= thr.view(-1, 1, 1)  # [H, C, N]
    if keep is not None:
        above &= keep[batch].T.unsqueeze(0)
    prev = torch.zeros_like(above)
    prev[..., 1:] = above[..., :-1]
    prev &= ~first
    nxt = torch.zeros_like(above)
    nxt[..., :-1] = above[..., 1:]
    nxt &= ~last
    # Row-major order: the i-th start and the i-th end delimit the same run.
    _, cls, start = (above & ~prev).nonzero(as_tuple=True)
    end = (above & ~nxt).nonzero(as_tuple=True)[2] + 1
    if min_length > 1:
        ok = (end - start) >= min_length
        cls, start, end = cls[ok], start[ok], end[ok]
    return batch[start], cls, start, end


def _contrast_scores(
    cas: Tensor, ptr: Tensor, graph: Tensor, cls: Tensor, start: Tensor, end: Tensor,
    outer_lambda: float,
) -> Tensor:
    # Prefix sums per class (float64: exact differences over long videos).
    cs = torch.zeros(cas.size(0) + 1, cas.size(1), dtype=torch.float64, device=cas.device)
    torch.cumsum(cas.to(torch.float64), 0, out=cs[1:])
    length = (end - start).to(torch.float64)
    inner = (cs[end, cls] - cs[start, cls]) / length
    margin = torch.ceil(outer_lambda * length - 1e-9).to(torch.long)
    lo = torch.maximum(start - margin, ptr[graph])
    hi = torch.minimum(end + margin, ptr[graph + 1])
    outer_sum = (cs[start, cls] - cs[lo, cls]) + (cs[hi, cls] - cs[end, cls])
    count = ((start - lo) + (hi - end)).to(torch.float64)
    outer = torch.where(count > 0, outer_sum / count.clamp(min=1), torch.zeros_like(outer_sum))
    return inner - outer


def grouped_nms(
    segments: Tensor,
    scores: Tensor,
    groups: Tensor,
    iou_threshold: float,
    method: str = "hard",
    sigma: float = 0.5,
    score_threshold: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    r"""(Soft-)NMS within groups (e.g. (video, class) pairs), all groups at once.

    Same results as :func:`tagraph.ops.batched_nms`, but the pairwise tIoU is
    computed only inside groups (padded to :obj:`[G, m, m]` with :obj:`m` the
    largest of groups of similar size, :func:`tagraph.ops.length_groups`: the
    padded work stays within 1.5x :math:`\sum_g m_g^2`, so one large group
    does not pad every small one to its size) instead of over all :obj:`N^2`
    pairs of the batch. Hard NMS is the fixed point of
    the greedy recursion; soft-NMS runs its :obj:`m` pick-and-decay steps for
    all groups of a size group in parallel.

    Returns:
        (torch.Tensor, torch.Tensor): Kept indices (by group, then descending
        score) and their (decayed) scores.
    """
    if method not in ("hard", "gaussian", "linear"):
        raise ValueError(f"grouped_nms: unknown method '{method}'")
    n = scores.numel()
    if n == 0:
        return torch.empty(0, dtype=torch.long, device=scores.device), scores.new_empty(0)
    _, gid, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    # Groups of similar size are padded together (padded work <= 1.5x the
    # unpadded sum of m^2), so one large group does not pad every small one.
    parts = length_groups(counts.cpu())
    if len(parts) == 1:
        return _grouped_nms_padded(segments, scores, gid, iou_threshold, method, sigma,
                                   score_threshold)
    item_part = group_membership(parts, counts.numel())[0].to(gid.device)[gid]
    order_parts = torch.sort(item_part, stable=True)
    bounds = torch.cumsum(torch.bincount(item_part, minlength=len(parts)), 0).tolist()
    parts_idx, parts_score = [], []
    lo = 0
    for hi in bounds:
        sel = order_parts.indices[lo:hi]
        lo = hi
        idx, sc = _grouped_nms_padded(segments[sel], scores[sel], gid[sel], iou_threshold,
                                      method, sigma, score_threshold)
        parts_idx.append(sel[idx])
        parts_score.append(sc)
    idx, sc = torch.cat(parts_idx), torch.cat(parts_score)
    # back to "by group, then the group's own order", as one padded call returns them
    order = torch.sort(gid[idx], stable=True).indices
    return idx[order], sc[order]


def _grouped_nms_padded(
    segments: Tensor,
    scores: Tensor,
    groups: Tensor,
    iou_threshold: float,
    method: str,
    sigma: float,
    score_threshold: float,
) -> tuple[Tensor, Tensor]:
    device = scores.device
    n = scores.numel()
    if n == 0:
        return torch.empty(0, dtype=torch.long, device=device), scores.new_empty(0)
    _, gid = torch.unique(groups, return_inverse=True)
    order = torch.sort(scores, descending=True, stable=True).indices
    order = order[torch.sort(gid[order], stable=True).indices]
    g_sorted = gid[order]
    n_groups = int(g_sorted.max()) + 1
    counts = torch.bincount(g_sorted, minlength=n_groups)
    gptr = torch.zeros(n_groups + 1, dtype=torch.long, device=device)
    torch.cumsum(counts, 0, out=gptr[1:])
    rank = torch.arange(n, device=device) - gptr[:-1][g_sorted]
    m = int(counts.max())
    seg = segments.to(torch.float64).index_select(0, order)
    pad_seg = seg.new_zeros(n_groups, m, 2)
    pad_seg[g_sorted, rank] = seg
    valid = torch.zeros(n_groups, m, dtype=torch.bool, device=device)
    valid[g_sorted, rank] = True
    s, e = pad_seg[..., 0], pad_seg[..., 1]
    # tIoU of every pair of a group, in place on [G, m, m] (memory-bound: few passes).
    # union >= the longer length >= 0, and union == 0 only where both lengths and
    # inter are 0, so inter / max(union, 1e-12) is 0 there.
    inter = torch.minimum(e[:, :, None], e[:, None, :])
    inter.sub_(torch.maximum(s[:, :, None], s[:, None, :])).clamp_(min=0)
    length = (e - s).clamp(min=0)
    union = length[:, :, None] + length[:, None, :]
    union.sub_(inter).clamp_(min=1e-12)
    iou = inter.div_(union)
    del union
    pair_ok = valid[:, :, None] & valid[:, None, :]
    if method == "hard":
        sup = iou > iou_threshold
        sup &= pair_ok
        sup = sup.triu_(diagonal=1).to(torch.float32)
        keep = valid.clone()
        for _ in range(m + 1):
            new_keep = valid & (torch.bmm(keep.to(torch.float32).unsqueeze(1), sup)
                                .squeeze(1) == 0)
            if torch.equal(new_keep, keep):
                break
            keep = new_keep
        kept_sorted = keep[g_sorted, rank]
        idx = order[kept_sorted]
        return idx, scores.index_select(0, idx)
    cur = scores.new_full((n_groups, m), float("-inf")).to(torch.float64)
    cur[g_sorted, rank] = scores.index_select(0, order).to(torch.float64)
    alive = valid.clone()
    picked_rank = torch.full((n_groups, m), -1, dtype=torch.long, device=device)
    picked_score = torch.zeros(n_groups, m, dtype=torch.float64, device=device)
    gi = torch.arange(n_groups, device=device)
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float64, device=device)
    for step in range(m):
        masked = torch.where(alive, cur, neg_inf)
        best_score, best = masked.max(-1)  # first maximum -> ties by rank
        go = best_score >= score_threshold
        if not bool(go.any()):
            break
        picked_rank[go, step] = best[go]
        picked_score[go, step] = best_score[go]
        alive[gi[go], best[go]] = False
        alive &= go[:, None]  # a finished group stays finished
        ov = iou[gi, best]  # [G, m]
        hit = (ov > iou_threshold) & alive
        decay = torch.exp(-(ov * ov) / sigma) if method == "gaussian" else 1.0 - ov
        cur = torch.where(hit, cur * decay, cur)
    sel = picked_rank >= 0
    g_idx = gi[:, None].expand(n_groups, m)[sel]
    flat = gptr[:-1][g_idx] + picked_rank[sel]
    return order[flat], picked_score[sel].to(scores.dtype)


def cas_to_detections(
    cas: Tensor,
    video_scores: Tensor,
    batch: Tensor,
    pos: Tensor,
    config: CASDetectionConfig,
    *,
    act: Tensor | None = None,
    extra: Sequence[tuple[Tensor, Sequence[float]]] = (),
    snippet_seconds: Tensor | float | None = None,
    duration: Tensor | None = None,
) -> CASDetections:
    r"""Detections from a batch of class activation sequences.

    For the classes kept by :func:`select_classes`, each run of snippets with
    activation :math:`\geq` one of :obj:`config.thresholds` (see
    :func:`cas_segments`) becomes a candidate of score

    .. math::
        \mathrm{mean}_{t \in [s, e)} \mathrm{cas}_{t,c} -
        \mathrm{mean}_{t \in \mathrm{margins}} \mathrm{cas}_{t,c} + \gamma\,v_c,

    with margins of :math:`\lceil \lambda (e - s) \rceil` snippets on each
    side clipped to the video (outer score 0 if both are empty). Candidates are
    then suppressed per (video, class) by :func:`grouped_nms`.

    Times: a candidate covers :obj:`[pos[s] - d/2, pos[e-1] + d/2]` seconds,
    :math:`d` the snippet spacing (from :obj:`snippet_seconds`, else the
    video's :obj:`pos`; twice the centre time for a one-snippet video),
    clipped to :obj:`[0, duration]` when given.

    Args:
        cas (torch.Tensor): Scores used for the contrast, :obj:`[N, C]`.
        video_scores (torch.Tensor): Video scores :obj:`[B, C]`.
        batch (torch.Tensor): Sorted graph index of each snippet, :obj:`[N]`.
        pos (torch.Tensor): Snippet centre times (s), :obj:`[N]`.
        config (CASDetectionConfig): Thresholds, contrast, NMS.
        act (torch.Tensor, optional): What is thresholded, :obj:`[N, C]` or
            :obj:`[N, 1]`. (default: :obj:`None`, the CAS)
        extra (Sequence[tuple[torch.Tensor, Sequence[float]]], optional): More
            :obj:`(activation, thresholds)` sources (e.g. BackTAL's
            foreground-magnitude thresholds); their runs join the candidates
            before NMS and are scored the same way. (default: :obj:`()`)
        snippet_seconds (torch.Tensor or float, optional): Snippet spacing per
            video :obj:`[B]` or for all. (default: :obj:`None`)
        duration (torch.Tensor, optional): Video durations (s), :obj:`[B]`.

    Returns:
        CASDetections: Graph index, class, score and segment of each detection.
    """
    if cas.dim() != 2 or cas.size(0) != batch.numel() or pos.numel() != batch.numel():
        raise ValueError(
            f"cas_to_detections: 'cas' {list(cas.shape)}, 'batch' {list(batch.shape)} and "
            f"'pos' {list(pos.shape)} must describe the same N snippets"
        )
    if config.ignore_background:
        cas, video_scores = cas[:, :-1], video_scores[:, :-1]
        act = act[:, :-1] if act is not None and act.size(1) > 1 else act
        extra = [(a[:, :-1] if a.size(1) > 1 else a, t) for a, t in extra]
    num_graphs = video_scores.size(0)
    ptr = _ptr(batch, num_graphs)
    if config.normalize == "minmax":
        cas = segment_minmax(cas, batch, num_graphs)
        act = segment_minmax(act, batch, num_graphs) if act is not None else None
        extra = [(segment_minmax(a, batch, num_graphs), t) for a, t in extra]
    keep = select_classes(video_scores, config.class_threshold, config.top1_fallback,
                          config.class_relative)
    sources = [(cas if act is None else act, config.thresholds), *extra]
    runs = [cas_segments(a, batch, t, keep, config.min_length, num_graphs) for a, t in sources]
    graph, cls, start, end = (torch.cat(parts) for parts in zip(*runs))
    no_nms = config.nms_method == "hard" and config.iou_threshold >= 1.0  # tIoU > 1: none
    if config.nms_method == "hard" and not no_nms and graph.numel() > 0:
        # The same run is often found at several thresholds: one copy suffices for
        # hard NMS (a copy has tIoU 1 with its twin and the same score), and the
        # padded per-group NMS is quadratic in the group size.
        rows = torch.stack([graph, cls, start, end], 1)
        graph, cls, start, end = rows[unique_rows(rows)].unbind(1)
    score = _contrast_scores(cas, ptr, graph, cls, start, end, config.outer_lambda)
    score = score + config.gamma * video_scores.to(torch.float64)[graph, cls]

    # Snippet spacing per video.
    pos64 = pos.to(torch.float64)
    counts = ptr[1:] - ptr[:-1]
    if snippet_seconds is None:
        last = (ptr[1:] - 1).clamp(min=0)
        span = pos64[last] - pos64[ptr[:-1].clamp(max=max(pos.numel() - 1, 0))]
        # One snippet: its centre is window / 2 after the video start -> extent 2 * pos.
        single = 2.0 * pos64[ptr[:-1].clamp(max=max(pos.numel() - 1, 0))]
        spacing = torch.where(counts > 1, span / (counts - 1).clamp(min=1), single)
    else:
        spacing = torch.as_tensor(snippet_seconds, dtype=torch.float64, device=cas.device)
        spacing = spacing.expand(num_graphs) if spacing.dim() == 0 else spacing
    half = 0.5 * spacing[graph]
    seg = torch.stack([pos64[start] - half, pos64[end - 1] + half], -1)
    seg = seg.clamp(min=0)
    if duration is not None:
        dur = torch.as_tensor(duration, dtype=torch.float64, device=cas.device)[graph]
        seg = torch.minimum(seg, dur[:, None])

    if no_nms:
        idx, new_scores = torch.arange(score.numel(), device=score.device), score
    else:
        idx, new_scores = grouped_nms(
            seg, score, graph * cas.size(1) + cls, config.iou_threshold, config.nms_method,
            config.sigma, config.soft_score_threshold,
        )
    graph, cls, seg, score = graph[idx], cls[idx], seg[idx], new_scores
    # Order by video, then descending score; optionally cap per video.
    order = torch.sort(score, descending=True, stable=True).indices
    order = order[torch.sort(graph[order], stable=True).indices]
    graph, cls, seg, score = graph[order], cls[order], seg[order], score[order]
    if config.max_per_video is not None:
        rank = torch.arange(graph.numel(), device=graph.device) - _ptr(graph, num_graphs)[graph]
        ok = rank < int(config.max_per_video)
        graph, cls, seg, score = graph[ok], cls[ok], seg[ok], score[ok]
    return CASDetections(graph, cls, score.to(cas.dtype), seg.to(pos.dtype))
