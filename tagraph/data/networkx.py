"""Readable :mod:`networkx` views of built graphs, for inspection."""

from __future__ import annotations

from typing import Any

from torch_geometric.data import Data

__all__ = ["graph_to_networkx"]

EDGE_TYPE_NAMES = {"proposal": ("contextual", "surrounding")}


def graph_to_networkx(data: Data, edge_type_names: list[str] | None = None) -> Any:
    r"""Converts a proposal or snippet graph to a :class:`networkx.MultiDiGraph`.

    Nodes carry :obj:`segment` (start, end) in seconds for proposal graphs or
    :obj:`time` for snippet graphs, and :obj:`label` (:obj:`y`, 0 =
    background) when node labels exist. Edges go source to target (the node
    that receives) and carry :obj:`weight` and :obj:`type` (a name when
    :obj:`edge_type_names` is given or the graph is a proposal graph, else the
    integer type). A multigraph, because a snippet pair can be linked by a
    temporal and a semantic edge at once.

    Args:
        data (torch_geometric.data.Data): A graph from
            :func:`~tagraph.data.proposal_graph` or
            :func:`~tagraph.data.snippet_graph`.
        edge_type_names (list[str], optional): Names of the edge types.
            (default: :obj:`None`)
    """
    import networkx as nx

    g = nx.MultiDiGraph()
    n = data.num_nodes or 0
    is_proposal = "segments" in data
    if edge_type_names is None and is_proposal:
        edge_type_names = list(EDGE_TYPE_NAMES["proposal"])
    y = data.y if "y" in data and data.y is not None and data.y.dim() == 1 \
        and data.y.numel() == n else None
    for i in range(n):
        attrs: dict[str, Any] = {}
        if is_proposal:
            attrs["segment"] = (float(data.segments[i, 0]), float(data.segments[i, 1]))
        elif "pos" in data and data.pos is not None:
            attrs["time"] = float(data.pos[i])
        if y is not None:
            attrs["label"] = int(y[i])
        g.add_node(i, **attrs)
    ei = data.edge_index.tolist() if data.edge_index is not None else [[], []]
    w = data.edge_weight.tolist() if "edge_weight" in data else [1.0] * len(ei[0])
    tp = data.edge_type.tolist() if "edge_type" in data else [0] * len(ei[0])
    for s, d, wt, ty in zip(ei[0], ei[1], w, tp):
        name = edge_type_names[ty] if edge_type_names is not None else ty
        g.add_edge(s, d, weight=wt, type=name)
    return g
