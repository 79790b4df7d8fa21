"""Segment operations: tIoU, NMS / soft-NMS, range pooling (torch only)."""

from tagraph.ops.cas import (
    CASDetectionConfig,
    CASDetections,
    cas_segments,
    cas_to_detections,
    grouped_nms,
    select_classes,
    threshold_range,
)
from tagraph.ops.finite import all_finite
from tagraph.ops.nms import batched_nms, nms, soft_nms
from tagraph.ops.padding import length_groups
from tagraph.ops.range_pool import range_max_pool, range_mean_pool
from tagraph.ops.segment_iou import (
    segment_intersection,
    segment_iou,
    segment_iou_pairwise,
    segment_overlap,
)
from tagraph.ops.sort import sortable_int, stable_argsort, unique_rows

__all__ = [
    "all_finite",
    "segment_intersection",
    "segment_iou",
    "segment_iou_pairwise",
    "segment_overlap",
    "nms",
    "soft_nms",
    "batched_nms",
    "range_max_pool",
    "range_mean_pool",
    "CASDetectionConfig",
    "CASDetections",
    "cas_segments",
    "cas_to_detections",
    "grouped_nms",
    "length_groups",
    "select_classes",
    "threshold_range",
    "sortable_int",
    "stable_argsort",
    "unique_rows",
]
