r"""Proposal generators for videos that come without proposals."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tagraph.ops import nms

__all__ = ["sliding_window_proposals", "actionness_grouping"]


def _duration(duration_or_times: float | Tensor) -> float:
    if isinstance(duration_or_times, Tensor):
        from tagraph.data.proposal_graph import video_extent

        if duration_or_times.dim() != 1:
            raise ValueError("'snippet_times' must be a 1-D tensor [T]")
        return video_extent(duration_or_times)[1]
    return float(duration_or_times)


def sliding_window_proposals(
    duration: float | Tensor,
    scales: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
    overlap: float = 0.5,
    *,
    cover_end: bool = True,
) -> Tensor:
    r"""Multi-scale sliding windows, as in S-CNN (`"Temporal Action
    Localization in Untrimmed Videos via Multi-stage CNNs"
    <https://arxiv.org/abs/1601.02129>`_).

    For each window length :math:`w` in :obj:`scales` (seconds) the windows
    :math:`[k s, k s + w]` with stride :math:`s = w (1 - \mathrm{overlap})`
    that fit in the video; with :obj:`cover_end`, one more window
    :math:`[D - w, D]` ends at the video's end :math:`D` when the stride does
    not land there. Lengths longer than the video give no window.

    Args:
        duration (float or torch.Tensor): Video length (s), or the snippet
            centre times :obj:`[T]` (the length is then the last centre plus
            half a snippet, see :func:`~tagraph.data.proposal_graph.video_extent`).
        scales (Sequence[float], optional): Window lengths (s).
            (default: :obj:`(1, 2, 4, 8, 16, 32, 64)`)
        overlap (float, optional): Overlap of consecutive windows, in
            :math:`[0, 1)`. (default: :obj:`0.5`)
        cover_end (bool, optional): Add a window flush with the video end.
            (default: :obj:`True`)

    Returns:
        torch.Tensor: Proposals :obj:`[N, 2]` (start, end) in seconds, by
        scale then start.
    """
    total = _duration(duration)
    if not 0 <= overlap < 1:
        raise ValueError(f"'overlap' must be in [0, 1), got {overlap}")
    if any(w <= 0 for w in scales):
        raise ValueError(f"'scales' must be positive window lengths (s), got {list(scales)}")
    out = []
    eps = 1e-9 * max(1.0, total)
    for w in scales:  # a handful of scales, not a loop over windows
        if w > total + eps:
            continue
        stride = w * (1 - overlap)
        count = int((total - w + eps) // stride) + 1
        start = torch.arange(count, dtype=torch.float64) * stride
        if cover_end and float(start[-1]) + w < total - eps:
            start = torch.cat([start, start.new_tensor([total - w])])
        out.append(torch.stack([start, (start + w).clamp(max=total)], 1))
    if not out:
        return torch.zeros(0, 2)
    return torch.cat(out).to(torch.get_default_dtype())


def actionness_grouping(
    actionness: Tensor,
    snippet_times: Tensor,
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    max_gaps: Sequence[int] = (0, 1, 2),
    *,
    min_snippets: int = 1,
    nms_iou: float | None = None,
    max_proposals: int | None = None,
    duration: float | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Temporal actionness grouping (TAG), from the `"Temporal Action
    Detection with Structured Segment Networks"
    <https://arxiv.org/abs/1704.06228>`_ paper, vectorised.

    For every threshold :math:`\tau` the snippets with actionness
    :math:`a_t > \tau` form runs; runs separated by at most :obj:`max_gap`
    snippets below the threshold are merged (the tolerance TAG's watershed
    grouping gives to short dips). Each resulting region
    :math:`[t_s, t_e]` (snippet indices) is scored by its mean actionness

    .. math::
        \mathrm{score} = \frac{1}{t_e - t_s + 1} \sum_{t = t_s}^{t_e} a_t,

    regions from all thresholds and gaps are de-duplicated (a region found
    several times is kept once), optionally pruned by NMS, and sorted by
    score. A region spans from half a snippet before its first centre to half
    a snippet after its last one, clipped to the video. All thresholds are
    processed at once on a :obj:`[K, T]` mask: no loop over snippets.

    Args:
        actionness (torch.Tensor): Per-snippet actionness :obj:`[T]`.
        snippet_times (torch.Tensor): Snippet centre times :obj:`[T]` (s).
        thresholds (Sequence[float], optional): Levels :math:`\tau`.
            (default: :obj:`(0.1, ..., 0.9)`)
        max_gaps (Sequence[int], optional): Tolerated gaps (snippets), one
            grouping per value. (default: :obj:`(0, 1, 2)`)
        min_snippets (int, optional): Shortest region kept, in snippets.
            (default: :obj:`1`)
        nms_iou (float, optional): If set, greedy NMS at this tIoU.
            (default: :obj:`None`)
        max_proposals (int, optional): Keep the best this many.
            (default: :obj:`None`)
        duration (float, optional): Video length (s) for clipping.
            (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor): Proposals :obj:`[N, 2]` in seconds and
        their scores :obj:`[N]`, best first.
    """
    if actionness.dim() != 1 or snippet_times.dim() != 1 or \
            actionness.numel() != snippet_times.numel():
        raise ValueError(
            f"'actionness' and 'snippet_times' must be 1-D of equal length, got "
            f"{list(actionness.shape)} and {list(snippet_times.shape)}")
    if not bool(torch.isfinite(actionness).all()):
        raise ValueError("'actionness' contains NaN or Inf values")
    if any(g < 0 for g in max_gaps):
        raise ValueError(f"'max_gaps' must be >= 0, got {list(max_gaps)}")
    t = actionness.numel()
    dtype = snippet_times.dtype if snippet_times.is_floating_point() else torch.float32
    if t == 0 or not thresholds or not max_gaps:
        return torch.zeros(0, 2, dtype=dtype), torch.zeros(0, dtype=dtype)
    a = actionness.to(torch.float64)
    thr = torch.as_tensor(list(thresholds), dtype=torch.float64)
    k = thr.numel()
    mask = a[None, :] > thr[:, None]  # [K, T]
    pad = torch.zeros(k, 1, dtype=torch.bool)
    edges = torch.cat([pad, mask, pad], 1).to(torch.int8).diff(dim=1)  # [K, T + 1]
    rs_k, rs = (edges == 1).nonzero(as_tuple=True)  # run starts, row-major
    _, re = (edges == -1).nonzero(as_tuple=True)  # one past run ends
    # runs are ordered by (threshold, start); starts and ends pair up in order
    regions = []
    for g in max_gaps:  # a few tolerances
        new = torch.ones_like(rs, dtype=torch.bool)
        if rs.numel() > 1:
            same_row = rs_k[1:] == rs_k[:-1]
            new[1:] = ~same_row | (rs[1:] - re[:-1] > g)
        first = new.nonzero().flatten()
        last = torch.cat([first[1:] - 1, first.new_tensor([rs.numel() - 1])]) \
            if first.numel() else first
        regions.append(torch.stack([rs[first], re[last]], 1))  # [start, end) indices
    reg = torch.unique(torch.cat(regions), dim=0)  # de-duplicate
    reg = reg[(reg[:, 1] - reg[:, 0]) >= min_snippets]
    if reg.numel() == 0:
        return torch.zeros(0, 2, dtype=dtype), torch.zeros(0, dtype=dtype)
    prefix = torch.cat([a.new_zeros(1), torch.cumsum(a, 0)])
    score = (prefix[reg[:, 1]] - prefix[reg[:, 0]]) / (reg[:, 1] - reg[:, 0])
    times = snippet_times.to(torch.float64)
    half = (float(times[-1] - times[0]) / (t - 1) / 2) if t > 1 else float(times[0])
    end_video = float(times[-1]) + max(half, float(times[0])) if duration is None \
        else float(duration)
    seg = torch.stack([(times[reg[:, 0]] - half).clamp_min(0),
                       (times[reg[:, 1] - 1] + half).clamp_max(end_video)], 1)
    order = torch.sort(score, descending=True, stable=True).indices
    seg, score = seg[order], score[order]
    if nms_iou is not None:
        keep = nms(seg, score, nms_iou)
        seg, score = seg[keep], score[keep]
    if max_proposals is not None:
        seg, score = seg[:max_proposals], score[:max_proposals]
    return seg.to(dtype), score.to(dtype)
