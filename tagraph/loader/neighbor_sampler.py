r"""A vectorised, pure-PyTorch uniform neighbour sampler for
:class:`torch_geometric.loader.NeighborLoader`.

PyG's own :class:`~torch_geometric.sampler.NeighborSampler` needs
``pyg-lib`` or ``torch-sparse``. :class:`UniformNeighborSampler` implements the
same :class:`~torch_geometric.sampler.BaseSampler` interface with plain torch
ops, so it plugs into ``NeighborLoader(..., neighbor_sampler=...)`` and user
code stays identical with or without the compiled extensions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.sampler import BaseSampler, NodeSamplerInput, SamplerOutput

__all__ = ["UniformNeighborSampler", "sample_neighbors"]


def _floyd_positions(deg: Tensor, k: int, generator: torch.Generator | None) -> tuple[Tensor,
                                                                                       Tensor]:
    r"""Uniform :math:`\min(d_i, k)`-subsets of :math:`\{0, \dots, d_i - 1\}`
    for every node at once (Floyd's algorithm, vectorised over nodes).

    Returns positions :obj:`[m, k]` and a validity mask :obj:`[m, k]`; row
    :math:`i` holds exactly :math:`\min(d_i, k)` valid, distinct positions.
    Cost :math:`O(m k^2)`, independent of the degrees.
    """
    m = deg.numel()
    kk = torch.clamp(deg, max=k)  # number to draw per node
    pos = torch.full((m, k), -1, dtype=torch.long, device=deg.device)
    valid = torch.arange(k, device=deg.device).unsqueeze(0) < kk.unsqueeze(1)
    if m == 0 or k == 0:
        return pos, valid
    # [k, m]: each step reads a contiguous row. Truncation == floor (values >= 0).
    rand = torch.rand((k, m), generator=generator, dtype=torch.float64, device=deg.device)
    base = deg - kk  # j runs over base, base + 1, ..., deg - 1
    for s in range(k):
        j = base + s
        t = (rand[s] * (j + 1).to(torch.float64)).to(torch.long)
        t = torch.minimum(t, j)
        if s > 0:
            seen = (pos[:, :s] == t.unsqueeze(1)).any(dim=1)
            t = torch.where(seen, j, t)
        pos[:, s] = torch.where(valid[:, s], t, -1)
    return pos, valid


def sample_neighbors(
    colptr: Tensor,
    nodes: Tensor,
    k: int,
    replace: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Samples up to :obj:`k` incoming-edge positions (in CSC order) of each
    node in :obj:`nodes`.

    Without replacement, exactly :math:`\min(\deg(i), k)` distinct edges per
    node, uniformly among all such subsets; with :obj:`replace=True`, :obj:`k`
    independent uniform draws (none when :math:`\deg(i) = 0`); :obj:`k = -1`
    takes every edge.

    Returns:
        (CSC edge positions :obj:`[S]`, index into :obj:`nodes` of each
        sampled edge's target :obj:`[S]`), grouped by target in the order of
        :obj:`nodes`.
    """
    start = colptr.index_select(0, nodes)
    deg = colptr.index_select(0, nodes + 1) - start
    m = nodes.numel()
    if k < 0:  # all neighbours
        owner = torch.repeat_interleave(torch.arange(m, device=nodes.device), deg)
        first = torch.cumsum(deg, 0) - deg
        offs = torch.arange(owner.numel(), device=nodes.device) - first.index_select(0, owner)
        return start.index_select(0, owner) + offs, owner
    if replace:
        rand = torch.rand((m, k), generator=generator, dtype=torch.float64, device=nodes.device)
        pos = (rand * deg.unsqueeze(1).to(torch.float64)).to(torch.long)  # trunc == floor
        pos = torch.minimum(pos, (deg - 1).clamp(min=0).unsqueeze(1))
        valid = (deg > 0).unsqueeze(1).expand(m, k)
    else:
        pos, valid = _floyd_positions(deg, k, generator)
    flat = valid.reshape(-1).nonzero().view(-1)
    owner = torch.div(flat, k, rounding_mode="floor")
    edge_pos = start.index_select(0, owner) + pos.reshape(-1).index_select(0, flat)
    return edge_pos, owner


class UniformNeighborSampler(BaseSampler):
    r"""GraphSAGE-style uniform neighbour sampling (`"Inductive Representation
    Learning on Large Graphs" <https://arxiv.org/abs/1706.02216>`_) in pure,
    vectorised PyTorch, for
    :class:`~torch_geometric.loader.NeighborLoader` /
    :class:`~torch_geometric.loader.NodeLoader` when neither ``pyg-lib`` nor
    ``torch-sparse`` is installed.

    For hop :math:`h` every node of the frontier draws a uniform subset of
    exactly :math:`\min(\deg(i), k_h)` of its incoming edges (Floyd's
    algorithm, :math:`O(n k_h^2)`, independent of the degree),
    :math:`k_h` draws with replacement if :obj:`replace=True`, or all of them
    if :math:`k_h = -1`. The output follows PyG's ``directional`` subgraph
    convention: the first :obj:`batch_size` entries of ``n_id`` are the seeds
    (in input order, duplicates kept), then newly reached nodes in the order
    they were first sampled; ``edge_index`` holds the sampled edges only
    (source = sampled neighbour, target = the node it was sampled for),
    ``e_id`` their ids in the input graph, so ``edge_weight`` and every other
    edge attribute are filtered consistently.

    .. code-block:: python

        sampler = UniformNeighborSampler(data, num_neighbors=[4, 4])
        loader = NeighborLoader(data, num_neighbors=[4, 4], batch_size=1024,
                                neighbor_sampler=sampler, shuffle=True)

    Args:
        data (torch_geometric.data.Data): The graph.
        num_neighbors (List[int]): Number of neighbours per hop (:obj:`-1`:
            all).
        replace (bool, optional): Sample with replacement.
            (default: :obj:`False`)
        generator (torch.Generator, optional): Random generator (default:
            the global one, which :class:`~tagraph.engine.Trainer` seeds).
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Sequence[int],
        replace: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(data, Data):
            raise TypeError(
                f"UniformNeighborSampler supports homogeneous 'Data' graphs, got "
                f"{type(data).__name__}"
            )
        if isinstance(num_neighbors, int) or any(int(k) < -1 for k in num_neighbors):
            raise ValueError(f"'num_neighbors' must be a list of ints >= -1, got {num_neighbors}")
        self.num_neighbors = [int(k) for k in num_neighbors]
        self.replace = bool(replace)
        self.generator = generator
        self.num_nodes = int(data.num_nodes)
        edge_index = data.edge_index
        if edge_index is None:
            raise ValueError("the graph has no 'edge_index'")
        col = edge_index[1]
        perm = torch.sort(col, stable=True).indices  # CSC order -> input edge id
        self.row = edge_index[0].index_select(0, perm)
        self.perm = perm
        deg = torch.bincount(col, minlength=self.num_nodes)
        self.colptr = torch.cat([deg.new_zeros(1), torch.cumsum(deg, 0)])
        # global -> local map, reset after every batch (only touched entries).
        self._assoc = torch.full((self.num_nodes,), -1, dtype=torch.long)
        # scratch for de-duplication (always reset to "unset" after use).
        self._unset = torch.iinfo(torch.long).max
        self._first = torch.full((self.num_nodes,), self._unset, dtype=torch.long)

    def _first_of(self, values: Tensor) -> Tensor:
        r"""Positions of the first occurrence of each distinct value, in
        order of appearance (O(n), no sort), via a scatter-min into a scratch
        map indexed by node id."""
        pos = torch.arange(values.numel(), device=values.device)
        self._first.scatter_reduce_(0, values, pos, reduce="amin")
        is_first = self._first.index_select(0, values) == pos
        self._first.index_fill_(0, values, self._unset)
        return is_first.nonzero().view(-1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
            f"num_neighbors={self.num_neighbors}, replace={self.replace})"
        )

    @property
    def edge_permutation(self) -> None:
        # ``edge`` in the output already holds input edge ids.
        return None

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        if index.input_type is not None:
            raise NotImplementedError("UniformNeighborSampler supports homogeneous graphs only")
        if index.time is not None:
            raise NotImplementedError("UniformNeighborSampler does not support temporal sampling")
        seed = index.node.to(torch.long)
        node, row, col, edge, nn, ne = self._sample(seed)
        return SamplerOutput(
            node=node, row=row, col=col, edge=edge, batch=None,
            num_sampled_nodes=nn, num_sampled_edges=ne,
            metadata=(index.input_id, index.time),
        )

    def sample_from_edges(self, index, neg_sampling=None):
        raise NotImplementedError(
            "UniformNeighborSampler samples from nodes only (NeighborLoader / NodeLoader)"
        )

    def _sample(self, seed: Tensor):
        assoc = self._assoc
        if seed.numel() and (int(seed.min()) < 0 or int(seed.max()) >= self.num_nodes):
            raise IndexError(f"seed node ids must lie in [0, {self.num_nodes})")
        nodes = [seed]
        try:
            n_total = seed.numel()
            # Seeds map to their first occurrence; duplicates keep their own rows
            # (and their own sampled neighbourhoods) as the frontier below.
            if n_total:
                first = self._first_of(seed)
                assoc.index_copy_(0, seed.index_select(0, first), first)
            frontier_global = seed
            frontier_local = torch.arange(n_total)
            rows, cols, edges = [], [], []
            num_nodes, num_edges = [n_total], []
            for k in self.num_neighbors:
                edge_pos, owner = sample_neighbors(
                    self.colptr, frontier_global, k, self.replace, self.generator)
                src = self.row.index_select(0, edge_pos)
                edges.append(self.perm.index_select(0, edge_pos))
                cols.append(frontier_local.index_select(0, owner))
                # New nodes, in order of first appearance.
                local = assoc.index_select(0, src)
                is_new = local < 0
                cand_pos = is_new.nonzero().view(-1)
                cand = src.index_select(0, cand_pos)
                new_nodes = cand.index_select(0, self._first_of(cand)) if cand.numel() else cand
                new_local = torch.arange(n_total, n_total + new_nodes.numel())
                assoc.index_copy_(0, new_nodes, new_local)
                n_total += new_nodes.numel()
                rows.append(assoc.index_select(0, src))
                nodes.append(new_nodes)
                num_nodes.append(new_nodes.numel())
                num_edges.append(edge_pos.numel())
                frontier_global, frontier_local = new_nodes, new_local
        finally:
            assoc.index_fill_(0, torch.cat(nodes), -1)  # reset only what we touched
        node = torch.cat(nodes)
        empty = seed.new_empty(0)
        row = torch.cat(rows) if rows else empty
        col = torch.cat(cols) if cols else empty
        edge = torch.cat(edges) if edges else empty
        return node, row, col, edge, num_nodes, num_edges
