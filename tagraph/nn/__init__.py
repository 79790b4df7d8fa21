"""tagraph.nn: message-passing layers, pooling and losses."""

from tagraph.nn.affinity_conv import AffinityConv

__all__ = ["AffinityConv"]
