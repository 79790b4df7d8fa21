"""tagraph.models."""

from tagraph.models.backtal import BackTAL
from tagraph.models.issf import ISSF

__all__ = ["BackTAL", "ISSF"]
