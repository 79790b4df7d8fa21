"""Pooling of snippet features over many (start, end) ranges at once."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["range_max_pool", "range_mean_pool"]


def _ranges(x: Tensor, starts: Tensor, ends: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if x.dim() != 2:
        raise ValueError(f"'x' must have shape [T, D], got {list(x.shape)}")
    if starts.shape != ends.shape or starts.dim() != 1:
        raise ValueError(
            f"'starts' and 'ends' must be 1-D of equal length, got {list(starts.shape)} "
            f"and {list(ends.shape)}"
        )
    t = x.size(0)
    s = starts.to(torch.long).clamp(0, t)
    e = ends.to(torch.long).clamp(0, t)
    return s, e, e > s


def range_max_pool(x: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    r"""Max of :obj:`x[start:end]` for many half-open snippet ranges at once.

    Uses a sparse table: level :math:`k` holds the maximum of every window of
    :math:`2^k` snippets, and a range of length :math:`L` is the maximum of two
    (overlapping) windows of level :math:`\lfloor \log_2 L \rfloor`. Building
    costs :math:`O(T D \log L_{max})`, each query :math:`O(D)`, with no loop
    over ranges. Ranges are clipped to :math:`[0, T]`; empty ones pool to zero.

    Args:
        x (torch.Tensor): Snippet features of shape :obj:`[T, D]`.
        starts (torch.Tensor): First snippet of each range, shape :obj:`[N]`.
        ends (torch.Tensor): One past the last snippet, shape :obj:`[N]`.

    Returns:
        torch.Tensor: Pooled features of shape :obj:`[N, D]`.
    """
    s, e, valid = _ranges(x, starts, ends)
    t, d = x.shape
    n = s.numel()
    if n == 0 or t == 0:
        return x.new_zeros(n, d)
    length = (e - s).clamp_min(1)
    max_len = int(length.max())
    levels = max(1, max_len.bit_length())  # level k covers windows of 2**k, k < levels
    table = x.new_empty(levels, t, d)
    table[0] = x
    for k in range(1, levels):
        w = 1 << (k - 1)
        table[k] = table[k - 1]
        if t > w:
            torch.maximum(table[k - 1, : t - w], table[k - 1, w:], out=table[k, : t - w])
    k = torch.floor(torch.log2(length.to(torch.float64))).to(torch.long)
    k = k.clamp(0, levels - 1)
    flat = table.view(levels * t, d)
    s_c = s.clamp(max=t - 1)
    left = flat.index_select(0, k * t + s_c)
    right_start = (e - (1 << k)).clamp(0, t - 1)
    right = flat.index_select(0, k * t + right_start)
    out = torch.maximum(left, right)
    return out * valid[:, None].to(out.dtype)


def range_mean_pool(x: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    r"""Mean of :obj:`x[start:end]` for many half-open snippet ranges at once.

    .. math::
        \bar{x}_{[s, e)} = \frac{P_e - P_s}{e - s}, \qquad P_t = \sum_{u < t} x_u

    Prefix sums are accumulated in float64, so long videos do not drift.
    Ranges are clipped to :math:`[0, T]`; empty ones pool to zero.

    Args:
        x (torch.Tensor): Snippet features of shape :obj:`[T, D]`.
        starts (torch.Tensor): First snippet of each range, shape :obj:`[N]`.
        ends (torch.Tensor): One past the last snippet, shape :obj:`[N]`.

    Returns:
        torch.Tensor: Pooled features of shape :obj:`[N, D]`.
    """
    s, e, valid = _ranges(x, starts, ends)
    t, d = x.shape
    if s.numel() == 0:
        return x.new_zeros(0, d)
    acc = torch.float64 if x.dtype in (torch.float32, torch.float64, torch.float16,
                                       torch.bfloat16) else x.dtype
    prefix = x.new_zeros(t + 1, d, dtype=acc)
    torch.cumsum(x.to(acc), dim=0, out=prefix[1:])
    total = prefix.index_select(0, e) - prefix.index_select(0, s)
    count = (e - s).clamp_min(1).to(acc)[:, None]
    out = (total / count).to(x.dtype)
    return out * valid[:, None].to(out.dtype)
