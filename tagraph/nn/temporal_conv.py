"""Temporal convolution as message passing over offset-typed temporal edges."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing

__all__ = ["TemporalConv", "temporal_edges"]


def temporal_edges(
    ptr: Tensor,
    offsets: Sequence[int] = (-1, 1),
) -> tuple[Tensor, Tensor]:
    r"""Temporal edges of a batch of snippet sequences, without a loop over videos.

    For offset :math:`k` (edge type = its index in :obj:`offsets`), snippet
    :math:`t` receives from snippet :math:`t + k` of the same video, i.e. the
    edge is :math:`(\mathrm{src} = t + k, \mathrm{dst} = t)`; edges never
    cross video boundaries. This is the convention of
    :func:`tagraph.data.snippet_graph`.

    Args:
        ptr (torch.Tensor): Video boundaries of shape :obj:`[B + 1]` (PyG
            :obj:`Batch.ptr`).
        offsets (Sequence[int], optional): Temporal offsets. (default: :obj:`(-1, 1)`)

    Returns:
        (torch.Tensor, torch.Tensor): :obj:`edge_index` of shape :obj:`[2, E]`
        and :obj:`edge_type` of shape :obj:`[E]`.
    """
    ptr = ptr.to(torch.long)
    n = int(ptr[-1])
    device = ptr.device
    off = torch.tensor([int(o) for o in offsets], dtype=torch.long, device=device)
    counts = ptr[1:] - ptr[:-1]
    batch = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)
    dst = torch.arange(n, device=device)
    local = dst - ptr[:-1][batch]
    src_local = local[None, :] + off[:, None]  # [K, N]
    valid = (src_local >= 0) & (src_local < counts[batch][None, :])
    etype, dst_idx = valid.nonzero(as_tuple=True)
    src = dst_idx + off[etype]
    return torch.stack([src, dst_idx]), etype


class TemporalConv(MessagePassing):
    r"""A temporal (1-D) convolution written as message passing over temporal
    edges, one weight matrix per temporal offset (the temporal layers of
    "Equivalent Classification Mapping for Weakly Supervised Temporal Action
    Localization", Yang et al., TPAMI, and "Background-Click Supervision for
    Temporal Action Localization", Yang et al., TPAMI):

    .. math::
        \mathbf{x}^{\prime}_t = \mathbf{W}_0^{\top} \mathbf{x}_t +
        \sum_{k \in \mathcal{K}} \sum_{(t + k \to t) \in \mathcal{E}_k}
        e_{t+k,t} \, \mathbf{W}_k^{\top} \mathbf{x}_{t+k} + \mathbf{b}

    where :math:`\mathcal{E}_k` are the edges of type :math:`k` (edge type
    :math:`i` has offset :obj:`offsets[i]`) and :math:`e` the optional edge
    weights. The neighbour offsets are applied at once as one matrix product
    :math:`\mathbf{X} [\mathbf{W}_{k_1} \| \dots \| \mathbf{W}_{k_K}]`
    of shape :obj:`[N, K, F_out]`, and each edge gathers row
    :obj:`(src, type)` of it; the self term is a second product (with the bias),
    so that no slice of a larger product has to be back-propagated
    (``benchmarks/bench_temporal_conv.py``). On the edges of
    :func:`temporal_edges` this equals :func:`torch.nn.functional.conv1d`
    with zero padding on every video separately (kernel position :math:`j` =
    offset :math:`j - \lfloor \mathrm{kernel}/2 \rfloor`); edges of other
    types (e.g. semantic kNN edges, whose type is :obj:`len(offsets)`) are
    ignored.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        offsets (Sequence[int], optional): Temporal offset of each edge type, in
            the order of the graph's :obj:`temporal_offsets`. (default: :obj:`(-1, 1)`)
        self_loop (bool, optional): Add the offset-0 term :math:`\mathbf{W}_0`.
            (default: :obj:`True`)
        bias (bool, optional): Learn an additive bias. (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge types :math:`(|\mathcal{E}|)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        offsets: Sequence[int] = (-1, 1),
        self_loop: bool = True,
        bias: bool = True,
        **kwargs,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.offsets = tuple(int(o) for o in offsets)
        if 0 in self.offsets:
            raise ValueError("TemporalConv: offset 0 is the self term; use 'self_loop=True'")
        self.self_loop = self_loop
        self.num_kernels = len(self.offsets) + int(self_loop)
        if self.num_kernels == 0:
            raise ValueError("TemporalConv needs at least one offset or the self term")
        # weight[i] acts on offset offsets[i]; the last slot is the self term.
        self.weight = Parameter(torch.empty(self.num_kernels, in_channels, out_channels))
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        # Same initialisation as torch.nn.Conv1d (fan_in = in_channels * kernel size).
        fan_in = self.in_channels * self.num_kernels
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        torch.nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            torch.nn.init.uniform_(self.bias, -bound, bound)

    def kernel_weight(self, offset: int) -> Tensor:
        r"""The :obj:`[in_channels, out_channels]` weight of a temporal offset (0 = self)."""
        if offset == 0:
            if not self.self_loop:
                raise KeyError("TemporalConv has no self term")
            return self.weight[-1]
        return self.weight[self.offsets.index(int(offset))]

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_type: Tensor,
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        n = x.size(0)
        n_off = len(self.offsets)
        if self.self_loop:  # its own product: no [N, K + 1, F_out] tensor to slice
            w0 = self.weight[-1]
            out = x @ w0 if self.bias is None else torch.addmm(self.bias, x, w0)
        else:
            out = x.new_zeros(n, self.out_channels)
            if self.bias is not None:
                out = out + self.bias
        if n_off > 0 and edge_index.numel() > 0:
            if edge_type.numel() != edge_index.size(1):
                raise ValueError(
                    f"TemporalConv: 'edge_type' has {edge_type.numel()} entries for "
                    f"{edge_index.size(1)} edges"
                )
            keep = edge_type < n_off
            if not bool(keep.all()):
                edge_index = edge_index[:, keep]
                edge_type = edge_type[keep]
                if edge_weight is not None:
                    edge_weight = edge_weight[keep]
            w_nb = self.weight[:n_off].permute(1, 0, 2).reshape(self.in_channels,
                                                                n_off * self.out_channels)
            h = (x @ w_nb).view(n * n_off, self.out_channels)
            # Edge (src, dst) of type tau reads row src * K + tau of h.
            src = edge_index[0] * n_off + edge_type
            ei = torch.stack([src, edge_index[1]])
            msg = self.propagate(ei, x=(h, None), edge_weight=edge_weight,
                                 size=(n * n_off, n))
            out = out + msg
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"offsets={self.offsets}, self_loop={self.self_loop})"
        )
