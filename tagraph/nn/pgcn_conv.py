"""The P-GCN graph convolution (Zeng et al., ICCV 2019, Eq. 10)."""

from __future__ import annotations

from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.typing import Adj, OptPairTensor, OptTensor, Size, SparseTensor
from torch_geometric.utils import is_torch_sparse_tensor, spmm

__all__ = ["PGCNConv"]


class PGCNConv(MessagePassing):
    r"""The proposal graph convolution from the `"Graph Convolutional Networks
    for Temporal Action Localization" <https://arxiv.org/abs/1909.03252>`_
    paper (Eq. 10): a weighted mean over the (sampled) neighbourhood
    :math:`\mathcal{S}(i)`, plus the node itself, then one shared linear map

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W} \left( \frac{1}{|\mathcal{S}(i)|}
        \sum_{j \in \mathcal{S}(i)} A_{ij} \, \mathbf{x}_j + \mathbf{x}_i
        \right) + \mathbf{b}

    where :math:`A_{ij}` is the edge weight (in P-GCN the ReLU of the cosine
    similarity of the two proposals' input features, computed once per
    graph). Without edge weights, :math:`A_{ij} = 1` (plain mean). A node
    without neighbours gets :math:`\mathbf{W}\mathbf{x}_i + \mathbf{b}`.
    Edges with :math:`A_{ij} = 0` still count in :math:`|\mathcal{S}(i)|`.

    With :obj:`root_weight=True` (not in the paper) the node itself gets its
    own map, as in :class:`~torch_geometric.nn.conv.SAGEConv`:

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_1 \mathbf{x}_i + \mathbf{W}_2
        \frac{1}{|\mathcal{S}(i)|} \sum_{j \in \mathcal{S}(i)} A_{ij} \,
        \mathbf{x}_j + \mathbf{b}

    Eq. 10 ties :math:`\mathbf{W}_1 = \mathbf{W}_2`, so the layer cannot tell
    a proposal's own features from its neighbours' average; untying them
    lets it keep properties that overlapping neighbours do not share (e.g.
    completeness, see the README's P-GCN section).

    Args:
        in_channels (int or tuple): Size of each input sample, or :obj:`-1` to
            derive the size from the first input to the forward method. A
            tuple gives the sizes of source and target features, which must
            be equal (the self-term is added before the linear map).
        out_channels (int): Size of each output sample.
        bias (bool, optional): If set to :obj:`False`, the layer will not learn
            an additive bias. (default: :obj:`True`)
        root_weight (bool, optional): If set to :obj:`True`, the node's own
            features get a separate linear map :math:`\mathbf{W}_1` instead of
            being added before the shared one. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **inputs:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{in}), (|\mathcal{V_t}|, F_{in}))`
          if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(|\mathcal{V_t}|, |\mathcal{V_s}|)` whose values are the
          edge weights,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})` or
          :math:`(|\mathcal{V_t}|, F_{out})` if bipartite
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        bias: bool = True,
        root_weight: bool = False,
        **kwargs,
    ) -> None:
        kwargs.setdefault("aggr", "mean")
        if kwargs["aggr"] != "mean":
            raise ValueError(f"PGCNConv aggregates by the mean, got aggr={kwargs['aggr']!r}")
        super().__init__(**kwargs)
        if isinstance(in_channels, tuple):
            if in_channels[0] != in_channels[1]:
                raise ValueError(
                    f"source and target channels must match for the self-term, got {in_channels}"
                )
            channels = in_channels[0]
        else:
            channels = in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.root_weight = root_weight
        self.lin = Linear(channels, out_channels, bias=bias, weight_initializer="kaiming_uniform")
        if root_weight:
            self.lin_root = Linear(channels, out_channels, bias=False,
                                   weight_initializer="kaiming_uniform")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        if self.root_weight:
            self.lin_root.reset_parameters()

    def forward(
        self,
        x: Tensor | OptPairTensor,
        edge_index: Adj,
        edge_weight: OptTensor = None,
        size: Size = None,
    ) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        if edge_weight is not None and (
            isinstance(edge_index, SparseTensor) or is_torch_sparse_tensor(edge_index)
        ):
            raise ValueError(
                "pass edge weights either as 'edge_weight' with an 'edge_index' or as the "
                "values of a sparse adjacency, not both"
            )
        # propagate_type: (x: OptPairTensor, edge_weight: OptTensor)
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight, size=size)
        x_r = x[1]
        if x_r is None:
            raise ValueError("PGCNConv needs target-node features for the self-term")
        if self.root_weight:
            return self.lin(out) + self.lin_root(x_r)
        return self.lin(out + x_r)

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: OptPairTensor) -> Tensor:
        return spmm(adj_t, x[0], reduce="mean")

    def __repr__(self) -> str:
        root = ", root_weight=True" if self.root_weight else ""
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}{root})"
