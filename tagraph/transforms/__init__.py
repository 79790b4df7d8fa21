"""tagraph.transforms: :class:`~torch_geometric.transforms.BaseTransform` wrappers."""

from tagraph.transforms.proposal_graph import ProposalGraph
from tagraph.transforms.random_crop import RandomSnippetCrop
from tagraph.transforms.snippet_graph import SnippetGraph

__all__ = [
    "ProposalGraph",
    "SnippetGraph",
    "RandomSnippetCrop",
]
