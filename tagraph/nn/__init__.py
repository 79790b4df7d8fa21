"""tagraph.nn: message-passing layers, pooling and losses."""

from tagraph.nn.affinity_conv import AffinityConv
from tagraph.nn.cosine_classifier import CosineClassifier, CosineClassifierOutput
from tagraph.nn.discrimination_memory import DiscriminationMemory, memory_momentum
from tagraph.nn.information_interaction import InformationInteraction, masked_cross_attention
from tagraph.nn.saliency import SalientSnippets

__all__ = [
    "AffinityConv",
    "SalientSnippets",
    "InformationInteraction",
    "masked_cross_attention",
    "DiscriminationMemory",
    "memory_momentum",
    "CosineClassifier",
    "CosineClassifierOutput",
]
