r"""Losses of BackTAL (`"Background-Click Supervision for Temporal Action
Localization" <https://arxiv.org/abs/2111.12449>`_, Yang et al., TPAMI).

All functions take PyG-batched snippet tensors (:obj:`[N, ...]` with a sorted
:obj:`batch` vector) and *global* node indices of the clicked snippets; they are
vectorised over videos and classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import to_dense_batch

from tagraph.nn.mil import topk_sizes

__all__ = [
    "click_ce_loss",
    "score_separation_loss",
    "affinity_embedding_loss",
    "foreground_sparsity_loss",
]


def _num_graphs(batch: Tensor, num_graphs: int | None) -> int:
    if num_graphs is not None:
        return int(num_graphs)
    return int(batch.max()) + 1 if batch.numel() else 0


def click_ce_loss(cas_logits: Tensor, click_index: Tensor, click_labels: Tensor) -> Tensor:
    r"""Frame-level cross-entropy at the clicked snippets (background clicks
    have label :math:`C`, unclicked snippets are ignored), averaged over all
    clicks of the batch; :math:`0` without clicks.

    Args:
        cas_logits (torch.Tensor): Snippet logits :obj:`[N, C + 1]`.
        click_index (torch.Tensor): Global node index of every click :obj:`[K]`.
        click_labels (torch.Tensor): Label of every click :obj:`[K]`.
    """
    if click_index.numel() == 0:
        return cas_logits.sum() * 0.0
    return F.cross_entropy(cas_logits[click_index], click_labels.long())


def score_separation_loss(
    cas_logits: Tensor,
    video_logits: Tensor,
    y: Tensor,
    bg_index: Tensor,
    bg_batch: Tensor,
) -> Tensor:
    r"""BackTAL's score separation: for every video with background clicks and
    every ground-truth class :math:`c`,

    .. math::
        \ell_{i,c} = -\log \mathrm{softmax}\big([v_{i,c},
        \bar{s}^{bg}_{i,c}]\big)_0 = \mathrm{softplus}(\bar{s}^{bg}_{i,c} - v_{i,c})

    with :math:`v` the (top-:math:`k` mean) video logit and :math:`\bar{s}^{bg}`
    the mean snippet logit at the video's background clicks; averaged over the
    video's classes, then over the videos that have background clicks and
    labels (:math:`0` if none).

    Args:
        cas_logits (torch.Tensor): Snippet logits :obj:`[N, C + 1]` (or :obj:`[N, C]`).
        video_logits (torch.Tensor): Video logits :obj:`[B, C + 1]` (or :obj:`[B, C]`).
        y (torch.Tensor): Multi-hot labels :obj:`[B, C]`.
        bg_index (torch.Tensor): Global node index of the background clicks :obj:`[K]`.
        bg_batch (torch.Tensor): Video of every background click :obj:`[K]`.
    """
    num_graphs, c = y.shape
    y = y.to(cas_logits.dtype)
    bg_sum = cas_logits.new_zeros(num_graphs, c).index_add_(0, bg_batch, cas_logits[bg_index, :c])
    cnt = torch.bincount(bg_batch, minlength=num_graphs).to(cas_logits.dtype)
    bg_mean = bg_sum / cnt.clamp(min=1).unsqueeze(-1)
    per_pair = F.softplus(bg_mean - video_logits[:, :c])
    n_cls = y.sum(-1)
    valid = (cnt > 0) & (n_cls > 0)
    if not bool(valid.any()):
        return cas_logits.sum() * 0.0
    per_video = (per_pair * y).sum(-1) / n_cls.clamp(min=1)
    return per_video[valid].mean()


def affinity_embedding_loss(
    embedding: Tensor,
    cas_logits: Tensor,
    y: Tensor,
    batch: Tensor,
    bg_mask: Tensor,
    ratio: int = 8,
    sim_min: float = 0.5,
    diff_max: float = 0.1,
    num_graphs: int | None = None,
    eps: float = 1e-8,
) -> Tensor:
    r"""BackTAL's affinity embedding loss. Per video, the foreground set
    :math:`\mathcal{F}` is the union over ground-truth classes of the top-:math:`k`
    snippets of the (suppressed-branch) CAS, :math:`k = \max(1, \lfloor T / r
    \rfloor)`, and the background set :math:`\mathcal{B}` the background-clicked
    snippets. With cosine similarities :math:`S`,

    .. math::
        \mathcal{L} = \overline{[\tau_s - \min_{j \in \mathcal{F}} S_{ij}]_+}^{i \in \mathcal{F}}
        + \overline{[\tau_s - \min_{j \in \mathcal{B}} S_{ij}]_+}^{i \in \mathcal{B}}
        + \overline{[\max_{j \in \mathcal{B}} S_{ij} - \tau_d]_+}^{i \in \mathcal{F}}
        + \overline{[\max_{i \in \mathcal{F}} S_{ij} - \tau_d]_+}^{j \in \mathcal{B}}

    (:math:`\tau_s` = :obj:`sim_min`, :math:`\tau_d` = :obj:`diff_max`),
    averaged over the videos with background clicks and labels (:math:`0` if
    none). Videos are padded once; no loop over videos or classes.

    Args:
        embedding (torch.Tensor): Snippet embeddings :obj:`[N, E]`.
        cas_logits (torch.Tensor): Snippet logits :obj:`[N, C + 1]` (or :obj:`[N, C]`)
            that pick the foreground set.
        y (torch.Tensor): Multi-hot labels :obj:`[B, C]`.
        batch (torch.Tensor): Sorted video index of every snippet :obj:`[N]`.
        bg_mask (torch.Tensor): Boolean mask of background-clicked snippets :obj:`[N]`.
        ratio (int, optional): :math:`r`. (default: :obj:`8`)
        sim_min (float, optional): :math:`\tau_s`. (default: :obj:`0.5`)
        diff_max (float, optional): :math:`\tau_d`. (default: :obj:`0.1`)
        num_graphs (int, optional): Number of videos. (default: :obj:`None`)
    """
    b = _num_graphs(batch, num_graphs)
    c = y.size(1)
    counts = torch.bincount(batch, minlength=b)
    ks = topk_sizes(counts, ratio)
    cas_d, node_mask = to_dense_batch(cas_logits[:, :c].detach(), batch, fill_value=float("-inf"),
                                      batch_size=b)  # [B, T, C]
    order = torch.sort(cas_d, dim=1, descending=True, stable=True).indices
    rank = torch.arange(cas_d.size(1), device=cas_d.device).view(1, -1, 1)
    top = torch.zeros_like(cas_d, dtype=torch.bool).scatter_(
        1, order, (rank < ks.view(-1, 1, 1)).expand_as(order))
    fg = (top & y.bool().unsqueeze(1)).any(-1) & node_mask  # [B, T]
    bg, _ = to_dense_batch(bg_mask, batch, fill_value=False, batch_size=b)
    e = embedding / embedding.norm(dim=-1, keepdim=True).clamp_min(eps)
    e_d, _ = to_dense_batch(e, batch, batch_size=b)
    sim = e_d @ e_d.transpose(1, 2)  # [B, T, T]
    big = torch.finfo(sim.dtype).max

    def masked_mean(v: Tensor, m: Tensor) -> Tensor:
        return (v * m).sum(-1) / m.sum(-1).clamp(min=1)

    def hard_same(m: Tensor) -> Tensor:
        hardest = sim.masked_fill(~m.unsqueeze(1), big).amin(-1)
        return masked_mean(F.relu(sim_min - hardest), m)

    cross = sim.masked_fill(~(fg.unsqueeze(2) & bg.unsqueeze(1)), -big)
    fg2bg = masked_mean(F.relu(cross.amax(2) - diff_max), fg)
    bg2fg = masked_mean(F.relu(cross.amax(1) - diff_max), bg)
    per_video = hard_same(fg) + hard_same(bg) + fg2bg + bg2fg
    valid = bg.any(1) & fg.any(1)
    if not bool(valid.any()):
        return embedding.sum() * 0.0
    return per_video[valid].mean()


def foreground_sparsity_loss(weights: Tensor, batch: Tensor,
                             num_graphs: int | None = None) -> Tensor:
    r""":math:`\ell_1` norm of the foreground weights of every video,
    :math:`\sum_t |a_t|`, averaged over videos."""
    b = _num_graphs(batch, num_graphs)
    per_video = weights.new_zeros(b).index_add_(0, batch, weights.reshape(-1).abs())
    return per_video.mean()
