"""tagraph.nn: MessagePassing layers and losses."""

from tagraph.nn.pgcn_conv import PGCNConv

__all__ = ["PGCNConv"]
