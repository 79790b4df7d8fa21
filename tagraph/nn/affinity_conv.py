"""Affinity-weighted temporal convolution of BackTAL."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing


class AffinityConv(MessagePassing):
    r"""The affinity-weighted temporal convolution from the `"Background-Click
    Supervision for Temporal Action Localization"
    <https://arxiv.org/abs/2111.12449>`_ paper (BackTAL, Yang et al., TPAMI).

    .. math::
        \mathbf{x}^{\prime}_t = \sum_{k \in \mathcal{K}}
        \cos(\mathbf{e}_t, \mathbf{e}_{t+k}) \, \mathbf{W}_k \mathbf{x}_{t+k}
        \; (+ \, \mathbf{b})

    with one weight matrix :math:`\mathbf{W}_k` per temporal offset
    :math:`k \in \mathcal{K}` (default :math:`\{-1, 0, +1\}`, a kernel-3
    convolution) and every neighbour's message scaled by the cosine affinity of
    its embedding :math:`\mathbf{e}_{t+k}` with the receiving snippet's
    embedding :math:`\mathbf{e}_t`. Neighbours outside the video contribute
    nothing (zero padding, as :obj:`padding=1` in a 1-D convolution).

    This is the computation the paper describes. The official
    :obj:`AttentionConv1d` multiplies an :obj:`nn.Unfold` output, whose rows are
    laid out channel-major (row :math:`c \cdot 3 + k`), by an offset-major
    similarity tile (rows :math:`k \cdot C + c`), so it scales thirds of the
    *channels* by the three affinities instead of scaling the three
    *neighbours*; see :obj:`tests/nn/test_affinity_conv.py`.

    The neighbours :math:`t + k, k \neq 0` come from the snippet graph's
    temporal edges: following the tagraph convention, an edge of
    :obj:`edge_type = i` is the edge :math:`(t + k_i) \rightarrow t` of the
    graph's :obj:`i`-th temporal offset :math:`k_i` (:obj:`edge_offsets`).
    Edges of other types (*e.g.*, semantic edges) are ignored. The self term
    :math:`k = 0` is computed in place, with the same formula
    :math:`\cos(\mathbf{e}_t, \mathbf{e}_t)` (:math:`1` for any non-zero
    embedding, :math:`0` for a zero one). All offsets are transformed by a
    single matrix product; messages are then gathered per edge.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        offsets (Sequence[int], optional): The temporal offsets :math:`k` that
            get a weight matrix (:obj:`0` is the self term).
            (default: :obj:`(-1, 0, 1)`)
        edge_offsets (Sequence[int], optional): The temporal offset of each
            :obj:`edge_type` value in the input graph (the graph builder's
            :obj:`temporal_offsets`). If :obj:`None`, the non-zero entries of
            :obj:`offsets` in order, *i.e.* :obj:`(-1, 1)`.
            (default: :obj:`None`)
        bias (bool, optional): If set to :obj:`True`, the layer learns an
            additive bias. (default: :obj:`False`)
        eps (float, optional): Small value added to embedding norms.
            (default: :obj:`1e-8`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **inputs:**
          node features :math:`(|\mathcal{V}|, F_{in})`,
          node embeddings :math:`(|\mathcal{V}|, F_{emb})`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge types :math:`(|\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        offsets: Sequence[int] = (-1, 0, 1),
        edge_offsets: Sequence[int] | None = None,
        bias: bool = False,
        eps: float = 1e-8,
        **kwargs,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        offsets = tuple(int(k) for k in offsets)
        if len(set(offsets)) != len(offsets) or len(offsets) == 0:
            raise ValueError(f"'offsets' must be distinct and non-empty (got {offsets})")
        if edge_offsets is None:
            edge_offsets = tuple(k for k in offsets if k != 0)
        edge_offsets = tuple(int(k) for k in edge_offsets)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.offsets = offsets
        self.edge_offsets = edge_offsets
        self.eps = eps
        self.self_slot = offsets.index(0) if 0 in offsets else -1
        # edge_type -> weight slot (-1: edge type not used by this layer)
        slots = [offsets.index(k) if (k in offsets and k != 0) else -1 for k in edge_offsets]
        self.register_buffer("type_to_slot", torch.tensor(slots, dtype=torch.long),
                             persistent=False)
        self.weight = Parameter(torch.empty(len(offsets), out_channels, in_channels))
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        # Same initialisation as ``nn.Conv1d(in, out, kernel_size=len(offsets))``.
        fan_in = self.in_channels * len(self.offsets)
        bound = 1.0 / math.sqrt(fan_in)
        torch.nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            torch.nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, e: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        num_nodes = x.size(0)
        num_k = len(self.offsets)
        if e.size(0) != num_nodes:
            raise ValueError(
                f"'x' and 'e' must have the same number of nodes (got {num_nodes} and {e.size(0)})"
            )
        # One matrix product for all offsets: h[n, k] = W_k x_n.
        h = (x @ self.weight.reshape(num_k * self.out_channels, self.in_channels).t())
        h = h.view(num_nodes, num_k, self.out_channels)
        e = e / e.norm(dim=-1, keepdim=True).clamp_min(self.eps)

        edge_type = edge_type.view(-1).long()
        known = (edge_type >= 0) & (edge_type < self.type_to_slot.numel())
        slot = self.type_to_slot[edge_type.clamp(0, max(self.type_to_slot.numel() - 1, 0))]
        keep = known & (slot >= 0)
        src, dst = edge_index[0][keep], edge_index[1][keep]
        slot = slot[keep]
        affinity = (e.index_select(0, src) * e.index_select(0, dst)).sum(dim=-1)
        # Bipartite view: sources are the (node, offset) rows of h.
        flat_index = torch.stack([src * num_k + slot, dst], dim=0)
        out = self.propagate(
            flat_index,
            x=(h.reshape(num_nodes * num_k, self.out_channels), None),
            affinity=affinity,
            size=(num_nodes * num_k, num_nodes),
        )
        if self.self_slot >= 0:
            self_affinity = (e * e).sum(dim=-1, keepdim=True)
            out = out + self_affinity * h[:, self.self_slot]
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor, affinity: Tensor) -> Tensor:
        return affinity.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"offsets={self.offsets})")
