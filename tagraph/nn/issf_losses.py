r"""Losses of ISSF (`"Weakly-Supervised Temporal Action Localization by
Inferring Salient Snippet-Feature" <https://doi.org/10.1609/aaai.v38i7.28516>`_,
Yun et al., AAAI 2024). The normalised cross-entropy on video scores is the
shared :func:`tagraph.nn.mil.normalized_ce_loss`."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from tagraph.nn.mil import segment_mean_pool, topk_mean_pool

__all__ = ["attention_contrast_loss", "soft_label_ce_loss"]


def attention_contrast_loss(attention: Tensor, batch: Tensor | None = None, ratio: int = 8,
                            num_graphs: int | None = None) -> Tensor:
    r"""ISSF's attention loss: mean of the :math:`k` smallest minus mean of the
    :math:`k` largest attention values of every video, :math:`k = \max(1,
    \lfloor T / r \rfloor)`, averaged over videos."""
    att = attention.reshape(-1, 1)
    top = topk_mean_pool(att, batch, ratio=ratio, num_graphs=num_graphs)
    bottom = -topk_mean_pool(-att, batch, ratio=ratio, num_graphs=num_graphs)
    return (bottom - top).mean()


def soft_label_ce_loss(logits: Tensor, pseudo_logits: Tensor, batch: Tensor | None = None,
                       temperature: float = 0.2, num_graphs: int | None = None,
                       weight: Tensor | None = None) -> Tensor:
    r"""Soft-label cross-entropy at temperature :math:`\tau`,
    :math:`-\sum_c \mathrm{softmax}(\hat{z}_t / \tau)_c \log
    \mathrm{softmax}(z_t / \tau)_c` with the pseudo logits :math:`\hat{z}`
    detached; averaged over the snippets of each video, then over videos.
    :obj:`weight` (:obj:`[N]`, optional) multiplies each snippet's term before
    the per-video mean (a 0/1 mask keeps the mean over all of the video's
    snippets)."""
    target = F.softmax(pseudo_logits.detach() / temperature, dim=-1)
    per_node = -(target * F.log_softmax(logits / temperature, dim=-1)).sum(-1, keepdim=True)
    if weight is not None:
        per_node = per_node * weight.to(per_node.dtype).view(-1, 1)
    return segment_mean_pool(per_node, batch, num_graphs=num_graphs).mean()
