"""tagraph.nn: MessagePassing layers and losses."""

from tagraph.nn.graph_laplacian import (
    CGNotConvergedWarning,
    GraphLaplacianRegularization,
    LaplacianOperator,
    laplacian_solve,
)
from tagraph.nn.losses import class_wise_smooth_l1_loss, completeness_hinge_loss
from tagraph.nn.mil import (
    check_finite_cas,
    labeled_video_mask,
    normalized_ce_loss,
    segment_mean_pool,
    topk_mean_pool,
    topk_sizes,
    video_bce_loss,
)
from tagraph.nn.pgcn_conv import PGCNConv
from tagraph.nn.temporal_conv import TemporalConv, temporal_edges

__all__ = [
    "PGCNConv",
    "completeness_hinge_loss",
    "class_wise_smooth_l1_loss",
    # weak supervision (wtal)
    "TemporalConv",
    "temporal_edges",
    "GraphLaplacianRegularization",
    "LaplacianOperator",
    "laplacian_solve",
    "CGNotConvergedWarning",
    "topk_mean_pool",
    "segment_mean_pool",
    "topk_sizes",
    "normalized_ce_loss",
    "video_bce_loss",
    "labeled_video_mask",
    "check_finite_cas",
]
