r"""Neighbour-sampled mini-batches over proposal graphs (P-GCN training).

Videos' proposal graphs are joined into one disjoint union (node attribute
``video`` tells which video a node comes from); since no edge joins two
videos, a sampled neighbourhood never leaves its seed's video.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import torch
import torch_geometric.typing as pyg_typing
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.loader import NeighborLoader
from torch_geometric.sampler import BaseSampler, NeighborSampler

from tagraph.loader.neighbor_sampler import UniformNeighborSampler

__all__ = [
    "has_native_sampler",
    "make_neighbor_sampler",
    "collate_proposal_graphs",
    "proposal_neighbor_loader",
    "proposal_sample_types",
    "select_training_proposals",
    "PGCNTrainLoader",
    "FOREGROUND",
    "INCOMPLETE",
    "BACKGROUND",
]

FOREGROUND, INCOMPLETE, BACKGROUND, UNUSED = 0, 1, 2, -1
_NAMES = {FOREGROUND: "foreground", INCOMPLETE: "incomplete", BACKGROUND: "background"}


def has_native_sampler() -> bool:
    r"""Whether PyG's own neighbour sampler can run (``pyg-lib`` or ``torch-sparse``)."""
    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


def make_neighbor_sampler(
    data: Data,
    num_neighbors: Sequence[int],
    replace: bool = False,
    sampler: str = "auto",
) -> BaseSampler:
    r"""Returns PyG's native :class:`~torch_geometric.sampler.NeighborSampler`
    (:obj:`sampler="native"`), tagraph's :class:`UniformNeighborSampler`
    (:obj:`"tagraph"`), or the native one when available else tagraph's
    (:obj:`"auto"`)."""
    if sampler not in ("auto", "native", "tagraph"):
        raise ValueError(f"'sampler' must be 'auto', 'native' or 'tagraph', got {sampler!r}")
    if sampler == "auto":
        sampler = "native" if has_native_sampler() else "tagraph"
    if sampler == "native":
        if not has_native_sampler():
            raise ImportError("PyG's native neighbour sampler needs 'pyg-lib' or 'torch-sparse'")
        return NeighborSampler(data, num_neighbors=list(num_neighbors), replace=replace)
    return UniformNeighborSampler(data, num_neighbors=list(num_neighbors), replace=replace)


def collate_proposal_graphs(graphs: Sequence[Data]) -> Data:
    r"""Joins per-video graphs into one disjoint-union :class:`Data` holding
    only node- and edge-level tensors (what neighbour sampling can slice),
    plus a node attribute ``video`` (position of the node's graph in
    :obj:`graphs`). Per-video attributes (``video_id``, ``gt_segments``, ...)
    are dropped: keep :obj:`graphs` for them."""
    if len(graphs) == 0:
        raise ValueError("no graphs to collate")
    keys = [
        k for k in graphs[0].keys()
        if k not in ("batch", "ptr") and isinstance(graphs[0][k], Tensor)
        and (all(g.is_node_attr(k) for g in graphs) or all(g.is_edge_attr(k) for g in graphs))
    ]
    batch = Batch.from_data_list(list(graphs), exclude_keys=[
        k for k in graphs[0].keys() if k not in keys])
    out = Data(num_nodes=batch.num_nodes)
    for k in keys:
        out[k] = batch[k]
    out.video = batch.batch
    return out


def proposal_neighbor_loader(
    data_or_list: Data | Sequence[Data],
    num_neighbors: Sequence[int] = (4, 4),
    input_nodes: Tensor | None = None,
    *,
    batch_size: int = 1024,
    shuffle: bool = False,
    replace: bool = False,
    sampler: str | BaseSampler = "auto",
    **kwargs,
) -> NeighborLoader:
    r"""A :class:`torch_geometric.loader.NeighborLoader` over proposal
    graphs that works with or without ``pyg-lib`` / ``torch-sparse``.

    With :obj:`sampler="auto"`, PyG's native sampler is used when one of
    those is installed, else :class:`UniformNeighborSampler`; the batches
    look the same (seeds first, ``n_id``, ``e_id``, ``batch_size``).

    Args:
        data_or_list (Data or list of Data): One graph, or per-video graphs
            (joined with :func:`collate_proposal_graphs`).
        num_neighbors (list of int): Neighbours per hop. (default: :obj:`[4, 4]`)
        input_nodes (Tensor, optional): Seed node ids (or mask); all nodes when
            :obj:`None`.
        batch_size (int): Seeds per mini-batch. (default: :obj:`1024`)
        shuffle (bool): Shuffle seeds every epoch. (default: :obj:`False`)
        replace (bool): Sample with replacement. (default: :obj:`False`)
        sampler (str or BaseSampler): :obj:`"auto"`, :obj:`"native"`,
            :obj:`"tagraph"` or a sampler instance. (default: :obj:`"auto"`)
        **kwargs: Further :class:`~torch_geometric.loader.NeighborLoader` /
            :class:`torch.utils.data.DataLoader` arguments.
    """
    data = data_or_list if isinstance(data_or_list, Data) else collate_proposal_graphs(
        data_or_list)
    if not isinstance(sampler, BaseSampler):
        sampler = make_neighbor_sampler(data, num_neighbors, replace=replace, sampler=sampler)
    return NeighborLoader(
        data, num_neighbors=list(num_neighbors), input_nodes=input_nodes,
        batch_size=batch_size, shuffle=shuffle, replace=replace,
        neighbor_sampler=sampler, **kwargs,
    )


def proposal_sample_types(
    data: Data,
    fg_iou: float = 0.7,
    incomplete_iou: float = 0.3,
    incomplete_overlap: float = 0.01,
    bg_iou: float = 0.01,
) -> Tensor:
    r"""SSN / P-GCN training category of every proposal:
    foreground (:obj:`0`: tIoU > :obj:`fg_iou` with a ground truth, class
    :math:`> 0`), incomplete (:obj:`1`: tIoU < :obj:`incomplete_iou` and a
    fraction > :obj:`incomplete_overlap` of the proposal inside a ground
    truth, class > 0), background (:obj:`2`: tIoU < :obj:`bg_iou`), or unused
    (:obj:`-1`). Needs ``iou``, ``overlap_self`` and ``matched_label`` (class
    + 1 of the best-matching ground truth, 0 if none overlaps; ``y`` when the
    graph has no ``matched_label``) node attributes."""
    for key in ("iou", "overlap_self"):
        if key not in data:
            raise KeyError(f"proposal graph has no '{key}' attribute (needed to pick samples)")
    y = data.get("matched_label")
    if y is None:
        if "y" not in data:
            raise KeyError("proposal graph has neither 'matched_label' nor 'y'")
        y = data.y
    iou, ov = data.iou, data.overlap_self
    t = torch.full_like(y, UNUSED)
    t = torch.where((iou < bg_iou), BACKGROUND, t)
    t = torch.where((iou < incomplete_iou) & (ov > incomplete_overlap) & (y > 0), INCOMPLETE, t)
    t = torch.where((iou > fg_iou) & (y > 0), FOREGROUND, t)
    return t


def select_training_proposals(
    sample_type: Tensor,
    video: Tensor,
    ratio: Sequence[int] = (1, 6, 1),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, int]]:
    r"""Draws, for every video, :obj:`ratio[c]` proposals of each category
    (foreground, incomplete, background) uniformly without replacement (all
    of them when a video has fewer).

    Returns the selected node ids (grouped by video, then category) and, per
    category name, the number of videos that had none of it.
    """
    n = sample_type.numel()
    num_videos = int(video.max()) + 1 if n else 0
    ratio_t = torch.tensor(list(ratio), dtype=torch.long)
    used = (sample_type >= 0).nonzero().view(-1)
    cat = sample_type.index_select(0, used)
    vid = video.index_select(0, used)
    group = vid * 3 + cat
    key = torch.rand(used.numel(), generator=generator)
    perm = torch.sort(key).indices
    perm = perm.index_select(0, torch.sort(group.index_select(0, perm), stable=True).indices)
    g_sorted = group.index_select(0, perm)
    counts = torch.bincount(g_sorted, minlength=num_videos * 3)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(perm.numel()) - starts.index_select(0, g_sorted)
    keep = rank < ratio_t.index_select(0, g_sorted % 3)
    seeds = used.index_select(0, perm.index_select(0, keep.nonzero().view(-1)))
    missing = (counts.view(num_videos, 3) == 0).sum(0)
    return seeds, {_NAMES[c]: int(missing[c]) for c in range(3)}


class PGCNTrainLoader:
    r"""P-GCN training batches: every epoch draws ``1 : 6 : 1``
    foreground : incomplete : background proposals per video
    (:func:`select_training_proposals`) and samples their :obj:`num_neighbors`
    neighbourhoods with :func:`proposal_neighbor_loader` (GraphSAGE, N_s = 4,
    two hops, as the official code).

    Each batch is a :class:`~torch_geometric.data.Data` whose first
    ``batch_size`` nodes are the seeds; ``sample_type`` gives their category.
    A video with no proposal of a category is skipped for that category, and a
    warning says how many videos that was.

    Args:
        graphs (list of Data): Per-video proposal graphs (``x``, ``x_ext``,
            ``edge_index``, ``edge_weight``, ``y``, ``iou``, ``overlap_self``,
            ``reg_target``).
        num_neighbors (list of int): (default: :obj:`[4, 4]`)
        batch_size (int): Seeds per mini-batch. (default: :obj:`256`)
        ratio (tuple of int): Per-video fg / incomplete / bg counts.
            (default: :obj:`(1, 6, 1)`)
        fg_iou, incomplete_iou, incomplete_overlap, bg_iou (float): Category
            thresholds of :func:`proposal_sample_types`.
        sampler (str): :obj:`"auto"`, :obj:`"native"` or :obj:`"tagraph"`.
        epoch_multiplier (int): Independent seed draws per epoch (SSN's
            ``epoch_multiplier``: one draw is only 8 proposals per video).
            (default: :obj:`1`)
        generator (torch.Generator, optional): For the seed draw (default:
            global RNG).
    """

    def __init__(
        self,
        graphs: Sequence[Data],
        num_neighbors: Sequence[int] = (4, 4),
        *,
        batch_size: int = 256,
        ratio: Sequence[int] = (1, 6, 1),
        fg_iou: float = 0.7,
        incomplete_iou: float = 0.3,
        incomplete_overlap: float = 0.01,
        bg_iou: float = 0.01,
        sampler: str = "auto",
        epoch_multiplier: int = 1,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> None:
        n_empty = sum(1 for g in graphs if g.num_nodes == 0)
        if n_empty:
            warnings.warn(f"P-GCN training: {n_empty} of {len(graphs)} videos have no "
                          "proposals (skipped)", stacklevel=2)
        graphs = [g for g in graphs if g.num_nodes > 0]
        self.data = collate_proposal_graphs(graphs)
        self.data.sample_type = proposal_sample_types(
            self.data, fg_iou, incomplete_iou, incomplete_overlap, bg_iou)
        self.num_videos = len(graphs)
        self.num_neighbors = list(num_neighbors)
        self.batch_size = batch_size
        self.ratio = tuple(ratio)
        self.generator = generator
        self.epoch_multiplier = int(epoch_multiplier)
        self.kwargs = kwargs
        self.sampler = make_neighbor_sampler(self.data, self.num_neighbors, sampler=sampler)
        self.missing: dict[str, int] = {}
        self._expected = self._estimate_len()

    def _estimate_len(self) -> int:
        seeds, _ = select_training_proposals(
            self.data.sample_type, self.data.video, self.ratio, torch.Generator().manual_seed(0))
        return max(1, -(-seeds.numel() * self.epoch_multiplier // self.batch_size))

    def __len__(self) -> int:
        return self._expected

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(videos={self.num_videos}, "
            f"num_neighbors={self.num_neighbors}, batch_size={self.batch_size}, "
            f"ratio={self.ratio}, sampler={self.sampler.__class__.__name__})"
        )

    def __iter__(self) -> Iterator[Data]:
        draws = [select_training_proposals(
            self.data.sample_type, self.data.video, self.ratio, self.generator)
            for _ in range(self.epoch_multiplier)]
        seeds = torch.cat([d[0] for d in draws])
        missing = draws[0][1]
        self.missing = missing
        bad = {k: v for k, v in missing.items() if v}
        if bad:
            what = ", ".join(f"{v} without {k}" for k, v in bad.items())
            warnings.warn(
                f"P-GCN sample selection: of {self.num_videos} videos, {what} proposals "
                f"(skipped for that category)", stacklevel=2,
            )
        if seeds.numel() == 0:
            raise ValueError("no training proposals to sample (no fg/incomplete/bg proposal)")
        loader = proposal_neighbor_loader(
            self.data, self.num_neighbors, seeds, batch_size=self.batch_size, shuffle=True,
            sampler=self.sampler, **self.kwargs,
        )
        yield from loader
