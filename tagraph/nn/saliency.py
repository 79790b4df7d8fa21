"""Salient-snippet inference of ISSF as message passing on temporal edges."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing

__all__ = ["SalientSnippets"]


class SalientSnippets(MessagePassing):
    r"""Salient-snippet selection from the `"Weakly-Supervised Temporal Action
    Localization by Inferring Salient Snippet-Feature"
    <https://doi.org/10.1609/aaai.v38i7.28516>`_ paper (ISSF, Yun et al., AAAI 2024).

    .. math::
        d_t = \sum_{c} \left| x_{t,c} - x_{t-1,c} \right|, \qquad
        \mathcal{S} = \mathrm{top}_{\lfloor \rho T \rfloor - 1}(d) \cup
        \{ t - 1 : t \in \mathrm{top}_{\lfloor \rho T \rfloor - 1}(d) \}

    The variation :math:`d_t` is aggregated over the temporal edges
    :math:`(t - 1) \rightarrow t` (edge type :obj:`prev_type`, the index of
    offset :math:`-1` in the graph's :obj:`temporal_offsets`), the top
    :math:`\lfloor \rho T_i \rfloor - 1` snippets are taken **per video**
    :math:`i` of a PyG batch, and every selected snippet marks its predecessor
    along the same edges. The first snippet of a video has no predecessor:
    its variation is undefined (:math:`-\infty`, never selected) and nothing
    wraps around to the last snippet. (The official code compares snippet 0
    with zeros, marks index :math:`-1`, i.e. the last snippet, and flattens
    indices over the batch, so it is only correct for batch size 1.)
    Ties are broken towards the earlier snippet (stable sort).

    Args:
        ratio (float, optional): :math:`\rho`. (default: :obj:`0.5`)
        prev_type (int, optional): Edge type of the offset :math:`-1` temporal
            edges. (default: :obj:`0`)

    Shapes:
        - **inputs:**
          node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge types :math:`(|\mathcal{E}|)`,
          batch vector :math:`(|\mathcal{V}|)` *(optional)*
        - **output:** boolean salient mask :math:`(|\mathcal{V}|)`
    """

    def __init__(self, ratio: float = 0.5, prev_type: int = 0) -> None:
        super().__init__(aggr="add")
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"SalientSnippets: 'ratio' must be in (0, 1] (got {ratio})")
        self.ratio = ratio
        self.prev_type = prev_type

    def variation(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        r"""The neighbour variation :math:`d_t` (:math:`-\infty` without predecessor)."""
        keep = edge_type == self.prev_type
        ei = edge_index[:, keep]
        d = self.propagate(ei, x=x).squeeze(-1)
        has_prev = torch.zeros(x.size(0), dtype=torch.bool, device=x.device)
        has_prev[ei[1]] = True
        return d.masked_fill(~has_prev, float("-inf"))

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_type: Tensor, batch: Tensor | None = None,
    ) -> Tensor:
        n = x.size(0)
        if batch is None:
            batch = torch.zeros(n, dtype=torch.long, device=x.device)
        d = self.variation(x, edge_index, edge_type)
        num_graphs = int(batch.max()) + 1 if n > 0 else 0
        counts = torch.bincount(batch, minlength=num_graphs)
        ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=x.device)
        torch.cumsum(counts, 0, out=ptr[1:])
        k = (torch.floor(counts.to(torch.float64) * self.ratio).long() - 1).clamp(min=0)
        # Segment sort: by variation (descending, stable), then by graph (stable).
        order = torch.sort(d, descending=True, stable=True).indices
        order = order[torch.sort(batch[order], stable=True).indices]
        rank = torch.arange(n, device=x.device) - ptr[:-1][batch[order]]
        chosen = order[(rank < k[batch[order]]) & torch.isfinite(d[order])]
        selected = torch.zeros(n, dtype=torch.bool, device=x.device)
        selected[chosen] = True
        # Mark predecessors along the (t - 1 -> t) edges: salient[src] |= selected[dst].
        ei = edge_index[:, edge_type == self.prev_type]
        salient = selected.clone()
        salient[ei[0][selected[ei[1]]]] = True
        return salient

    def message(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        return (x_i - x_j).abs().sum(dim=-1, keepdim=True)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(ratio={self.ratio})"
