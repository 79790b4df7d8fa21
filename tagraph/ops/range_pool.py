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


# Rows gathered per step: temporaries stay small (a few MB), so the allocator
# recycles them instead of mapping and faulting fresh pages on every call.
_CHUNK_ELEMENTS = 1 << 20


def _check_out(out: Tensor | None, x: Tensor, n: int) -> Tensor:
    d = x.size(1)
    if out is None:
        return x.new_empty(n, d)
    if out.shape != (n, d) or out.dtype != x.dtype:
        raise ValueError(
            f"'out' must be a {x.dtype} tensor of shape {[n, d]}, got {out.dtype} "
            f"{list(out.shape)}")
    return out


def _next_level_(table: Tensor, w: int, rows: int) -> None:
    r"""In place: :obj:`table[i] = max(table[i], table[i + w])` for
    :math:`i < T - w`, in ascending blocks of :obj:`rows` rows. A block reads
    rows at or after its own start only, none of which has been written yet,
    so one :obj:`[T, D]` buffer holds every level (the last :obj:`w` rows keep
    their truncated windows)."""
    t = table.size(0)
    tmp = None
    for r0 in range(0, t - w, rows):
        r1 = min(t - w, r0 + rows)
        if w >= r1 - r0:  # the shifted rows do not overlap the block
            torch.maximum(table[r0:r1], table[r0 + w:r1 + w], out=table[r0:r1])
        else:
            if tmp is None:
                tmp = table.new_empty(min(rows, t), table.size(1))
            torch.maximum(table[r0:r1], table[r0 + w:r1 + w], out=tmp[: r1 - r0])
            table[r0:r1] = tmp[: r1 - r0]


def range_max_pool(x: Tensor, starts: Tensor, ends: Tensor, *,
                   out: Tensor | None = None) -> Tensor:
    r"""Max of :obj:`x[start:end]` for many half-open snippet ranges at once.

    Uses a sparse table: level :math:`k` holds the maximum of every window of
    :math:`2^k` snippets, and a range of length :math:`L` is the maximum of two
    (overlapping) windows of level :math:`\lfloor \log_2 L \rfloor`. Levels are
    built one after the other in two :obj:`[T, D]` buffers and each range is
    answered at its level, so building costs :math:`O(T D \log L_{max})` time
    but only one :obj:`[T, D]` buffer (levels are updated in place, in
    blocks), and each query :math:`O(D)`, with no loop over ranges. Ranges are
    clipped to :math:`[0, T]`; empty ones pool to zero.

    Args:
        x (torch.Tensor): Snippet features of shape :obj:`[T, D]`.
        starts (torch.Tensor): First snippet of each range, shape :obj:`[N]`.
        ends (torch.Tensor): One past the last snippet, shape :obj:`[N]`.
        out (torch.Tensor, optional): :obj:`[N, D]` tensor to write into (may
            be a strided view, e.g. one part of a concatenated feature).
            (default: :obj:`None`)

    Returns:
        torch.Tensor: Pooled features of shape :obj:`[N, D]`.
    """
    s, e, valid = _ranges(x, starts, ends)
    t, d = x.shape
    n = s.numel()
    out = _check_out(out, x, n)
    if n == 0:
        return out
    if t == 0:
        return out.zero_()
    length = (e - s).clamp_min(1)
    # floor(log2(L)) exactly, from the bit length of the integer L
    level = torch.zeros_like(length)
    rest = length.clone()
    for b in (32, 16, 8, 4, 2, 1):
        big = rest >= (1 << b)
        level += big * b
        rest = torch.where(big, rest >> b, rest)
    order = torch.sort(level, stable=True)
    counts = torch.bincount(order.values).tolist()
    rows = max(1, _CHUNK_ELEMENTS // max(d, 1))
    table = x
    pos = 0
    for k, count in enumerate(counts):
        if k > 0:  # level k from level k - 1: windows of 2^k
            w = 1 << (k - 1)
            if table is x:
                table = torch.empty_like(x)
                if t > w:
                    torch.maximum(x[: t - w], x[w:], out=table[: t - w])
                table[max(0, t - w):] = x[max(0, t - w):]
            else:
                _next_level_(table, w, rows)
        if count == 0:
            continue
        q = order.indices[pos:pos + count]
        pos += count
        left_all = s[q].clamp(max=t - 1)
        right_all = (e[q] - (1 << k)).clamp(0, t - 1)
        for a in range(0, count, rows):
            qa = q[a:a + rows]
            left = table.index_select(0, left_all[a:a + rows])
            torch.maximum(left, table.index_select(0, right_all[a:a + rows]), out=left)
            out.index_copy_(0, qa, left)
    if not bool(valid.all()):
        out[~valid] = 0
    return out


def range_mean_pool(x: Tensor, starts: Tensor, ends: Tensor, *,
                    out: Tensor | None = None) -> Tensor:
    r"""Mean of :obj:`x[start:end]` for many half-open snippet ranges at once.

    .. math::
        \bar{x}_{[s, e)} = \frac{P_e - P_s}{e - s}, \qquad P_t = \sum_{u < t} x_u

    Prefix sums are accumulated in float64, so long videos do not drift.
    Ranges are clipped to :math:`[0, T]`; empty ones pool to zero.

    Args:
        x (torch.Tensor): Snippet features of shape :obj:`[T, D]`.
        starts (torch.Tensor): First snippet of each range, shape :obj:`[N]`.
        ends (torch.Tensor): One past the last snippet, shape :obj:`[N]`.
        out (torch.Tensor, optional): :obj:`[N, D]` tensor to write into.
            (default: :obj:`None`)

    Returns:
        torch.Tensor: Pooled features of shape :obj:`[N, D]`.
    """
    s, e, valid = _ranges(x, starts, ends)
    t, d = x.shape
    n = s.numel()
    out = _check_out(out, x, n)
    if n == 0:
        return out
    acc = torch.float64 if x.dtype in (torch.float32, torch.float64, torch.float16,
                                       torch.bfloat16) else x.dtype
    prefix = x.new_zeros(t + 1, d, dtype=acc)
    torch.cumsum(x.to(acc), dim=0, out=prefix[1:])
    count = (e - s).clamp_min(1).to(acc)[:, None]
    rows = max(1, _CHUNK_ELEMENTS // max(d, 1))
    for a in range(0, n, rows):  # chunks keep the float64 temporaries small
        total = prefix.index_select(0, e[a:a + rows]) - prefix.index_select(0, s[a:a + rows])
        out[a:a + rows] = total / count[a:a + rows]
    if not bool(valid.all()):
        out[~valid] = 0
    return out
