"""Pairwise temporal IoU and overlap of 1-D segments."""

from __future__ import annotations

from torch import Tensor

__all__ = ["segment_intersection", "segment_iou", "segment_overlap", "segment_iou_pairwise"]


def _check(seg: Tensor, name: str) -> None:
    if seg.dim() != 2 or seg.size(-1) != 2:
        raise ValueError(f"'{name}' must have shape [N, 2] (start, end), got {list(seg.shape)}")


def segment_intersection(a: Tensor, b: Tensor) -> Tensor:
    r"""Pairwise intersection length :math:`|a_i \cap b_j|` of segments.

    Args:
        a (torch.Tensor): Segments of shape :obj:`[N, 2]` as (start, end).
        b (torch.Tensor): Segments of shape :obj:`[M, 2]`.

    Returns:
        torch.Tensor: Intersections of shape :obj:`[N, M]`, non-negative.
    """
    _check(a, "a")
    _check(b, "b")
    left = a[:, None, 0].maximum(b[None, :, 0])
    right = a[:, None, 1].minimum(b[None, :, 1])
    return (right - left).clamp_min(0)


def segment_iou(a: Tensor, b: Tensor) -> Tensor:
    r"""Pairwise temporal intersection-over-union of two sets of segments.

    .. math::
        \mathrm{tIoU}(a_i, b_j) = \frac{|a_i \cap b_j|}{|a_i| + |b_j| - |a_i \cap b_j|}

    Pairs whose union is empty (two zero-length segments at one point) get 0.

    Args:
        a (torch.Tensor): Segments of shape :obj:`[N, 2]` as (start, end).
        b (torch.Tensor): Segments of shape :obj:`[M, 2]`.

    Returns:
        torch.Tensor: IoU matrix of shape :obj:`[N, M]`.
    """
    inter = segment_intersection(a, b)
    len_a = (a[:, 1] - a[:, 0]).clamp_min(0)
    len_b = (b[:, 1] - b[:, 0]).clamp_min(0)
    union = len_a[:, None] + len_b[None, :] - inter
    return inter / union.where(union > 0, union.new_ones(())) * (union > 0)


def segment_overlap(a: Tensor, b: Tensor) -> Tensor:
    r"""Pairwise fraction of each segment of :obj:`a` covered by :obj:`b`.

    .. math::
        \mathrm{overlap}(a_i, b_j) = \frac{|a_i \cap b_j|}{|a_i|}

    Zero-length segments of :obj:`a` get 0.

    Args:
        a (torch.Tensor): Segments of shape :obj:`[N, 2]`.
        b (torch.Tensor): Segments of shape :obj:`[M, 2]`.

    Returns:
        torch.Tensor: Overlap matrix of shape :obj:`[N, M]`.
    """
    inter = segment_intersection(a, b)
    len_a = (a[:, 1] - a[:, 0]).clamp_min(0)
    pos = len_a > 0
    return inter / len_a.where(pos, len_a.new_ones(()))[:, None] * pos[:, None]


def segment_iou_pairwise(a: Tensor, b: Tensor) -> Tensor:
    r"""Element-wise tIoU of aligned segments :obj:`a[i]` and :obj:`b[i]`.

    Args:
        a (torch.Tensor): Segments of shape :obj:`[N, 2]`.
        b (torch.Tensor): Segments of shape :obj:`[N, 2]`.

    Returns:
        torch.Tensor: IoU vector of shape :obj:`[N]`.
    """
    _check(a, "a")
    _check(b, "b")
    inter = (a[:, 1].minimum(b[:, 1]) - a[:, 0].maximum(b[:, 0])).clamp_min(0)
    union = (a[:, 1] - a[:, 0]).clamp_min(0) + (b[:, 1] - b[:, 0]).clamp_min(0) - inter
    return inter / union.where(union > 0, union.new_ones(())) * (union > 0)
