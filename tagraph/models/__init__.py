"""tagraph.models."""

from tagraph.models.backtal import BackTAL
from tagraph.models.ecm import ECM
from tagraph.models.grn import GRN, GRN_DEFAULTS
from tagraph.models.issf import ISSF
from tagraph.models.wtal import WeaklySupervisedTAL, detection_records

__all__ = ["GRN", "GRN_DEFAULTS", "ECM", "WeaklySupervisedTAL", "detection_records", "BackTAL",
           "ISSF"]
