"""Shared machinery of the weakly supervised (video-label / click) snippet-graph models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from tagraph.nn.input_norm import InputNorm
from tagraph.nn.mil import check_finite_cas, labeled_video_mask
from tagraph.nn.temporal_conv import temporal_edges
from tagraph.ops import all_finite
from tagraph.ops.cas import (
    CASDetectionConfig,
    CASDetections,
    cas_to_detections,
    threshold_range,
)

__all__ = ["WeaklySupervisedTAL", "batch_vectors", "video_ids_of", "detection_records",
           "wtal_detection_config"]


def video_ids_of(batch: Any) -> list[str] | None:
    r"""The video ids of a PyG :obj:`Batch` (list) or :obj:`Data` (str), if any."""
    vid = getattr(batch, "video_id", None)
    if vid is None:
        return None
    return [vid] if isinstance(vid, str) else [str(v) for v in vid]


def batch_vectors(batch: Any) -> tuple[Tensor, Tensor, int]:
    r""":obj:`(batch, ptr, num_graphs)` of a PyG :obj:`Batch` or single :obj:`Data`."""
    n = batch.num_nodes
    device = batch.x.device
    b = getattr(batch, "batch", None)
    if b is None:
        b = torch.zeros(n, dtype=torch.long, device=device)
        ptr = torch.tensor([0, n], dtype=torch.long, device=device)
        return b, ptr, 1
    ptr = getattr(batch, "ptr", None)
    num_graphs = int(batch.num_graphs)
    if ptr is None:
        counts = torch.bincount(b, minlength=num_graphs)
        ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=device)
        torch.cumsum(counts, 0, out=ptr[1:])
    return b, ptr, num_graphs


def detection_records(
    det: CASDetections, batch: Any, class_names: Sequence[str] | None = None,
) -> list[tuple[str, str | int, float, float, float]]:
    r"""Detections as :obj:`(video_id, label, score, start_s, end_s)` tuples (for
    :meth:`tagraph.io.Detections.from_records`); labels are class names when
    given, else class indices."""
    ids = video_ids_of(batch)
    b = det.batch.tolist()
    vids = [ids[i] for i in b] if ids is not None else [str(i) for i in b]
    labels = det.labels.tolist()
    if class_names is not None:
        labels = [class_names[i] for i in labels]
    seg = det.segments.tolist()
    return [(v, lab, float(s), float(se[0]), float(se[1]))
            for v, lab, s, se in zip(vids, labels, det.scores.tolist(), seg)]


def wtal_detection_config(**overrides: Any) -> CASDetectionConfig:
    r"""The scale-free CAS :math:`\rightarrow` detections settings of
    :class:`~tagraph.models.MIL`, :class:`~tagraph.models.ECM` and
    :class:`~tagraph.models.BackTAL` (each with its own class threshold,
    chosen on validation; :obj:`overrides` replace fields):
    classes whose video score is at least 0.1 of the video's best class
    (and always the best one), the CAS min-max normalised per video and
    class and thresholded at :math:`0.1, 0.15, \dots, 0.9` of that range,
    outer-inner contrast with :math:`\lambda = 0.25` plus :math:`0.2\,v_c`,
    hard NMS at tIoU 0.5. Every threshold is relative to the video's own
    scores, so a model of another score scale, or features of another
    offset, scale or dimension, still yields detections."""
    kw: dict[str, Any] = dict(
        class_threshold=0.1, class_relative=True, top1_fallback=True,
        thresholds=threshold_range(0.1, 0.95, 0.05), normalize="minmax", outer_lambda=0.25,
        gamma=0.2, nms_method="hard", iou_threshold=0.5,
    )
    kw.update(overrides)
    return CASDetectionConfig(**kw)


class WeaklySupervisedTAL(torch.nn.Module):
    r"""Base class of the snippet-graph models trained from weak labels.

    Subclasses implement :meth:`training_step` (the :class:`tagraph.engine.Trainer`
    contract) and :meth:`localization_outputs`, returning the class activation
    sequence used for localisation, the video scores that select the classes,
    and optionally a separate signal to threshold. :meth:`predict` then turns
    them into detections with the one shared implementation
    :func:`tagraph.ops.cas_to_detections`, configured by
    :attr:`detection_config`.

    The batch is a PyG :obj:`Batch` of snippet graphs (:obj:`x`, :obj:`pos`,
    optional :obj:`edge_index` / :obj:`edge_type`, :obj:`y` :obj:`[B, C]`,
    :obj:`video_id`, :obj:`duration`).

    Every model reads its features through :attr:`input_norm`
    (:class:`~tagraph.nn.InputNorm`, fitted on the training videos by
    :meth:`fit_input_norm`, which ``tagraph train`` calls before the first
    step), so the same hyper-parameters serve features of any offset and
    scale.
    """

    detection_config: CASDetectionConfig

    #: Counts the videos skipped for having no label (over the model's life).
    num_skipped_unlabeled: int

    def __init__(self, detection_config: CASDetectionConfig, in_channels: int | None = None,
                 input_norm: str = "center_scale") -> None:
        super().__init__()
        self.detection_config = detection_config
        self.num_skipped_unlabeled = 0
        self.input_norm = InputNorm(in_channels if in_channels is not None else 0,
                                    mode=input_norm if in_channels is not None else "none")

    def fit_input_norm(self, graphs: Any) -> None:
        r"""Fits :attr:`input_norm` on the features of :obj:`graphs` (an
        iterable of snippet graphs, or of :obj:`[T, D]` tensors)."""
        self.input_norm.fit(g if isinstance(g, Tensor) else g.x for g in graphs)

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def check_batch(batch: Any) -> None:
        r"""Errors naming the video for empty videos and non-finite features."""
        _, ptr, _ = batch_vectors(batch)
        counts = ptr[1:] - ptr[:-1]
        ids = video_ids_of(batch)
        if bool((counts == 0).any()):
            i = int((counts == 0).nonzero()[0])
            name = ids[i] if ids is not None else f"#{i}"
            raise ValueError(f"video '{name}' has no snippets (x is empty)")
        if not all_finite(batch.x):
            b, _, _ = batch_vectors(batch)
            check_finite_cas(batch.x, b, ids, what="features 'x'")

    @staticmethod
    def temporal_graph(batch: Any, offsets: Sequence[int] = (-1, 1)) -> tuple[Tensor, Tensor]:
        r"""The batch's :obj:`(edge_index, edge_type)`, or temporal edges built
        from :obj:`ptr` (:func:`tagraph.nn.temporal_edges`) when it has none."""
        ei = getattr(batch, "edge_index", None)
        et = getattr(batch, "edge_type", None)
        if ei is not None and et is not None and ei.numel() > 0:
            return ei, et
        _, ptr, _ = batch_vectors(batch)
        return temporal_edges(ptr, offsets)

    def labeled(self, batch: Any) -> Tensor:
        r"""Mask of the videos with a label; warns and counts the others."""
        mask = labeled_video_mask(batch.y, video_ids_of(batch))
        self.num_skipped_unlabeled += int((~mask).sum())
        return mask

    # --------------------------------------------------------------- inference
    def localization_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        r"""Returns :obj:`(cas [N, C], video_scores [B, C], act [N, C] or None)`."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, batch: Any) -> CASDetections:
        r"""Detections of a batch (times in seconds); see :func:`~tagraph.ops.cas_to_detections`.

        Raises a :class:`ValueError` naming the video if its CAS has NaN."""
        was_training = self.training
        self.eval()
        try:
            self.check_batch(batch)
            cas, video_scores, act = self.localization_outputs(batch)
        finally:
            self.train(was_training)
        b, _, _ = batch_vectors(batch)
        ids = video_ids_of(batch)
        check_finite_cas(cas, b, ids)
        if act is not None:
            check_finite_cas(act, b, ids, what="activation")
        duration = getattr(batch, "duration", None)
        if duration is not None:
            duration = torch.as_tensor(duration, device=cas.device).reshape(-1)
        return cas_to_detections(cas, video_scores, b, batch.pos, self.detection_config,
                                 act=act, duration=duration)
