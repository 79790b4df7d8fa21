"""Affinity-weighted temporal convolution of BackTAL."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from tagraph.nn.temporal_conv import TemporalConv

__all__ = ["AffinityConv"]


class AffinityConv(TemporalConv):
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

    The layer is a :class:`~tagraph.nn.TemporalConv` whose edge weights are
    the affinities: the neighbours :math:`t + k, k \neq 0` come from the
    snippet graph's temporal edges (an edge of :obj:`edge_type = i` is the edge
    :math:`(t + k_i) \rightarrow t` of the :obj:`i`-th non-zero entry of
    :obj:`offsets`, which must follow the graph's :obj:`temporal_offsets`
    order); edges of other types (*e.g.*, semantic edges) are ignored. The self
    term :math:`k = 0` uses :math:`\cos(\mathbf{e}_t, \mathbf{e}_t) = 1`
    exactly. All offsets are transformed by a single matrix product; messages
    are then gathered per edge.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        offsets (Sequence[int], optional): The temporal offsets :math:`k` that
            get a weight matrix (:obj:`0` is the self term); the non-zero ones in
            the order of the graph's edge types. (default: :obj:`(-1, 0, 1)`)
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
        bias: bool = False,
        eps: float = 1e-8,
        **kwargs,
    ) -> None:
        offsets = tuple(int(k) for k in offsets)
        if len(set(offsets)) != len(offsets) or len(offsets) == 0:
            raise ValueError(f"AffinityConv: 'offsets' must be distinct and non-empty "
                             f"(got {offsets})")
        self.eps = eps
        super().__init__(in_channels, out_channels, offsets=tuple(k for k in offsets if k != 0),
                         self_loop=0 in offsets, bias=bias, **kwargs)
        self.all_offsets = offsets

    def forward(  # type: ignore[override]
        self, x: Tensor, e: Tensor, edge_index: Tensor, edge_type: Tensor,
    ) -> Tensor:
        if e.size(0) != x.size(0):
            raise ValueError(f"AffinityConv: 'x' and 'e' must have the same number of nodes "
                             f"(got {x.size(0)} and {e.size(0)})")
        e = e / e.norm(dim=-1, keepdim=True).clamp_min(self.eps)
        keep = edge_type < len(self.offsets)  # temporal edges only (e.g. no kNN edges)
        if not bool(keep.all()):
            edge_index, edge_type = edge_index[:, keep], edge_type[keep]
        src, dst = edge_index[0], edge_index[1]
        affinity = (e.index_select(0, src) * e.index_select(0, dst)).sum(dim=-1)
        return super().forward(x, edge_index, edge_type, edge_weight=affinity)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"offsets={self.all_offsets})")
