"""Grouping of variable-length items for padded batched work."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["group_membership", "length_groups"]


def length_groups(lengths: Tensor, max_waste: float = 1.5,
                  max_elements: int = 2 ** 26) -> list[Tensor]:
    r"""Groups of items (indices into :obj:`lengths`, e.g. videos of
    :math:`T_i` snippets) for padded per-item :math:`T \times T` work such as
    per-video attention or per-(video, class) NMS: items sorted by length, a
    group cut wherever padding it to its longest item would cost more than
    :obj:`max_waste` times its unpadded work :math:`\sum_i T_i^2`, or more
    than :obj:`max_elements` elements (a single item always gets a group).
    One group holds all items when padding wastes little.

    Args:
        lengths (torch.Tensor): Item lengths :obj:`[B]`.
        max_waste (float, optional): Largest padded / unpadded work of a group.
            (default: :obj:`1.5`)
        max_elements (int, optional): Largest :math:`|G|\, T_{max}^2` of a group
            of several items. (default: :obj:`2 ** 26`)

    Returns:
        list[torch.Tensor]: Sorted index tensors covering every item once.
    """
    lengths = lengths.long().cpu()
    order = torch.argsort(lengths, stable=True)
    sq = (lengths[order] ** 2).tolist()
    groups: list[list[int]] = []
    cur: list[int] = []
    work = 0
    for pos, i in enumerate(order.tolist()):
        t2 = sq[pos]  # ascending, so t2 is the group's padded length if added
        if cur and ((len(cur) + 1) * t2 > max_waste * (work + t2)
                    or (len(cur) + 1) * t2 > max_elements):
            groups.append(cur)
            cur, work = [], 0
        cur.append(i)
        work += t2
    if cur:
        groups.append(cur)
    return [torch.tensor(sorted(g), dtype=torch.long) for g in groups]


def group_membership(groups: list[Tensor], num_items: int) -> tuple[Tensor, Tensor]:
    r"""For every item, its group (index into :obj:`groups`, e.g. from
    :func:`length_groups`) and its position (slot) inside that group.

    Returns:
        (torch.Tensor, torch.Tensor): Group index and slot, each :obj:`[num_items]`.
    """
    part = torch.full((num_items,), -1, dtype=torch.long)
    slot = torch.full((num_items,), -1, dtype=torch.long)
    if groups:
        members = torch.cat(groups)
        sizes = torch.tensor([g.numel() for g in groups])
        part[members] = torch.repeat_interleave(torch.arange(len(groups)), sizes)
        starts = torch.cumsum(sizes, 0) - sizes
        slot[members] = torch.arange(members.numel()) - starts.repeat_interleave(sizes)
    return part, slot

