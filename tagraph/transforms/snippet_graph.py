"""Snippet-graph transform."""

from __future__ import annotations

from collections.abc import Sequence

from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from tagraph.data.snippet_graph import snippet_graph

__all__ = ["SnippetGraph"]


@functional_transform("tagraph_snippet_graph")
class SnippetGraph(BaseTransform):
    r"""Adds temporal and semantic kNN edges to a video's snippets (features
    :obj:`x` :obj:`[T, D]`, times :obj:`pos` :obj:`[T]`) with
    :func:`tagraph.data.snippet_graph` (functional name:
    :obj:`tagraph_snippet_graph`). Existing edges are replaced; every other
    attribute (:obj:`y`, :obj:`gt_segments`, :obj:`clicks`, :obj:`video_id`,
    ...) is kept.

    Args:
        temporal_offsets (Sequence[int], optional): Node :math:`t` receives from
            :math:`t + k`, one edge type per offset. (default: :obj:`(-1, 1)`)
        knn (int, optional): Semantic neighbours by cosine similarity.
            (default: :obj:`0`)
        knn_exclude_temporal (bool, optional): Skip temporal neighbours when
            choosing kNN edges. (default: :obj:`True`)
        knn_method (str, optional): :obj:`"exact"` or :obj:`"approx"`
            (random projection and inverted-file candidates, exact
            re-ranking; see :func:`tagraph.data.knn_edges`).
            (default: :obj:`"exact"`)
        knn_candidates (int, optional): Candidates re-ranked exactly per
            snippet by :obj:`"approx"`. (default: :obj:`16`)
        weight (str, optional): :obj:`"relu_cos"` or :obj:`None` (ones).
            (default: :obj:`"relu_cos"`)
    """
    def __init__(
        self,
        temporal_offsets: Sequence[int] = (-1, 1),
        knn: int = 0,
        knn_exclude_temporal: bool = True,
        knn_method: str = "exact",
        knn_candidates: int = 16,
        weight: str | None = "relu_cos",
    ) -> None:
        if knn_method not in ("exact", "approx"):
            raise ValueError(f"'knn_method' must be 'exact' or 'approx', got {knn_method!r}")
        self.temporal_offsets = tuple(int(k) for k in temporal_offsets)
        self.knn = knn
        self.knn_exclude_temporal = knn_exclude_temporal
        self.knn_method = knn_method
        self.knn_candidates = knn_candidates
        self.weight = weight

    def forward(self, data: Data) -> Data:
        video_id = data.video_id if "video_id" in data else None
        for key in ("x", "pos"):
            if key not in data or data[key] is None:
                where = f"video '{video_id}': " if video_id is not None else ""
                raise ValueError(f"{where}SnippetGraph needs 'data.{key}'")
        out = snippet_graph(
            data.x,
            data.pos,
            temporal_offsets=self.temporal_offsets,
            knn=self.knn,
            knn_exclude_temporal=self.knn_exclude_temporal,
            knn_method=self.knn_method,
            knn_candidates=self.knn_candidates,
            weight=self.weight,
            video_id=video_id,
        )
        for key, value in data.items():
            if key not in out:
                out[key] = value
        return out

    def __repr__(self) -> str:
        # every argument: dataset caches are keyed by a pre_transform's repr
        return (f"{self.__class__.__name__}(temporal_offsets={self.temporal_offsets}, "
                f"knn={self.knn}, knn_exclude_temporal={self.knn_exclude_temporal}, "
                f"knn_method={self.knn_method!r}, knn_candidates={self.knn_candidates}, "
                f"weight={self.weight!r})")
