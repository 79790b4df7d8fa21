"""ISSF's information interaction unit (boundary refinement)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

from tagraph.ops.padding import length_groups

#: Largest padded score matrix (elements of ``[B, T_max, T_max]``) one batched
#: product may build; longer batches are split into groups of videos.
MAX_SCORE_ELEMENTS = 2 ** 26
#: Largest ratio of padded to true work (:math:`B\,T_{max}^2 / \sum_i T_i^2`)
#: a group of videos may have before it is split by length.
MAX_PADDING_WASTE = 1.5

__all__ = ["InformationInteraction", "masked_cross_attention", "split_attention"]


def _dense_attention(q: Tensor, k: Tensor, masks: list[tuple[Tensor, float]], batch: Tensor,
                     num_graphs: int, scale: float, window: int = 0) -> Tensor:
    # One padded batched product for all videos of `batch`.
    qd, node_mask = to_dense_batch(q, batch, batch_size=num_graphs)
    kd, _ = to_dense_batch(k, batch, batch_size=num_graphs)
    scores = qd @ kd.transpose(1, 2)  # [B, T, T]
    if scale != 1.0:
        scores = scores * scale
    band = None
    if window > 0:  # keys within `window` snippets of the query (rows in video order)
        pos = torch.arange(scores.size(1), device=scores.device)
        band = ((pos.unsqueeze(1) - pos.unsqueeze(0)).abs() <= window).unsqueeze(0)
    weights = None
    for mask, w in masks:
        md, _ = to_dense_batch(mask, batch, fill_value=False, batch_size=num_graphs)
        allowed = md.unsqueeze(1) if band is None else md.unsqueeze(1) & band
        attn = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        attn = torch.nan_to_num(attn, nan=0.0)  # videos without keys: all -inf -> 0
        attn = attn if w == 1.0 else attn * w
        weights = attn if weights is None else weights + attn
    assert weights is not None
    return (weights @ kd)[node_mask]


def split_attention(query: Tensor, key: Tensor, masks: list[tuple[Tensor, float]],
                    batch: Tensor, num_graphs: int | None = None, scale: float = 1.0,
                    window: int = 0) -> Tensor:
    r"""Per-video attention of every snippet over several subsets of the same
    video's snippets, weighted and summed,
    :math:`\tilde{\mathbf{f}}_t = \sum_j w_j \sum_{s \in \mathcal{S}_{ij}}
    \mathrm{softmax}_{s \in \mathcal{S}_{ij}}(\alpha\, \mathbf{q}_t^{\top}
    \mathbf{k}_s) \, \mathbf{k}_s`, with one score matrix for all subsets.

    Videos are padded to :obj:`[B, T_max, D]` and done by batched matrix
    products, in groups of similar length (:func:`tagraph.ops.length_groups`) when padding
    to the longest video would waste work or memory. A video whose subset is
    empty (or, with :obj:`window`, a snippet with no key of a subset within the
    window) gets zeros from it.

    Args:
        query (torch.Tensor): Queries :obj:`[N, D]`.
        key (torch.Tensor): Keys (also the values) :obj:`[N, D]`.
        masks (list): Pairs (boolean key mask :obj:`[N]`, weight :math:`w_j`).
        batch (torch.Tensor): Sorted graph index of each snippet :obj:`[N]`.
        num_graphs (int, optional): Number of videos. (default: :obj:`None`)
        scale (float, optional): :math:`\alpha`. (default: :obj:`1.0`)
        window (int, optional): If :obj:`> 0`, snippet :math:`t` attends only
            to keys :math:`s` with :math:`|t - s| \leq` :obj:`window` (positions
            within the video; the snippets of each video in temporal order).
            (default: :obj:`0`: the whole video)

    Returns:
        torch.Tensor: :obj:`[N, D]`.
    """
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    lengths = torch.bincount(batch, minlength=num_graphs)
    groups = length_groups(lengths, MAX_PADDING_WASTE, MAX_SCORE_ELEMENTS)
    if len(groups) <= 1:
        return _dense_attention(query, key, masks, batch, num_graphs, scale, window)
    out = query.new_zeros(query.size(0), key.size(-1))
    remap = torch.empty(num_graphs, dtype=torch.long, device=batch.device)
    for g in groups:
        g = g.to(batch.device)
        sel = torch.zeros(num_graphs, dtype=torch.bool, device=batch.device)
        sel[g] = True
        nodes = sel[batch].nonzero().view(-1)
        remap[g] = torch.arange(g.numel(), device=batch.device)
        sub = [(m[nodes], w) for m, w in masks]
        out = out.index_copy(0, nodes, _dense_attention(
            query[nodes], key[nodes], sub, remap[batch[nodes]], g.numel(), scale, window))
    return out


def masked_cross_attention(query: Tensor, key: Tensor, key_mask: Tensor, batch: Tensor,
                           num_graphs: int | None = None, scale: float = 1.0) -> Tensor:
    r"""Per-video attention of every snippet over a subset of the same video's
    snippets, :math:`\tilde{\mathbf{f}}_t = \sum_{s \in \mathcal{S}_i}
    \mathrm{softmax}_s(\alpha\, \mathbf{q}_t^{\top} \mathbf{k}_s) \, \mathbf{k}_s`
    (:func:`split_attention` with one subset). A video whose subset is empty
    gets zeros.

    Args:
        query (torch.Tensor): Queries :obj:`[N, D]`.
        key (torch.Tensor): Keys (also the values) :obj:`[N, D]`.
        key_mask (torch.Tensor): Boolean mask :obj:`[N]` of the key subset.
        batch (torch.Tensor): Sorted graph index of each snippet :obj:`[N]`.
        num_graphs (int, optional): Number of videos. (default: :obj:`None`)
        scale (float, optional): :math:`\alpha`. (default: :obj:`1.0`)

    Returns:
        torch.Tensor: :obj:`[N, D]`.
    """
    return split_attention(query, key, [(key_mask, 1.0)], batch, num_graphs, scale)


class InformationInteraction(nn.Module):
    r"""The information interaction unit of ISSF's boundary refinement module
    (`"Weakly-Supervised Temporal Action Localization by Inferring Salient
    Snippet-Feature" <https://doi.org/10.1609/aaai.v38i7.28516>`_, Yun et al.,
    AAAI 2024).

    .. math::
        \mathbf{F}_{\mathcal{S}} &\leftarrow \mathbf{F}_{\mathcal{S}} +
        \mathrm{softmax}_{c}\!\left(\mathrm{MLP}_{\mathcal{S}}
        (\mathbf{F}_{\mathcal{S}})\right) \odot \mathbf{F}_{\mathcal{S}}, \qquad
        \tilde{\mathbf{F}}_{\mathcal{S}} = \mathrm{softmax}(\mathbf{X}
        \mathbf{F}_{\mathcal{S}}^{\top}) \, \mathbf{F}_{\mathcal{S}}

        \tilde{\mathbf{F}} &= (1 - \lambda) \, \tilde{\mathbf{F}}_{\mathcal{S}}
        + \lambda \, \tilde{\mathbf{F}}_{\bar{\mathcal{S}}}

    for the salient set :math:`\mathcal{S}` and, with its own MLP, the
    non-salient set :math:`\bar{\mathcal{S}}` of every video (each MLP:
    linear :math:`D \rightarrow D / r`, ReLU, linear :math:`D / r \rightarrow
    D`, no biases; the softmax runs over channels). Each snippet of
    :math:`\mathbf{X}` attends only to its own video's sets.

    Args:
        channels (int): Feature size :math:`D`.
        reduction (int, optional): MLP reduction :math:`r`. (default: :obj:`4`)
        mix (float, optional): Weight :math:`\lambda` of the non-salient set.
            (default: :obj:`0.12`)
        scaled (bool, optional): Divide the attention logits
            :math:`\mathbf{X}\mathbf{F}^{\top}` by :math:`\sqrt{D}`, as scaled
            dot-product attention does (not in the paper nor its official code).
            Unscaled, the logits grow with the squared feature norm: on 512-d
            embedded features of norm ~17 every snippet attends to a single
            salient snippet (mean largest weight 0.97 over ~140 keys), so the
            refinement is a hard nearest-neighbour lookup whose result depends
            on the feature scale. (default: :obj:`False`)
        window (int, optional): If :obj:`> 0`, every snippet attends only to the
            salient / non-salient snippets within :obj:`window` snippets of it
            (:func:`split_attention`); not in the paper, whose sets span the
            whole video. (default: :obj:`0`)

    Shapes:
        - **inputs:** snippet features :math:`(|\mathcal{V}|, D)`, boolean
          salient mask :math:`(|\mathcal{V}|)`, batch vector
          :math:`(|\mathcal{V}|)` *(optional)*
        - **output:** refined features :math:`(|\mathcal{V}|, D)`
    """

    def __init__(self, channels: int, reduction: int = 4, mix: float = 0.12,
                 scaled: bool = False, window: int = 0) -> None:
        super().__init__()
        if window < 0:
            raise ValueError(f"InformationInteraction: window must be >= 0 (got {window})")
        self.window = int(window)
        self.channels = channels
        self.reduction = reduction
        self.mix = mix
        self.scaled = bool(scaled)
        hidden = max(channels // reduction, 1)
        self.mlp_salient = self._mlp(channels, hidden)
        self.mlp_other = self._mlp(channels, hidden)
        self.reset_parameters()

    @staticmethod
    def _mlp(channels: int, hidden: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                             nn.Linear(hidden, channels, bias=False))

    def reset_parameters(self) -> None:
        for mlp in (self.mlp_salient, self.mlp_other):
            for layer in mlp:
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)

    def forward(self, x: Tensor, salient: Tensor, batch: Tensor | None = None,
                num_graphs: int | None = None) -> Tensor:
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        f_s = x + F.softmax(self.mlp_salient(x), dim=-1) * x
        f_o = x + F.softmax(self.mlp_other(x), dim=-1) * x
        scale = self.channels ** -0.5 if self.scaled else 1.0
        # The two sets are disjoint, so one key matrix (f_S on S, f_S-bar elsewhere)
        # and one score matrix serve both attentions.
        key = torch.where(salient.unsqueeze(-1), f_s, f_o)
        return split_attention(x, key, [(salient, 1.0 - self.mix), (~salient, self.mix)],
                               batch, num_graphs, scale, self.window)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, reduction={self.reduction}, "
                f"mix={self.mix}, scaled={self.scaled}"
                + (f", window={self.window})" if self.window else ")"))
