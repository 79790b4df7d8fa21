"""Non-maximum suppression of 1-D segments: hard NMS, soft-NMS and their batched forms."""

from __future__ import annotations

import torch
from torch import Tensor

from tagraph.ops.padding import group_membership, length_groups
from tagraph.ops.segment_iou import segment_iou

__all__ = ["nms", "soft_nms", "batched_nms"]


def _order(scores: Tensor) -> Tensor:
    # Descending score; ties keep the input order (lower index first) -> deterministic.
    return torch.sort(scores, descending=True, stable=True).indices


def _check(segments: Tensor, scores: Tensor) -> None:
    if segments.dim() != 2 or segments.size(1) != 2:
        raise ValueError(f"'segments' must have shape [N, 2], got {list(segments.shape)}")
    if scores.dim() != 1 or scores.numel() != segments.size(0):
        raise ValueError(
            f"'scores' must have shape [{segments.size(0)}], got {list(scores.shape)}"
        )


def nms(segments: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    r"""Greedy non-maximum suppression of temporal segments.

    Segments are visited by descending score; a segment is kept unless a kept
    segment of higher rank overlaps it with :math:`\mathrm{tIoU} >` :obj:`iou_threshold`.
    Equal scores keep the input order, so the result is deterministic.

    The greedy recursion :math:`k_i = \neg \exists j < i: k_j \wedge
    \mathrm{tIoU}_{ji} > \theta` is solved as the fixed point of its vectorised
    form (iterating the whole vector until it no longer changes). The fixed
    point is unique since :math:`k_i` only depends on :math:`k_{j<i}`, so the
    result equals the sequential algorithm exactly; the number of iterations is
    the length of the longest suppression chain, usually a handful.

    Args:
        segments (torch.Tensor): Segments of shape :obj:`[N, 2]`.
        scores (torch.Tensor): Scores of shape :obj:`[N]`.
        iou_threshold (float): Overlaps above this are suppressed.

    Returns:
        torch.Tensor: Indices of the kept segments, by descending score.
    """
    _check(segments, scores)
    if segments.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=segments.device)
    order = _order(scores)
    seg = segments.index_select(0, order)
    # suppress[j, i]: j ranks above i and overlaps it too much.
    suppress = (segment_iou(seg, seg) > iou_threshold).triu_(diagonal=1)
    keep = torch.ones(order.numel(), dtype=torch.bool, device=segments.device)
    sup_f = suppress.to(torch.float32)
    for _ in range(order.numel() + 1):
        new_keep = (keep.to(torch.float32) @ sup_f) == 0
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return order[keep]


def soft_nms(
    segments: Tensor,
    scores: Tensor,
    iou_threshold: float = 0.0,
    method: str = "gaussian",
    sigma: float = 0.5,
    score_threshold: float = 1e-3,
    max_num: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Soft non-maximum suppression (Bodla et al., ICCV 2017) of temporal segments.

    Repeatedly picks the highest (decayed) score and decays every remaining
    segment :math:`i` overlapping the pick with :math:`\mathrm{tIoU} > \theta`:

    .. math::
        s_i \leftarrow s_i \cdot
        \begin{cases}
        \exp(-\mathrm{tIoU}^2 / \sigma) & \text{gaussian} \\
        1 - \mathrm{tIoU} & \text{linear} \\
        0 & \text{hard}
        \end{cases}

    Selection stops when the best remaining score falls below
    :obj:`score_threshold` or :obj:`max_num` segments are picked. Each step is
    one vectorised update; the number of steps is the number of outputs.

    Args:
        segments (torch.Tensor): Segments of shape :obj:`[N, 2]`.
        scores (torch.Tensor): Scores of shape :obj:`[N]`.
        iou_threshold (float, optional): Only overlaps above it decay. (default: :obj:`0.0`)
        method (str, optional): :obj:`"gaussian"`, :obj:`"linear"` or :obj:`"hard"`.
            (default: :obj:`"gaussian"`)
        sigma (float, optional): Gaussian width. (default: :obj:`0.5`)
        score_threshold (float, optional): Minimum decayed score kept. (default: :obj:`1e-3`)
        max_num (int, optional): Maximum number of outputs. (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor): Indices of the picked segments in pick
        order, and their decayed scores.
    """
    _check(segments, scores)
    if method not in ("gaussian", "linear", "hard"):
        raise ValueError(f"soft_nms: unknown method '{method}' (gaussian, linear or hard)")
    n = segments.size(0)
    limit = n if max_num is None else min(n, int(max_num))
    if n == 0 or limit <= 0:
        empty = torch.empty(0, dtype=torch.long, device=segments.device)
        return empty, scores.new_empty(0)
    order = _order(scores)
    seg = segments.index_select(0, order)
    cur = scores.index_select(0, order).clone()
    iou = segment_iou(seg, seg)
    alive = torch.ones(n, dtype=torch.bool, device=segments.device)
    neg_inf = torch.tensor(float("-inf"), dtype=cur.dtype, device=cur.device)
    picked, picked_scores = [], []
    for _ in range(limit):
        masked = torch.where(alive, cur, neg_inf)
        best = int(torch.argmax(masked))  # first maximum -> ties by rank
        best_score = masked[best]
        if not bool(best_score >= score_threshold):
            break
        picked.append(best)
        picked_scores.append(best_score)
        alive[best] = False
        ov = iou[best]
        hit = ov > iou_threshold
        if method == "gaussian":
            decay = torch.exp(-(ov * ov) / sigma)
        elif method == "linear":
            decay = 1.0 - ov
        else:
            decay = torch.zeros_like(ov)
        cur = torch.where(hit & alive, cur * decay, cur)
    if not picked:
        empty = torch.empty(0, dtype=torch.long, device=segments.device)
        return empty, scores.new_empty(0)
    idx = torch.tensor(picked, dtype=torch.long, device=segments.device)
    return order.index_select(0, idx), torch.stack(picked_scores)


def _grouped_nms(
    segments: Tensor, scores: Tensor, group: Tensor, iou_threshold: float
) -> Tensor | None:
    r"""Hard NMS of many independent groups at once, each padded to
    :obj:`[G, S, S]` with the groups of similar size
    (:func:`~tagraph.ops.length_groups`: padded work <= 1.5x :math:`\sum_g S_g^2`)
    instead of one :obj:`[N, N]` problem: exactly the same result as
    :func:`nms` on shifted segments. Returns :obj:`None` when padding would not
    save work (one dominant group)."""
    n = scores.numel()
    order = _order(scores)  # global rank: descending score, ties by index
    g_sorted = group.index_select(0, order)
    within = torch.sort(g_sorted, stable=True).indices  # by group, then rank
    idx = order.index_select(0, within)
    g = g_sorted.index_select(0, within)
    counts = torch.bincount(g)
    parts = length_groups(counts.cpu())
    work = sum(p.numel() * int(counts[p].max()) ** 2 for p in parts)
    if work >= n * n:
        return None
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(n, device=scores.device) - starts.index_select(0, g)
    seg_all = segments.index_select(0, idx)
    keep_sorted = torch.zeros(n, dtype=torch.bool, device=scores.device)
    part_of, slot = group_membership(parts, counts.numel())  # a group's part and row
    item_part = part_of.to(g.device).index_select(0, g)
    item_slot = slot.to(g.device).index_select(0, g)
    for k, p in enumerate(parts):
        rows = (item_part == k).nonzero().view(-1)
        keep_sorted[rows] = _padded_nms(seg_all[rows], item_slot[rows], pos[rows], p.numel(),
                                        int(counts[p].max()), iou_threshold)
    kept = idx[keep_sorted]
    # Back to global rank order (what nms() returns).
    rank = torch.empty_like(order)
    rank.index_copy_(0, order, torch.arange(n, device=scores.device))
    return kept.index_select(0, torch.sort(rank.index_select(0, kept)).indices)


def _padded_nms(seg: Tensor, row: Tensor, col: Tensor, num_groups: int, s_max: int,
                iou_threshold: float) -> Tensor:
    # Kept flags of `seg` (each at [row, col] of a [num_groups, s_max] padding, columns
    # in descending score order): the fixed point of the greedy recursion.
    flat = row * s_max + col
    pad = seg.new_zeros(num_groups * s_max, 2)
    pad.index_copy_(0, flat, seg)
    valid = torch.zeros(num_groups * s_max, dtype=torch.bool, device=seg.device)
    valid.index_fill_(0, flat, True)
    pad = pad.view(num_groups, s_max, 2)
    valid = valid.view(num_groups, s_max)
    # Same arithmetic as segment_iou (so the result equals nms() per group), in place:
    # union == 0 only where inter == 0 (both lengths 0), so dividing by 1 there gives
    # segment_iou's 0.
    inter = pad[:, :, None, 1].minimum(pad[:, None, :, 1])
    inter.sub_(pad[:, :, None, 0].maximum(pad[:, None, :, 0])).clamp_min_(0)
    length = (pad[..., 1] - pad[..., 0]).clamp_min(0)
    union = length[:, :, None] + length[:, None, :]
    union.sub_(inter)
    union.masked_fill_(union <= 0, 1.0)
    iou = inter.div_(union)
    del union
    sup = iou > iou_threshold
    sup &= valid[:, :, None]
    sup &= valid[:, None, :]
    sup_f = sup.triu_(diagonal=1).to(torch.float32)
    keep = valid.clone()
    for _ in range(s_max + 1):
        new_keep = (torch.bmm(keep.to(torch.float32).unsqueeze(1), sup_f).squeeze(1) == 0) & valid
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return keep.view(-1).index_select(0, flat)


def batched_nms(
    segments: Tensor,
    scores: Tensor,
    idxs: Tensor,
    iou_threshold: float,
    method: str = "hard",
    **kwargs,
) -> tuple[Tensor, Tensor]:
    r"""NMS that never lets segments of different groups suppress each other.

    Groups are usually class labels, or (video, class) pairs flattened into one
    id. Segments are shifted so that different groups cannot overlap, and one
    (soft-)NMS runs on all of them at once.

    Args:
        segments (torch.Tensor): Segments of shape :obj:`[N, 2]`.
        scores (torch.Tensor): Scores of shape :obj:`[N]`.
        idxs (torch.Tensor): Group id of each segment, shape :obj:`[N]`.
        iou_threshold (float): IoU threshold (hard NMS) or decay threshold (soft).
        method (str, optional): :obj:`"hard"` for :func:`nms`, or a
            :func:`soft_nms` method. (default: :obj:`"hard"`)
        **kwargs: Passed on to :func:`soft_nms`.

    Returns:
        (torch.Tensor, torch.Tensor): Indices kept, by descending (decayed)
        score, and their scores.
    """
    _check(segments, scores)
    if idxs.shape != scores.shape:
        raise ValueError(f"'idxs' must have shape {list(scores.shape)}, got {list(idxs.shape)}")
    if segments.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=segments.device), scores.new_empty(0)
    seg = segments.to(torch.float64)
    lo, hi = seg.min(), seg.max()
    span = (hi - lo) + 1.0
    # Compact the group ids so the offsets stay small.
    _, group = torch.unique(idxs, return_inverse=True)
    shifted = seg - lo + group.to(torch.float64)[:, None] * (span + 1.0)
    if method == "hard":
        keep = _grouped_nms(segments, scores, group, iou_threshold)
        if keep is None:
            keep = nms(shifted, scores, iou_threshold)
        return keep, scores.index_select(0, keep)
    keep, new_scores = soft_nms(shifted, scores, iou_threshold, method=method, **kwargs)
    order = _order(new_scores)
    return keep.index_select(0, order), new_scores.index_select(0, order)
