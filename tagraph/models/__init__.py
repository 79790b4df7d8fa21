"""tagraph.models: P-GCN and baselines."""

from tagraph.models.pgcn import (
    PGCN,
    PGCNBranch,
    decode_regression,
    detections_from_scores,
    fuse_streams,
    regression_stats,
)

__all__ = [
    "PGCN",
    "PGCNBranch",
    "decode_regression",
    "detections_from_scores",
    "fuse_streams",
    "regression_stats",
]
