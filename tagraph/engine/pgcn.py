r"""P-GCN glue: deterministic full-graph inference to ActivityNet results,
and evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from tagraph.engine.trainer import move_to_device
from tagraph.evaluation import detection_map
from tagraph.io import Detections
from tagraph.models.pgcn import PGCN, detections_from_scores, fuse_streams

__all__ = ["pgcn_predict", "pgcn_evaluate"]

_GRAPH_KEYS = ("x", "x_ext", "segments", "edge_index", "edge_weight", "duration", "video_id")


def _slim(g: Data) -> Data:
    return Data(**{k: g[k] for k in _GRAPH_KEYS if k in g}, num_nodes=g.num_nodes)


@torch.no_grad()
def pgcn_predict(
    model: PGCN | Sequence[PGCN],
    graphs: Sequence[Data],
    classes: Sequence[str],
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    stream_weights: Sequence[float] | None = None,
    stream_features: Sequence[slice] | None = None,
    **predict_kwargs: Any,
) -> Detections:
    r"""Detections of whole videos (full graphs, no sampling: deterministic).

    Args:
        model (PGCN or list of PGCN): One model, or one per stream (e.g. RGB
            and Flow) fused with :obj:`stream_weights` (paper: 2 : 3).
        graphs (list of Data): Proposal graphs with ``video_id``.
        classes (list of str): Class names, index = label.
        batch_size (int): Videos per forward pass. (default: :obj:`16`)
        stream_features (list of slice, optional): For several models, the
            slice of the feature dimension each one reads (applied to ``x``
            and to each third of ``x_ext``).
        **predict_kwargs: :meth:`PGCN.predict` options (``top_k``,
            ``nms_threshold``, ``max_per_video``, ``regression``).
    """
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    for m in models:
        m.eval()
    if len(models) > 2 or (len(models) == 2 and stream_weights is None):
        stream_weights = stream_weights or (2.0, 3.0)
    loader = DataLoader([_slim(g) for g in graphs], batch_size=batch_size, shuffle=False)
    parts = []
    for batch in loader:
        batch = move_to_device(batch, device)
        outs = []
        for i, m in enumerate(models):
            b = batch
            if stream_features is not None:
                sl = stream_features[i]
                d = batch.x.size(1)
                ext = batch.x_ext.view(batch.num_nodes, 3, d)[:, :, sl].reshape(batch.num_nodes, -1)
                b = batch.clone()
                b.x, b.x_ext = batch.x[:, sl], ext
            outs.append(m.scores(b))
        if len(outs) == 1:
            scores = outs[0]
        else:
            w = list(stream_weights)
            scores = outs[0]
            total = w[0]
            for o, wi in zip(outs[1:], w[1:]):
                scores = fuse_streams(scores, o, (total, wi))
                total += wi
        det = detections_from_scores(
            scores[0], scores[1], batch.segments, batch.batch,
            duration=batch.get("duration"), **predict_kwargs)
        vids = np.asarray(batch.video_id)
        parts.append(Detections(
            vids[det["video"].cpu().numpy()],
            np.asarray(classes)[det["label"].cpu().numpy()],
            det["score"].cpu().double().numpy(),
            torch.stack([det["start"], det["end"]], 1).cpu().double().numpy(),
        ))
    return Detections.concat(parts)


def pgcn_evaluate(
    model: PGCN | Sequence[PGCN],
    graphs: Sequence[Data],
    ground_truth: str | Mapping[str, Any],
    classes: Sequence[str],
    tiou_thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    *,
    restrict_to_graphs: bool = True,
    subset: str | None = None,
    **kwargs: Any,
):
    r"""Predicts and scores against :obj:`ground_truth`. With
    :obj:`restrict_to_graphs`, only the ground truth of the given videos
    counts (e.g. a validation split carved from the training videos; the
    class taxonomy stays that of the whole file).
    Returns ``(DetectionResult, Detections)``."""
    import dataclasses

    from tagraph.io import load_annotations

    dets = pgcn_predict(model, graphs, classes, **kwargs)
    gt = load_annotations(ground_truth)
    if restrict_to_graphs:
        ids = {g.video_id for g in graphs}
        missing = ids - set(gt)
        if missing:
            raise ValueError(f"{len(missing)} videos have no ground truth, e.g. "
                             f"{sorted(missing)[0]!r}")
        gt = {k: dataclasses.replace(v, subset="__evaluated__" if k in ids else "__other__")
              for k, v in gt.items()}
        subset = "__evaluated__"
    # Classes absent from the whole ground truth have no AP; their predictions
    # cannot change any other class's AP, so drop them (the evaluator refuses them).
    known = sorted({lab for v in gt.values() for lab in v.labels})
    scored = dets[np.isin(dets.label, known)] if len(dets) else dets
    return detection_map(gt, scored, list(tiou_thresholds), subset=subset), dets
