"""tagraph.nn: MessagePassing layers and losses."""

from tagraph.nn.losses import class_wise_smooth_l1_loss, completeness_hinge_loss
from tagraph.nn.pgcn_conv import PGCNConv

__all__ = ["PGCNConv", "completeness_hinge_loss", "class_wise_smooth_l1_loss"]
