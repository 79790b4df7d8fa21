"""File formats and atomic writes (ActivityNet ground-truth / results JSON)."""

from tagraph.io.activitynet import (
    Detections,
    FormatWarning,
    VideoAnnotation,
    load_annotations,
    load_results,
    save_annotations,
    save_results,
)
from tagraph.io.ambiguous import load_ambiguous
from tagraph.io.atomic import atomic_open, atomic_save_torch, atomic_write

__all__ = [
    "atomic_open",
    "atomic_write",
    "atomic_save_torch",
    "VideoAnnotation",
    "Detections",
    "FormatWarning",
    "load_annotations",
    "save_annotations",
    "load_results",
    "save_results",
    "load_ambiguous",
]
