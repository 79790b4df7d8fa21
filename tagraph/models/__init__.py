"""tagraph.models: P-GCN, GRN, ECM, BackTAL, ISSF and baselines (MIL, MLP)."""

from tagraph.models.backtal import BackTAL
from tagraph.models.ecm import ECM
from tagraph.models.grn import GRN, GRN_DEFAULTS
from tagraph.models.issf import ISSF
from tagraph.models.mil import MIL
from tagraph.models.pgcn import (
    PGCN,
    PGCNBranch,
    decode_regression,
    detections_from_scores,
    fuse_streams,
    regression_stats,
)
from tagraph.models.wtal import WeaklySupervisedTAL, detection_records, wtal_detection_config

__all__ = [
    "PGCN",
    "PGCNBranch",
    "decode_regression",
    "detections_from_scores",
    "fuse_streams",
    "regression_stats",
    "GRN",
    "GRN_DEFAULTS",
    "ECM",
    "WeaklySupervisedTAL",
    "detection_records",
    "BackTAL",
    "ISSF",
    "MIL",
    "wtal_detection_config",
]
