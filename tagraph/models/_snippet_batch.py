"""Helpers shared by the click / weakly supervised snippet models (private)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from tagraph.models.wtal import WeaklySupervisedTAL, batch_vectors, video_ids_of


class SnippetBatch(NamedTuple):
    x: Tensor  #: [N, D]
    edge_index: Tensor  #: [2, E]
    edge_type: Tensor  #: [E]
    batch: Tensor  #: [N]
    ptr: Tensor  #: [B + 1]
    num_graphs: int
    video_ids: list[str]


def snippet_batch(data: Any, temporal_offsets: Sequence[int] = (-1, 1),
                  norm: Callable[[Tensor], Tensor] | None = None) -> SnippetBatch:
    r"""Unpacks a snippet graph or a PyG batch of them (via the shared
    :class:`~tagraph.models.WeaklySupervisedTAL` helpers); builds temporal edges
    when the graph has none; :obj:`x` passes through :obj:`norm` when given."""
    batch, ptr, num_graphs = batch_vectors(data)
    edge_index, edge_type = WeaklySupervisedTAL.temporal_graph(data, temporal_offsets)
    ids = video_ids_of(data) or [str(i) for i in range(num_graphs)]
    x = data.x if norm is None else norm(data.x)
    return SnippetBatch(x, edge_index, edge_type, batch, ptr, num_graphs, ids)


def labels_of(data, num_graphs: int, num_classes: int) -> Tensor:
    y = data.y
    if y.dim() == 1:
        y = y.view(num_graphs, -1)
    if y.size(1) != num_classes:
        raise ValueError(f"'y' has {y.size(1)} classes, the model {num_classes}")
    return y.to(torch.get_default_dtype())


class Clicks(NamedTuple):
    index: Tensor  #: [K] global node index
    labels: Tensor  #: [K]
    batch: Tensor  #: [K] video of every click


def batched_clicks(data, sb: SnippetBatch) -> Clicks:
    r"""Clicks of a snippet graph / batch as global node indices.

    :obj:`clicks` are snippet indices within each video. Works with a single
    graph, a PyG batch (click counts from its slice dictionary, or
    :obj:`clicks_batch` from :obj:`follow_batch`), with or without PyG having
    incremented the indices. A click outside its video raises a
    :class:`ValueError` naming the video and the click.
    """
    device = sb.x.device
    clicks = getattr(data, "clicks", None)
    labels = getattr(data, "click_labels", None)
    if clicks is None:
        empty = torch.empty(0, dtype=torch.long, device=device)
        return Clicks(empty, empty, empty)
    clicks = clicks.view(-1).long()
    labels = labels.view(-1).long() if labels is not None else None
    if labels is None or labels.numel() != clicks.numel():
        raise ValueError(f"'click_labels' must have one label per click "
                         f"(videos {sb.video_ids[:5]})")
    click_batch = getattr(data, "clicks_batch", None)
    inc = None
    slices = getattr(data, "_slice_dict", None)
    if click_batch is None:
        if slices is not None and "clicks" in slices:
            counts = slices["clicks"].diff().to(device)
            click_batch = torch.repeat_interleave(torch.arange(counts.numel(), device=device),
                                                  counts)
        elif sb.num_graphs == 1:
            click_batch = torch.zeros_like(clicks)
        else:
            raise ValueError("cannot tell which video each click belongs to: batch the graphs "
                             "with PyG (Batch.from_data_list / DataLoader)")
    incs = getattr(data, "_inc_dict", None)
    if incs is not None and "clicks" in incs and torch.is_tensor(incs["clicks"]):
        inc = incs["clicks"].to(device).view(-1)
    local = clicks - inc[click_batch] if inc is not None else clicks
    counts = sb.ptr[1:] - sb.ptr[:-1]
    bad = (local < 0) | (local >= counts[click_batch])
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        g = int(click_batch[i])
        raise ValueError(
            f"click {int(local[i])} of video '{sb.video_ids[g]}' is outside the video "
            f"(snippet indices 0..{int(counts[g]) - 1})"
        )
    return Clicks(local + sb.ptr[click_batch], labels, click_batch)



def scalar(t: Tensor) -> float:
    return float(t.detach())
