"""Proposal-graph transform."""

from __future__ import annotations

from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from tagraph.data.proposal_graph import proposal_graph

__all__ = ["ProposalGraph"]

# Attributes consumed by the builder (snippet-level), not copied to the graph.
_CONSUMED = ("x", "pos", "segments", "edge_index", "edge_weight", "edge_type")


@functional_transform("tagraph_proposal_graph")
class ProposalGraph(BaseTransform):
    r"""Turns a video (snippet features :obj:`x` :obj:`[T, D]`, snippet times
    :obj:`pos` :obj:`[T]`, proposals :obj:`segments` :obj:`[N, 2]` and,
    optionally, :obj:`gt_segments` / :obj:`gt_labels`) into its P-GCN
    proposal graph with :func:`tagraph.data.proposal_graph` (functional
    name: :obj:`tagraph_proposal_graph`).

    Other attributes (:obj:`video_id`, :obj:`duration`, :obj:`fps`, a
    video-level :obj:`y` when no ground truth is given, ...) are copied;
    attributes the builder produces take precedence. :obj:`duration` and
    :obj:`video_id`, when present, are passed to the builder (bounds check and
    error messages).

    Args:
        contextual_iou (float, optional): tIoU above which proposals are
            contextual neighbours. (default: :obj:`0.7`)
        max_contextual (int, optional): Contextual in-edges per node.
            (default: :obj:`8`)
        surrounding_distance (float, optional): Normalised centre distance
            below which disjoint proposals are surrounding neighbours.
            (default: :obj:`1.0`)
        max_surrounding (int, optional): Surrounding in-edges per node.
            (default: :obj:`2`)
        context_ratio (float, optional): Start / end context length as a
            fraction of the proposal. (default: :obj:`0.5`)
        pooling (str, optional): :obj:`"max"` or :obj:`"mean"`.
            (default: :obj:`"max"`)
        fg_iou (float, optional): :obj:`y` is the class when the best tIoU
            exceeds it. (default: :obj:`0.7`)
    """
    def __init__(
        self,
        contextual_iou: float = 0.7,
        max_contextual: int = 8,
        surrounding_distance: float = 1.0,
        max_surrounding: int = 2,
        context_ratio: float = 0.5,
        pooling: str = "max",
        fg_iou: float = 0.7,
    ) -> None:
        self.contextual_iou = contextual_iou
        self.max_contextual = max_contextual
        self.surrounding_distance = surrounding_distance
        self.max_surrounding = max_surrounding
        self.context_ratio = context_ratio
        self.pooling = pooling
        self.fg_iou = fg_iou

    def forward(self, data: Data) -> Data:
        video_id = data.video_id if "video_id" in data else None
        for key in ("x", "pos", "segments"):
            if key not in data or data[key] is None:
                where = f"video '{video_id}': " if video_id is not None else ""
                raise ValueError(f"{where}ProposalGraph needs 'data.{key}'")
        duration = data.duration if "duration" in data else None
        out = proposal_graph(
            data.x,
            data.pos,
            data.segments,
            gt_segments=data.gt_segments if "gt_segments" in data else None,
            gt_labels=data.gt_labels if "gt_labels" in data else None,
            contextual_iou=self.contextual_iou,
            max_contextual=self.max_contextual,
            surrounding_distance=self.surrounding_distance,
            max_surrounding=self.max_surrounding,
            context_ratio=self.context_ratio,
            pooling=self.pooling,
            fg_iou=self.fg_iou,
            duration=float(duration) if duration is not None else None,
            video_id=video_id,
        )
        for key, value in data.items():
            if key not in _CONSUMED and key not in out:
                out[key] = value
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(contextual_iou={self.contextual_iou}, "
                f"max_contextual={self.max_contextual}, "
                f"surrounding_distance={self.surrounding_distance}, "
                f"max_surrounding={self.max_surrounding}, "
                f"context_ratio={self.context_ratio}, pooling={self.pooling!r})")
