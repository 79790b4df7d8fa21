"""Input validation and small vectorised helpers shared by the graph builders."""

from __future__ import annotations

import torch
from torch import Tensor

from tagraph.ops.finite import all_finite
from tagraph.ops.sort import stable_argsort

__all__ = [
    "where_prefix",
    "check_features",
    "check_snippet_times",
    "check_segments",
    "topk_per_group",
    "expand_ranges",
]


def where_prefix(video_id: str | None) -> str:
    return f"video '{video_id}': " if video_id is not None else ""


def check_features(features: Tensor, video_id: str | None, name: str = "features") -> None:
    w = where_prefix(video_id)
    if not isinstance(features, Tensor):
        raise ValueError(f"{w}'{name}' must be a torch.Tensor, got {type(features).__name__}")
    if features.dim() != 2:
        raise ValueError(f"{w}'{name}' must have shape [T, D], got {list(features.shape)}")
    if not features.is_floating_point():
        raise ValueError(f"{w}'{name}' must be floating point, got {features.dtype}")
    if not all_finite(features):
        bad = (~torch.isfinite(features)).any(dim=1).nonzero().flatten()
        raise ValueError(
            f"{w}'{name}' contains NaN or Inf values (in {bad.numel()} rows, first row "
            f"{int(bad[0])})"
        )


def check_snippet_times(snippet_times: Tensor, num_snippets: int, video_id: str | None) -> None:
    w = where_prefix(video_id)
    if not isinstance(snippet_times, Tensor) or snippet_times.dim() != 1:
        shape = list(snippet_times.shape) if isinstance(snippet_times, Tensor) else None
        raise ValueError(f"{w}'snippet_times' must be a 1-D tensor [T], got {shape}")
    if snippet_times.numel() != num_snippets:
        raise ValueError(
            f"{w}'snippet_times' has {snippet_times.numel()} entries but 'features' has "
            f"{num_snippets} snippets"
        )
    if not bool(torch.isfinite(snippet_times).all()):
        raise ValueError(f"{w}'snippet_times' contains NaN or Inf values")
    if num_snippets > 1 and bool((snippet_times[1:] < snippet_times[:-1]).any()):
        raise ValueError(f"{w}'snippet_times' must be non-decreasing")


def check_segments(
    segments: Tensor,
    video_id: str | None,
    name: str,
    extent: tuple[float, float] | None,
    allow_empty_length: bool,
) -> None:
    w = where_prefix(video_id)
    if not isinstance(segments, Tensor) or segments.dim() != 2 or segments.size(-1) != 2:
        shape = list(segments.shape) if isinstance(segments, Tensor) else type(segments).__name__
        raise ValueError(f"{w}'{name}' must have shape [N, 2] (start, end) in seconds, got {shape}")
    if segments.numel() == 0:
        return
    if not bool(torch.isfinite(segments).all()):
        raise ValueError(f"{w}'{name}' contains NaN or Inf values")
    length = segments[:, 1] - segments[:, 0]
    bad = (length < 0) if allow_empty_length else (length <= 0)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        what = ("inverted (end < start)" if allow_empty_length
                else "inverted or empty (end <= start)")
        raise ValueError(
            f"{w}'{name}' has {int(bad.sum())} {what} segments, first at index {i}: "
            f"[{float(segments[i, 0]):.4f}, {float(segments[i, 1]):.4f}]"
        )
    if extent is not None:
        lo, hi = extent
        out = (segments[:, 0] < lo) | (segments[:, 1] > hi)
        if bool(out.any()):
            i = int(out.nonzero()[0])
            raise ValueError(
                f"{w}'{name}' has {int(out.sum())} segments outside the video "
                f"[{lo:.4f}, {hi:.4f}] s, first at index {i}: "
                f"[{float(segments[i, 0]):.4f}, {float(segments[i, 1]):.4f}]"
            )


def expand_ranges(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    r"""Enumerates every :obj:`(q, p)` with :obj:`lo[q] <= p < hi[q]`.

    Returns the query index and the position for each pair, grouped by query
    and increasing in position, without a Python loop.
    """
    count = (hi - lo).clamp_min(0)
    end = torch.cumsum(count, 0)
    total = int(end[-1]) if end.numel() else 0
    if total < (1 << 16):
        # small outputs: repeat_interleave's parallel kernel has a large fixed
        # cost on a busy machine; a binary search is cheaper there
        query = torch.searchsorted(end, torch.arange(total, device=lo.device), right=True)
    else:
        query = torch.repeat_interleave(torch.arange(lo.numel(), device=lo.device), count,
                                        output_size=total)
    start = end - count
    pos = torch.arange(total, device=lo.device) - start[query] + lo[query]
    return query, pos


def topk_per_group(group: Tensor, key: Tensor, tie: Tensor, k: int, descending: bool) -> Tensor:
    r"""Indices of the first :obj:`k` items of every group, ordered by
    (:obj:`group`, :obj:`key`, :obj:`tie`).

    :obj:`key` is sorted descending when :obj:`descending` else ascending;
    ties in :obj:`key` go to the lower :obj:`tie`. A segment sort: three
    stable sorts (float keys as order-preserving integers,
    :func:`tagraph.ops.stable_argsort`), then the rank inside each group from
    cumulative counts.
    The result is sorted by group, then key order.
    """
    if group.numel() == 0 or k <= 0:
        return group.new_zeros(0)
    perm = stable_argsort(tie)
    perm = perm[stable_argsort(key[perm], descending=descending)]
    perm = perm[stable_argsort(group[perm])]
    g = group[perm]
    first = torch.ones_like(g, dtype=torch.bool)
    first[1:] = g[1:] != g[:-1]
    idx = torch.arange(g.numel(), device=g.device)
    start = torch.cummax(torch.where(first, idx, torch.zeros_like(idx)), 0).values
    rank = idx - start
    return perm[rank < k]
