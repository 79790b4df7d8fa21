"""ISSF's discrimination-enhancement memory of salient snippet features."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["DiscriminationMemory", "memory_momentum"]


def memory_momentum(epoch: float, max_epochs: float) -> float:
    r"""ISSF's memory momentum :math:`m = \frac{1}{2} \log(e^{t / T} + 1)`."""
    return 0.5 * math.log(math.exp(float(epoch) / float(max_epochs)) + 1.0)


class DiscriminationMemory(nn.Module):
    r"""A per-class memory of the :math:`M` highest-scoring salient snippet
    features, from the discrimination enhancement module of
    `"Weakly-Supervised Temporal Action Localization by Inferring Salient
    Snippet-Feature" <https://doi.org/10.1609/aaai.v38i7.28516>`_ (Yun et al.,
    AAAI 2024).

    Update for every class :math:`c` labelled in the batch: the memory slots
    and the batch's salient features of videos labelled :math:`c` are ranked
    by their class-:math:`c` score and the top :math:`M` kept,
    :math:`(\mathbf{N}_c, \mathbf{s}_c)`. During warm-up (:math:`t \le t_w`)
    they replace the memory; afterwards slot :math:`j` becomes

    .. math::
        \mathbf{M}_{c,j} \leftarrow m \, \mathbf{M}_{c,j} + (1 - m) \,
        \mathbf{N}_{c,j}, \qquad m = \tfrac{1}{2} \log\!\left(e^{t / T} +
        1\right),

    and the scores become :math:`\mathbf{s}_c`. Slots that were still empty
    take :math:`\mathbf{N}_{c,j}` as is. A whole batch is one update (with
    batch size 1 this is the official per-video rule), vectorised over
    classes. No gradient flows into the memory.

    :meth:`read` lets every snippet attend to the memory of its own video's
    labelled classes: :math:`\mathrm{softmax}(\mathbf{q}_t^{\top}
    \mathbf{M}^{\top}) \mathbf{M}`.

    Args:
        num_classes (int): Number of action classes :math:`C`.
        channels (int): Feature size.
        size (int, optional): Slots per class :math:`M`. (default: :obj:`9`)
        warmup_epochs (int, optional): :math:`t_w`. (default: :obj:`85`)
        max_epochs (int, optional): :math:`T`. (default: :obj:`180`)
    """

    features: Tensor
    scores: Tensor

    def __init__(self, num_classes: int, channels: int, size: int = 9,
                 warmup_epochs: int = 85, max_epochs: int = 180) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.channels = channels
        self.size = size
        self.warmup_epochs = warmup_epochs
        self.max_epochs = max_epochs
        self.register_buffer("features", torch.zeros(num_classes, size, channels))
        self.register_buffer("scores", torch.full((num_classes, size), float("-inf")))

    def reset_parameters(self) -> None:
        self.features.zero_()
        self.scores.fill_(float("-inf"))

    @property
    def filled(self) -> Tensor:
        r"""Boolean :obj:`[C, M]` mask of the occupied slots."""
        return torch.isfinite(self.scores)

    @torch.no_grad()
    def update(self, x: Tensor, scores: Tensor, batch: Tensor, y: Tensor, epoch: float) -> None:
        r"""Updates the memory.

        Args:
            x (torch.Tensor): Candidate (salient) features :obj:`[N, D]`.
            scores (torch.Tensor): Their class scores :obj:`[N, C]` (or
                :obj:`[N, C + 1]`; the background column is ignored).
            batch (torch.Tensor): Video index of each candidate :obj:`[N]`.
            y (torch.Tensor): Multi-hot video labels :obj:`[B, C]`.
            epoch (float): Current epoch :math:`t`.
        """
        c, m_slots = self.num_classes, self.size
        x = x.detach().to(self.features.dtype)
        scores = scores.detach()[:, :c].to(self.scores.dtype)
        valid = y[batch].bool()[:, :c]  # [N, C]: candidate n may enter class c
        cand = torch.where(valid, scores, torch.full_like(scores, float("-inf"))).t()
        all_scores = torch.cat([self.scores, cand], dim=1)  # [C, M + N]
        new_scores, idx = torch.sort(all_scores, dim=1, descending=True, stable=True)
        new_scores, idx = new_scores[:, :m_slots], idx[:, :m_slots]
        pool = torch.cat([self.features.reshape(c * m_slots, -1), x], dim=0)
        rows = torch.arange(c, device=x.device).unsqueeze(1) * m_slots
        flat = torch.where(idx < m_slots, rows + idx, c * m_slots + idx - m_slots)
        new_feats = pool[flat]  # [C, M, D]
        new_feats = new_feats * torch.isfinite(new_scores).unsqueeze(-1)
        if epoch > self.warmup_epochs:
            m = memory_momentum(epoch, self.max_epochs)
            old_filled = self.filled.unsqueeze(-1)
            new_feats = torch.where(old_filled, m * self.features + (1.0 - m) * new_feats,
                                    new_feats)
        labelled = y.bool()[:, :c].any(0)  # classes present in the batch
        self.features[labelled] = new_feats[labelled]
        self.scores[labelled] = new_scores[labelled]

    def read(self, query: Tensor, batch: Tensor, y: Tensor,
             num_graphs: int | None = None) -> tuple[Tensor, Tensor]:
        r"""Attention of every snippet over the memory slots of its video's
        labelled classes.

        Returns:
            (torch.Tensor, torch.Tensor): features :obj:`[N, D]` (zeros for a
            video without any filled slot) and a boolean :obj:`[B]` mask of the
            videos that had at least one slot.
        """
        c, m_slots = self.num_classes, self.size
        keys = self.features.reshape(c * m_slots, -1).to(query.dtype, copy=True)
        key_ok = self.filled.reshape(1, c * m_slots) & y.bool()[:, :c].repeat_interleave(
            m_slots, dim=1)  # [B, C * M]
        scores = query @ keys.t()  # [N, C * M]
        scores = scores.masked_fill(~key_ok[batch], float("-inf"))
        attn = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
        return attn @ keys, key_ok.any(1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_classes={self.num_classes}, "
                f"channels={self.channels}, size={self.size})")


