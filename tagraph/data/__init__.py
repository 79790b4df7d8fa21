"""tagraph.data."""

# --- graph builders (branch `graph`) ---
from tagraph.data.networkx import graph_to_networkx
from tagraph.data.proposal_graph import proposal_edges, proposal_graph, snippet_ranges
from tagraph.data.snippet_graph import knn_edges, snippet_graph, temporal_edges

__all__ = [
    # --- graph builders (branch `graph`) ---
    "proposal_graph",
    "proposal_edges",
    "snippet_ranges",
    "snippet_graph",
    "temporal_edges",
    "knn_edges",
    "graph_to_networkx",
]
