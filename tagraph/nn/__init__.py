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
from tagraph.nn.information_interaction import InformationInteraction, masked_cross_attention
from tagraph.nn.issf_losses import attention_contrast_loss, soft_label_ce_loss
from tagraph.nn.pgcn_conv import PGCNConv
from tagraph.nn.saliency import SalientSnippets

__all__ = [
    "PGCNConv",
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
