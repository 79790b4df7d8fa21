r"""Losses of proposal-based detectors (SSN / P-GCN)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["completeness_hinge_loss", "class_wise_smooth_l1_loss"]


def completeness_hinge_loss(
    logits: Tensor,
    labels: Tensor,
    is_positive: Tensor,
    ohem_ratio: float = 1.0 / 6.0,
) -> Tensor:
    r"""Class-specific completeness hinge loss with online hard example mining
    (`"Temporal Action Detection with Structured Segment Networks"
    <https://arxiv.org/abs/1704.06228>`_, used by P-GCN).

    For sample :math:`i` with class :math:`c_i` and logit
    :math:`s_i = \text{logits}[i, c_i]`, the loss is
    :math:`\max(0, 1 - s_i)` for complete (positive) proposals and
    :math:`\max(0, 1 + s_i)` for incomplete (negative) ones. All positives are
    kept, and only the :math:`\lceil r \cdot n_{neg} \rceil` negatives with the
    largest loss; the sum is divided by the number kept.

    Args:
        logits (torch.Tensor): Completeness logits :obj:`[N, K]`.
        labels (torch.Tensor): Class indices :obj:`[N]` in :obj:`[0, K)`.
        is_positive (torch.Tensor): Boolean :obj:`[N]`.
        ohem_ratio (float, optional): Fraction :math:`r` of negatives kept.
            (default: :obj:`1/6`)
    """
    if logits.numel() == 0 or labels.numel() == 0:
        return logits.sum() * 0.0
    s = logits.gather(1, labels.view(-1, 1)).view(-1)
    sign = torch.where(is_positive, 1.0, -1.0).to(s.dtype)
    loss = F.relu(1.0 - sign * s)
    pos = loss[is_positive]
    neg = loss[~is_positive]
    k = min(neg.numel(), math.ceil(ohem_ratio * neg.numel()))
    if k > 0:
        neg = torch.topk(neg, k, sorted=False).values
    else:
        neg = neg[:0]
    kept = pos.numel() + neg.numel()
    if kept == 0:
        return logits.sum() * 0.0
    return (pos.sum() + neg.sum()) / kept


def class_wise_smooth_l1_loss(
    pred: Tensor,
    target: Tensor,
    labels: Tensor,
    beta: float = 1.0,
) -> Tensor:
    r"""Smooth-L1 loss of the regression output of each sample's own class.

    Args:
        pred (torch.Tensor): Predictions :obj:`[N, K, 2]` (or :obj:`[N, 2K]`).
        target (torch.Tensor): Targets :obj:`[N, 2]`.
        labels (torch.Tensor): Class indices :obj:`[N]` in :obj:`[0, K)`.
        beta (float, optional): Smooth-L1 transition point. (default: :obj:`1.0`)
    """
    if labels.numel() == 0:
        return pred.sum() * 0.0
    pred = pred.view(pred.size(0), -1, 2)
    idx = labels.view(-1, 1, 1).expand(-1, 1, 2)
    own = pred.gather(1, idx).view(-1, 2)
    return F.smooth_l1_loss(own, target, beta=beta)
