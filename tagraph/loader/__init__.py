"""tagraph.loader: neighbour-sampled proposal-graph loaders (+ pure-torch sampler)."""

from tagraph.loader.neighbor_sampler import UniformNeighborSampler, sample_neighbors
from tagraph.loader.proposal_loader import (
    BACKGROUND,
    FOREGROUND,
    INCOMPLETE,
    PGCNTrainLoader,
    collate_proposal_graphs,
    has_native_sampler,
    make_neighbor_sampler,
    proposal_neighbor_loader,
    proposal_sample_types,
    select_training_proposals,
)

__all__ = [
    "UniformNeighborSampler",
    "sample_neighbors",
    "PGCNTrainLoader",
    "collate_proposal_graphs",
    "has_native_sampler",
    "make_neighbor_sampler",
    "proposal_neighbor_loader",
    "proposal_sample_types",
    "select_training_proposals",
    "FOREGROUND",
    "INCOMPLETE",
    "BACKGROUND",
]
