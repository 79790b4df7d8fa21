"""Evaluation: ActivityNet-identical detection mAP, proposal average recall, DETAD error
analysis."""

from tagraph.evaluation.analysis import (
    CHARACTERISTIC_BINS,
    ERROR_TYPES,
    CharacteristicSensitivity,
    DetectionAnalysis,
    analyze_detections,
)
from tagraph.evaluation.checks import EvaluationInputWarning
from tagraph.evaluation.detection import (
    ACTIVITYNET_TIOU,
    THUMOS14_TIOU,
    DetectionResult,
    detection_map,
    filter_ambiguous,
)
from tagraph.evaluation.recall import RecallResult, average_recall

__all__ = [
    "ACTIVITYNET_TIOU",
    "THUMOS14_TIOU",
    "DetectionResult",
    "EvaluationInputWarning",
    "detection_map",
    "filter_ambiguous",
    "RecallResult",
    "average_recall",
    "CHARACTERISTIC_BINS",
    "ERROR_TYPES",
    "CharacteristicSensitivity",
    "DetectionAnalysis",
    "analyze_detections",
]
