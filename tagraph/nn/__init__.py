"""tagraph.nn: message-passing layers, pooling and losses."""

from tagraph.nn.affinity_conv import AffinityConv
from tagraph.nn.click_losses import (
    affinity_embedding_loss,
    click_ce_loss,
    foreground_sparsity_loss,
    score_separation_loss,
)
from tagraph.nn.cosine_classifier import CosineClassifier, CosineClassifierOutput
from tagraph.nn.discrimination_memory import DiscriminationMemory, memory_momentum
from tagraph.nn.graph_laplacian import (
    CGNotConvergedWarning,
    GraphLaplacianRegularization,
    LaplacianOperator,
    laplacian_solve,
)
from tagraph.nn.information_interaction import InformationInteraction, masked_cross_attention
from tagraph.nn.issf_losses import attention_contrast_loss, soft_label_ce_loss
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
from tagraph.nn.saliency import SalientSnippets
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
    # clicks / salient snippets (backtal)
    "AffinityConv",
    "SalientSnippets",
    "InformationInteraction",
    "masked_cross_attention",
    "DiscriminationMemory",
    "memory_momentum",
    "CosineClassifier",
    "CosineClassifierOutput",
    "click_ce_loss",
    "score_separation_loss",
    "affinity_embedding_loss",
    "foreground_sparsity_loss",
    "attention_contrast_loss",
    "soft_label_ce_loss",
]
