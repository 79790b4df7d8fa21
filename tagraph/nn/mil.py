"""Multiple-instance pooling of snippet scores into video scores, and video-level losses."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "topk_mean_pool",
    "segment_mean_pool",
    "topk_sizes",
    "normalized_ce_loss",
    "video_bce_loss",
    "labeled_video_mask",
    "check_finite_cas",
]


def _ptr_from_batch(batch: Tensor | None, n: int, num_graphs: int | None,
                    device: torch.device) -> tuple[Tensor, Tensor]:
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
        num_graphs = 1 if num_graphs is None else num_graphs
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if n > 0 else 0
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=device)
    torch.cumsum(counts, 0, out=ptr[1:])
    if n > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("MIL pooling expects 'batch' sorted (PyG batching)")
    return batch, ptr


def topk_sizes(counts: Tensor, ratio: int = 8, k: int | None = None) -> Tensor:
    r"""Per-video top-:math:`k` sizes :math:`k_i = \max(1, \lfloor T_i / r \rfloor)`
    (or :math:`\min(k, T_i)` for a fixed :obj:`k`), never more than :math:`T_i`."""
    if k is not None:
        return counts.clamp(max=int(k)).clamp(min=1)
    return torch.div(counts, int(ratio), rounding_mode="floor").clamp(min=1)


def topk_mean_pool(
    x: Tensor,
    batch: Tensor | None = None,
    ratio: int = 8,
    k: int | None = None,
    num_graphs: int | None = None,
) -> Tensor:
    r"""Multiple-instance pooling: the mean of the :math:`k_i` largest snippet
    scores of every video and class,

    .. math::
        v_{i,c} = \frac{1}{k_i} \max_{S \subseteq \mathcal{V}_i, |S| = k_i}
        \sum_{t \in S} x_{t,c}, \qquad k_i = \max(1, \lfloor T_i / r \rfloor),

    with variable :math:`T_i` per graph of a PyG batch. The top-:math:`k`
    is a segment sort (a stable sort by score, then a stable sort by graph), so
    there is no loop over videos or classes; gradients flow to the selected
    snippets.

    Args:
        x (torch.Tensor): Snippet scores of shape :obj:`[N, C]`.
        batch (torch.Tensor, optional): Graph index of each snippet (sorted), shape
            :obj:`[N]`. (default: :obj:`None`, one graph)
        ratio (int, optional): :math:`r`. (default: :obj:`8`)
        k (int, optional): Fixed :math:`k` instead of :math:`T_i / r` (clipped to
            :math:`[1, T_i]`). (default: :obj:`None`)
        num_graphs (int, optional): Number of graphs :math:`B`. (default: :obj:`None`)

    Returns:
        torch.Tensor: Video scores of shape :obj:`[B, C]`.
    """
    if x.dim() == 1:
        x = x.unsqueeze(-1)
    n = x.size(0)
    batch, ptr = _ptr_from_batch(batch, n, num_graphs, x.device)
    counts = ptr[1:] - ptr[:-1]
    if bool((counts == 0).any()):
        empty = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"topk_mean_pool: graphs {empty} have no snippets")
    ks = topk_sizes(counts, ratio, k)
    order = torch.sort(x, dim=0, descending=True, stable=True).indices
    order = order.gather(0, torch.sort(batch[order], dim=0, stable=True).indices)
    # After the segment sort, row r of every column belongs to graph batch[r].
    rank = torch.arange(n, device=x.device) - ptr[:-1][batch]
    sel = (rank < ks[batch]).to(x.dtype).unsqueeze(-1)
    top = x.gather(0, order) * sel
    out = x.new_zeros(counts.numel(), x.size(1)).index_add_(0, batch, top)
    return out / ks.to(x.dtype).unsqueeze(-1)


def segment_mean_pool(x: Tensor, batch: Tensor | None = None,
                      num_graphs: int | None = None) -> Tensor:
    r"""Per-video mean of snippet scores (average pooling), shape :obj:`[B, C]`."""
    batch, ptr = _ptr_from_batch(batch, x.size(0), num_graphs, x.device)
    counts = (ptr[1:] - ptr[:-1]).clamp(min=1).to(x.dtype)
    out = x.new_zeros(counts.numel(), x.size(1)).index_add_(0, batch, x)
    return out / counts.unsqueeze(-1)


def normalized_ce_loss(logits: Tensor, y: Tensor) -> Tensor:
    r"""Multi-label cross-entropy with labels normalised to sum 1,
    :math:`-\frac{1}{B}\sum_i \sum_c \frac{y_{ic}}{\sum_{c'} y_{ic'}} \log
    \mathrm{softmax}(z_i)_c`. Videos without a label contribute 0."""
    y = y.to(logits.dtype)
    target = y / y.sum(-1, keepdim=True).clamp(min=1e-10)
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def video_bce_loss(scores: Tensor, y: Tensor, eps: float = 1e-6,
                   balanced: bool = False) -> Tensor:
    r"""Multi-label binary cross-entropy on video scores in :math:`[0, 1]`.

    With :obj:`balanced`, each video's positive and negative classes weigh
    the same,

    .. math::
        \frac{1}{B} \sum_i \Big( \frac{1}{|P_i|} \sum_{c \in P_i} -\log v_{ic}
        + \frac{1}{|N_i|} \sum_{c \in N_i} -\log (1 - v_{ic}) \Big),

    instead of the plain mean over all :math:`B C` entries, in which the
    :math:`C - |P_i|` negatives of a video outweigh its one or two positives."""
    y = y.to(scores.dtype)
    v = scores.clamp(eps, 1.0 - eps)
    if not balanced:
        return F.binary_cross_entropy(v, y)
    pos = (-torch.log(v) * y).sum(-1) / y.sum(-1).clamp(min=1)
    neg = (-torch.log1p(-v) * (1 - y)).sum(-1) / (1 - y).sum(-1).clamp(min=1)
    return (pos + neg).mean()


def labeled_video_mask(y: Tensor, video_ids: Sequence[str] | None = None) -> Tensor:
    r"""Mask of the videos with at least one label. Weak supervision cannot use a
    video without labels: they are to be skipped, and a warning counts them
    (and names up to five)."""
    mask = y.sum(-1) > 0
    n_bad = int((~mask).sum())
    if n_bad:
        idx = (~mask).nonzero().flatten().tolist()
        names = [str(video_ids[i]) for i in idx[:5]] if video_ids is not None else idx[:5]
        more = ", ..." if n_bad > 5 else ""
        warnings.warn(
            f"skipping {n_bad} of {mask.numel()} videos without any label in weakly "
            f"supervised training: {', '.join(map(str, names))}{more}",
            stacklevel=2,
        )
    return mask


def check_finite_cas(cas: Tensor, batch: Tensor | None,
                     video_ids: Sequence[str] | None = None, what: str = "CAS") -> None:
    r"""Raise a :class:`ValueError` naming the first video whose class activation
    sequence contains NaN or infinity."""
    bad = ~torch.isfinite(cas)
    if not bool(bad.any()):
        return
    node = int(bad.reshape(cas.size(0), -1).any(-1).nonzero()[0])
    g = int(batch[node]) if batch is not None else 0
    name = f"'{video_ids[g]}'" if video_ids is not None else f"{g} (batch index)"
    n_bad = int(bad.reshape(cas.size(0), -1).any(-1).sum())
    raise ValueError(f"non-finite {what} in video {name}: {n_bad} snippet(s) have NaN/inf scores")
