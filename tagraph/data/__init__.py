"""tagraph.data: videos, features, proposals, clicks, graph builders and datasets."""

# graph builders (branch `graph`); readers, datasets, synthetic data (branch `data`)
from tagraph.data.clicks import (
    background_gaps,
    clicks_to_snippets,
    merge_segments,
    read_clicks,
    simulate_action_clicks,
    simulate_background_clicks,
    simulate_clicks,
    write_clicks,
)
from tagraph.data.dataset import (
    THUMOS14,
    ActivityNet13,
    ActivityNetJSONDataset,
    TALDataset,
    read_classes,
)
from tagraph.data.features import (
    FeatureFolder,
    read_feature_file,
    resample_snippets,
    select_modality,
)
from tagraph.data.networkx import graph_to_networkx
from tagraph.data.proposal_graph import (
    drop_gt_nodes,
    proposal_edges,
    proposal_graph,
    snippet_ranges,
)
from tagraph.data.proposal_io import (
    ProposalList,
    read_bsn_csv,
    read_bsn_folder,
    read_ssn_proposals,
    write_bsn_csv,
    write_ssn_proposals,
)
from tagraph.data.proposals import actionness_grouping, sliding_window_proposals
from tagraph.data.snippet_graph import knn_edges, snippet_graph, temporal_edges
from tagraph.data.synthetic import SyntheticTAL, generate_synthetic_features, generate_synthetic_tal
from tagraph.data.video import Video, num_snippets_for, snippet_times
from tagraph.data.wtalc import WTALCThumos14, load_wtalc_annotations, load_wtalc_features

__all__ = [
    # --- graph builders (branch `graph`) ---
    "proposal_graph",
    "drop_gt_nodes",
    "proposal_edges",
    "snippet_ranges",
    "snippet_graph",
    "temporal_edges",
    "knn_edges",
    "sliding_window_proposals",
    "actionness_grouping",
    "graph_to_networkx",
    # --- readers, datasets, synthetic data (branch `data`) ---
    "Video",
    "snippet_times",
    "num_snippets_for",
    "FeatureFolder",
    "read_feature_file",
    "select_modality",
    "resample_snippets",
    "ProposalList",
    "read_ssn_proposals",
    "write_ssn_proposals",
    "read_bsn_csv",
    "write_bsn_csv",
    "read_bsn_folder",
    "merge_segments",
    "background_gaps",
    "simulate_background_clicks",
    "simulate_action_clicks",
    "simulate_clicks",
    "clicks_to_snippets",
    "read_clicks",
    "write_clicks",
    "TALDataset",
    "ActivityNetJSONDataset",
    "THUMOS14",
    "ActivityNet13",
    "read_classes",
    "SyntheticTAL",
    "generate_synthetic_features",
    "generate_synthetic_tal",
    "WTALCThumos14",
    "load_wtalc_annotations",
    "load_wtalc_features",
]
