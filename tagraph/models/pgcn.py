r"""P-GCN: proposal graph convolutional network (Zeng et al., ICCV 2019) and
the ablation baselines of its Tables 3-5."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from tagraph.nn.losses import class_wise_smooth_l1_loss, completeness_hinge_loss
from tagraph.nn.pgcn_conv import PGCNConv
from tagraph.ops import batched_nms

__all__ = [
    "PGCN",
    "PGCNBranch",
    "regression_stats",
    "decode_regression",
    "detections_from_scores",
    "fuse_streams",
]

BRANCH_TYPES = ("gcn", "mlp", "mean_pool", "gcn_root")
EDGE_WEIGHTS = ("cos", "embed_cos", "none")
# Training categories (see tagraph.loader.proposal_sample_types).
_FG, _INC, _BG = 0, 1, 2


def _relu_cos(a: Tensor, b: Tensor, edge_index: Tensor) -> Tensor:
    src = F.normalize(a.index_select(0, edge_index[0]), dim=-1)
    dst = F.normalize(b.index_select(0, edge_index[1]), dim=-1)
    return F.relu((src * dst).sum(-1))


def _edges_into(edge_index: Tensor, edge_weight: Tensor | None, m: int,
                n: int) -> tuple[Tensor, Tensor | None]:
    # the edges whose target is one of the first m of n nodes
    if m >= n:
        return edge_index, edge_weight
    keep = (edge_index[1] < m).nonzero().view(-1)
    w = None if edge_weight is None else edge_weight.index_select(0, keep)
    return edge_index.index_select(1, keep), w


class PGCNBranch(nn.Module):
    r"""One P-GCN branch: two layers :math:`F \to H \to F` with ReLU and
    dropout in between.

    * :obj:`"gcn"`: two :class:`~tagraph.nn.PGCNConv` layers (the paper),
    * :obj:`"mlp"`: two linear layers, no graph (Tables 3-4, "MLP"),
    * :obj:`"mean_pool"`: the MLP, then an unweighted mean over each node
      and its graph neighbours (Tables 3-4, "MP"),
    * :obj:`"gcn_root"`: two :class:`~tagraph.nn.PGCNConv` layers with
      :obj:`root_weight=True` (own map for the node itself; not in the paper).
    """

    def __init__(self, kind: str, channels: int, hidden_channels: int, dropout: float) -> None:
        super().__init__()
        if kind not in BRANCH_TYPES:
            raise ValueError(f"branch type must be one of {BRANCH_TYPES}, got {kind!r}")
        self.kind = kind
        self.dropout = dropout
        if kind in ("gcn", "gcn_root"):
            root = kind == "gcn_root"
            self.lin1: nn.Module = PGCNConv(channels, hidden_channels, root_weight=root)
            self.lin2: nn.Module = PGCNConv(hidden_channels, channels, root_weight=root)
        else:
            self.lin1 = nn.Linear(channels, hidden_channels)
            self.lin2 = nn.Linear(hidden_channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None,
                num_sampled_nodes: Sequence[int] | None = None) -> Tensor:
        r"""Branch output for every node or, with :obj:`num_sampled_nodes`
        (PyG's per-hop node counts of a neighbour-sampled batch, seeds first),
        only for the seeds: each layer then runs on just the nodes the next
        one reads (the seeds and their 1-hop neighbours, then the seeds),
        giving the same values with far less work."""
        n = x.size(0)
        if num_sampled_nodes is None:
            m1 = m2 = n
        else:
            m2 = int(num_sampled_nodes[0])
            m1 = n if len(num_sampled_nodes) < 2 else min(n, int(sum(num_sampled_nodes[:2])))
        if self.kind in ("gcn", "gcn_root"):
            ei1, w1 = _edges_into(edge_index, edge_weight, m1, n)
            x1 = x if m1 == n else (x, x[:m1])
            h = F.relu(self.lin1(x1, ei1, w1, size=(n, m1)))
            h = F.dropout(h, self.dropout, self.training)
            ei2, w2 = _edges_into(ei1, w1, m2, m1)
            return self.lin2(h if m2 == m1 else (h, h[:m2]), ei2, w2, size=(m1, m2))
        if self.kind == "mlp":
            h = F.dropout(F.relu(self.lin1(x[:m2])), self.dropout, self.training)
            return self.lin2(h)
        ei2, _ = _edges_into(edge_index, None, m2, n)
        h = F.dropout(F.relu(self.lin1(x[:m1])), self.dropout, self.training)
        h = self.lin2(h)
        # mean_pool: the node and its graph (1-hop) neighbours, unweighted
        agg = scatter(h.index_select(0, ei2[0]), ei2[1], 0, dim_size=m2, reduce="sum")
        deg = torch.bincount(ei2[1], minlength=m2).to(h.dtype)
        return (agg + h[:m2]) / (deg + 1).unsqueeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.kind!r})"


class PGCN(nn.Module):
    r"""P-GCN from the `"Graph Convolutional Networks for Temporal Action
    Localization" <https://arxiv.org/abs/1909.03252>`_ paper.

    Two branches run on the same proposal graph: GCN\ :sub:`1` on the
    proposal features :obj:`x` (:math:`D \to H \to D`) feeds the activity
    classifier, GCN\ :sub:`2` on the extended features :obj:`x_ext`
    (start context, body, end context, :math:`3D \to H \to 3D`) feeds the
    completeness classifier and the class-wise boundary regressor. Each
    branch's output is concatenated with its input (Eq. 5):

    .. math::
        \mathbf{a} = \mathrm{FC}_{act}([\mathbf{x}, \mathrm{GCN}_1(\mathbf{x})]),\quad
        [\mathbf{c}, \mathbf{r}] = \mathrm{FC}_{comp,reg}([\mathbf{x}^{ext},
        \mathrm{GCN}_2(\mathbf{x}^{ext})])

    and a proposal's score for class :math:`k` is
    :math:`\mathrm{softmax}(\mathbf{a})_{k+1} \cdot \exp(c_k)`.

    The loss is cross-entropy on foreground and background samples, plus
    :obj:`comp_weight` times the completeness hinge loss with OHEM on
    foreground and incomplete samples, plus :obj:`reg_weight` times the
    class-wise smooth-L1 regression loss on foreground samples, whose targets
    (centre offset / length, log length ratio) are z-scored with training-set
    statistics (:meth:`set_regression_stats`).

    Args:
        in_channels (int): Proposal feature size :math:`D`.
        num_classes (int): Number of action classes :math:`K` (without
            background).
        hidden_channels (int, optional): Hidden size :math:`H`.
            (default: :obj:`512`)
        ext_channels (int, optional): Size of :obj:`x_ext`.
            (default: :obj:`3 * in_channels`)
        act_branch (str, optional): :obj:`"gcn"`, :obj:`"mlp"`,
            :obj:`"mean_pool"` or :obj:`"gcn_root"` for branch 1.
            (default: :obj:`"gcn"`)
        comp_branch (str, optional): The same for branch 2.
            (default: :obj:`"gcn"`)
        edge_weight (str, optional): :obj:`"cos"` (the graph's
            ``edge_weight``, else ReLU-cosine of :obj:`x` per edge),
            :obj:`"embed_cos"` (ReLU-cosine of learned embeddings of
            :obj:`x`, Table 5) or :obj:`"none"` (plain mean).
            (default: :obj:`"cos"`)
        dropout (float, optional): Dropout on the heads' input.
            (default: :obj:`0.8`)
        gcn_dropout (float, optional): Dropout inside the branches.
            (default: :obj:`0.5`)
        comp_weight (float, optional): Completeness loss weight.
            (default: :obj:`0.5`)
        reg_weight (float, optional): Regression loss weight.
            (default: :obj:`0.5`)
        ohem_ratio (float, optional): Fraction of incomplete samples kept by
            OHEM. (default: :obj:`1/6`)
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int = 512,
        *,
        ext_channels: int | None = None,
        act_branch: str = "gcn",
        comp_branch: str = "gcn",
        edge_weight: str = "cos",
        dropout: float = 0.8,
        gcn_dropout: float = 0.5,
        comp_weight: float = 0.5,
        reg_weight: float = 0.5,
        ohem_ratio: float = 1.0 / 6.0,
    ) -> None:
        super().__init__()
        if edge_weight not in EDGE_WEIGHTS:
            raise ValueError(f"edge_weight must be one of {EDGE_WEIGHTS}, got {edge_weight!r}")
        ext_channels = 3 * in_channels if ext_channels is None else ext_channels
        self.in_channels = in_channels
        self.ext_channels = ext_channels
        self.num_classes = num_classes
        self.hidden_channels = hidden_channels
        self.edge_weight_kind = edge_weight
        self.dropout = dropout
        self.comp_weight = comp_weight
        self.reg_weight = reg_weight
        self.ohem_ratio = ohem_ratio
        self.config: dict[str, Any] = dict(
            model="PGCN", in_channels=in_channels, num_classes=num_classes,
            hidden_channels=hidden_channels, ext_channels=ext_channels, act_branch=act_branch,
            comp_branch=comp_branch, edge_weight=edge_weight, dropout=dropout,
            gcn_dropout=gcn_dropout, comp_weight=comp_weight, reg_weight=reg_weight,
            ohem_ratio=ohem_ratio,
        )
        self.act_branch = PGCNBranch(act_branch, in_channels, hidden_channels, gcn_dropout)
        self.comp_branch = PGCNBranch(comp_branch, ext_channels, hidden_channels, gcn_dropout)
        if edge_weight == "embed_cos":
            self.theta = nn.Linear(in_channels, hidden_channels)
            self.phi = nn.Linear(in_channels, hidden_channels)
        self.activity = nn.Linear(2 * in_channels, num_classes + 1)
        self.completeness = nn.Linear(2 * ext_channels, num_classes)
        self.regressor = nn.Linear(2 * ext_channels, 2 * num_classes)
        self.register_buffer("reg_mean", torch.zeros(2))
        self.register_buffer("reg_std", torch.ones(2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.act_branch.reset_parameters()
        self.comp_branch.reset_parameters()
        for lin in (self.activity, self.completeness, self.regressor):
            nn.init.normal_(lin.weight, std=0.001)
            nn.init.zeros_(lin.bias)
        if self.edge_weight_kind == "embed_cos":
            self.theta.reset_parameters()
            self.phi.reset_parameters()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{self.__class__.__name__}({self.in_channels}, num_classes={self.num_classes}, "
            f"branches=({c['act_branch']!r}, {c['comp_branch']!r}), "
            f"edge_weight={self.edge_weight_kind!r})"
        )

    def set_regression_stats(self, mean: Tensor, std: Tensor) -> None:
        r"""Sets the z-scoring statistics of the regression targets."""
        self.reg_mean.copy_(torch.as_tensor(mean, dtype=torch.float))
        self.reg_std.copy_(torch.as_tensor(std, dtype=torch.float).clamp(min=1e-6))

    # ------------------------------------------------------------------ model
    def edge_weights(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None):
        if self.edge_weight_kind == "none":
            return None
        if self.edge_weight_kind == "embed_cos":
            return _relu_cos(self.theta(x), self.phi(x), edge_index)
        return edge_weight if edge_weight is not None else _relu_cos(x, x, edge_index)

    def forward(
        self,
        x: Tensor,
        x_ext: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        num_sampled_nodes: Sequence[int] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        r"""Returns activity logits :obj:`[N, K+1]`, completeness logits
        :obj:`[N, K]` and (z-scored) regression :obj:`[N, K, 2]`. With
        :obj:`num_sampled_nodes` (the per-hop node counts of a
        :class:`~torch_geometric.loader.NeighborLoader` batch, seeds first;
        a one-element list means "the first so many nodes"), only the seeds'
        outputs are returned, computed from no more nodes than they need."""
        w = self.edge_weights(x, edge_index, edge_weight)
        m = x.size(0) if num_sampled_nodes is None else int(num_sampled_nodes[0])
        act = torch.cat([x[:m], self.act_branch(x, edge_index, w, num_sampled_nodes)], dim=-1)
        comp = torch.cat([x_ext[:m], self.comp_branch(x_ext, edge_index, w, num_sampled_nodes)],
                         dim=-1)
        act = F.dropout(act, self.dropout, self.training)
        comp = F.dropout(comp, self.dropout, self.training)
        reg = self.regressor(comp).view(-1, self.num_classes, 2)
        return self.activity(act), self.completeness(comp), reg

    def _forward_data(self, data: Data, num_sampled_nodes: Sequence[int] | None = None
                      ) -> tuple[Tensor, Tensor, Tensor]:
        return self(data.x, data.x_ext, data.edge_index, data.get("edge_weight"),
                    num_sampled_nodes)

    # --------------------------------------------------------------- training
    def loss(
        self,
        act: Tensor,
        comp: Tensor,
        reg: Tensor,
        sample_type: Tensor,
        y: Tensor,
        reg_target: Tensor,
    ) -> tuple[Tensor, dict[str, float]]:
        r"""The P-GCN loss over samples of category :obj:`sample_type`
        (0 foreground, 1 incomplete, 2 background, -1 ignored); :obj:`y` is
        the class + 1 of each sample's best-matching ground truth (background
        samples are trained towards class 0 whatever it holds)."""
        is_fg = sample_type == _FG
        cls_mask = is_fg | (sample_type == _BG)
        cls_idx = cls_mask.nonzero().view(-1)
        cls_target = torch.where(is_fg, y, torch.zeros_like(y)).index_select(0, cls_idx)
        cls_logits = act.index_select(0, cls_idx)
        ce = F.cross_entropy(cls_logits, cls_target) if cls_idx.numel() else act.sum() * 0.0
        comp_idx = (is_fg | (sample_type == _INC)).nonzero().view(-1)
        comp_loss = completeness_hinge_loss(
            comp.index_select(0, comp_idx), (y.index_select(0, comp_idx) - 1).clamp(min=0),
            is_fg.index_select(0, comp_idx), self.ohem_ratio,
        )
        fg_idx = is_fg.nonzero().view(-1)
        target = (reg_target.index_select(0, fg_idx) - self.reg_mean) / self.reg_std
        reg_loss = class_wise_smooth_l1_loss(
            reg.index_select(0, fg_idx), target, y.index_select(0, fg_idx) - 1)
        loss = ce + self.comp_weight * comp_loss + self.reg_weight * reg_loss
        with torch.no_grad():
            acc = (cls_logits.argmax(-1) == cls_target).float().mean() if cls_idx.numel() else 0.0
        logs = {"ce": float(ce.detach()), "comp": float(comp_loss.detach()),
                "reg": float(reg_loss.detach()), "acc": float(acc)}
        return loss, logs

    def training_step(self, batch: Data) -> tuple[Tensor, dict[str, float]]:
        r"""Loss on a mini-batch: a neighbour-sampled subgraph (its first
        ``batch_size`` nodes are the samples) or whole graphs (every node with
        ``sample_type >= 0`` is a sample). Class labels come from
        ``matched_label`` (else ``y``)."""
        if "sample_type" not in batch:
            raise KeyError(
                "batch has no 'sample_type' (use tagraph.loader.PGCNTrainLoader or "
                "tagraph.loader.proposal_sample_types)"
            )
        n = batch.get("batch_size") or batch.num_nodes
        hops = batch.get("num_sampled_nodes")
        if hops is None or int(hops[0]) != n:
            hops = [n]
        act, comp, reg = self._forward_data(batch, [int(h) for h in hops])
        label = batch.get("matched_label")
        label = batch.y if label is None else label
        return self.loss(act[:n], comp[:n], reg[:n], batch.sample_type[:n], label[:n],
                         batch.reg_target[:n])

    @torch.no_grad()
    def validation_step(self, batch: Data) -> dict[str, float]:
        loss, logs = self.training_step(batch)
        return {"loss": float(loss), **logs}

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def scores(self, data: Data) -> tuple[Tensor, Tensor]:
        r"""Full-graph (deterministic) scores :obj:`[N, K]` =
        softmax(activity)[1:] * exp(completeness) and regression :obj:`[N, K, 2]`
        in target units (z-scoring undone)."""
        act, comp, reg = self._forward_data(data)
        score = F.softmax(act, dim=-1)[:, 1:] * torch.exp(comp)
        return score, reg * self.reg_std + self.reg_mean

    @torch.no_grad()
    def predict(
        self,
        data: Data,
        *,
        top_k: int = 2000,
        nms_threshold: float = 0.3,
        max_per_video: int = 200,
        regression: bool = True,
        scores: tuple[Tensor, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        r"""Detections of a batch of whole videos (full graphs, no sampling).

        Per video, the :obj:`top_k` (proposal, class) pairs by score are
        kept, their boundaries regressed, per-class NMS applied, and at most
        :obj:`max_per_video` detections returned.

        Args:
            data (Data or Batch): Proposal graphs with ``segments`` and, for
                several videos, the ``batch`` vector.
            scores (tuple, optional): Precomputed :meth:`scores` output (e.g.
                fused two-stream scores, see :func:`fuse_streams`).

        Returns:
            dict with ``video`` (index of the graph in the batch), ``label``
            (class index in :obj:`[0, K)`), ``score``, ``start``, ``end``
            (seconds), sorted by video then descending score.
        """
        was_training = self.training
        self.eval()
        score, reg = self.scores(data) if scores is None else scores
        self.train(was_training)
        return detections_from_scores(
            score, reg, data.segments, data.get("batch"), top_k=top_k,
            nms_threshold=nms_threshold, max_per_video=max_per_video, regression=regression,
            duration=data.get("duration"),
        )


def decode_regression(segments: Tensor, offsets: Tensor) -> Tensor:
    r"""Applies (centre offset / length, log length ratio) offsets
    :obj:`[N, 2]` to segments :obj:`[N, 2]`."""
    length = segments[:, 1] - segments[:, 0]
    centre = 0.5 * (segments[:, 0] + segments[:, 1]) + offsets[:, 0] * length
    new_len = length * torch.exp(offsets[:, 1].clamp(max=10.0))
    return torch.stack([centre - 0.5 * new_len, centre + 0.5 * new_len], dim=-1)


def _rank_in_group(group: Tensor, score: Tensor) -> tuple[Tensor, Tensor]:
    # Order by group, then descending score (stable -> deterministic ties).
    order = torch.sort(score, descending=True, stable=True).indices
    order = order.index_select(0, torch.sort(group.index_select(0, order), stable=True).indices)
    g = group.index_select(0, order)
    counts = torch.bincount(g)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel(), device=score.device) - starts.index_select(0, g)
    return order, rank


def detections_from_scores(
    score: Tensor,
    reg: Tensor,
    segments: Tensor,
    batch: Tensor | None = None,
    *,
    top_k: int = 2000,
    nms_threshold: float = 0.3,
    max_per_video: int = 200,
    regression: bool = True,
    duration: Tensor | None = None,
    nms_chunk: int = 4096,
) -> dict[str, Tensor]:
    r"""Vectorised post-processing over all videos of a batch: top-k
    (proposal, class) pairs per video, regression, per-(video, class) NMS,
    at most :obj:`max_per_video` per video."""
    n, k = score.shape
    device = score.device
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
    node = torch.arange(n, device=device).repeat_interleave(k)
    label = torch.arange(k, device=device).repeat(n)
    flat = score.reshape(-1)
    video = batch.index_select(0, node)
    order, rank = _rank_in_group(video, flat)
    keep = order.index_select(0, (rank < top_k).nonzero().view(-1))
    node, label, flat, video = (t.index_select(0, keep) for t in (node, label, flat, video))
    seg = segments.index_select(0, node)
    if regression:
        off = reg.reshape(n * k, 2).index_select(0, node * k + label)
        seg = decode_regression(seg, off)
    lo = torch.zeros_like(seg[:, 0])
    seg = torch.stack([torch.maximum(seg[:, 0], lo), seg[:, 1]], dim=-1)
    if duration is not None:
        dur = torch.as_tensor(duration, dtype=seg.dtype, device=device).reshape(-1)
        d = dur.index_select(0, video)
        seg = torch.minimum(seg, d.unsqueeze(-1))
    valid = (seg[:, 1] > seg[:, 0]).nonzero().view(-1)
    node, label, flat, video, seg = (t.index_select(0, valid)
                                     for t in (node, label, flat, video, seg))
    # tagraph.ops.nms materialises an [n, n] IoU matrix, so run batched NMS on
    # chunks of whole videos of at most ~nms_chunk candidates (a handful of
    # calls per batch, not one per video). Groups never span videos, so the
    # result is exactly that of one call on everything.
    counts = torch.bincount(video)
    ends = torch.cumsum(counts, 0)
    chunk_of_video = torch.div(ends - counts, nms_chunk, rounding_mode="floor")
    chunk = chunk_of_video.index_select(0, video)
    kept_parts = []
    bounds = torch.cumsum(torch.bincount(chunk), 0).tolist()  # candidates sorted by video
    lo = 0
    for hi in bounds:
        if hi > lo:
            part, _ = batched_nms(seg[lo:hi], flat[lo:hi], video[lo:hi] * k + label[lo:hi],
                                  nms_threshold)
            kept_parts.append(part + lo)
        lo = hi
    kept = torch.cat(kept_parts) if kept_parts else video.new_empty(0)
    label, flat, video, seg = (t.index_select(0, kept) for t in (label, flat, video, seg))
    order, rank = _rank_in_group(video, flat) if video.numel() else (video, video)
    sel = order.index_select(0, (rank < max_per_video).nonzero().view(-1))
    return {
        "video": video.index_select(0, sel),
        "label": label.index_select(0, sel),
        "score": flat.index_select(0, sel),
        "start": seg[:, 0].index_select(0, sel),
        "end": seg[:, 1].index_select(0, sel),
    }


def fuse_streams(
    rgb: tuple[Tensor, Tensor], flow: tuple[Tensor, Tensor], weights: tuple[float, float] = (2, 3)
) -> tuple[Tensor, Tensor]:
    r"""Late fusion of two streams' :meth:`PGCN.scores` outputs: weighted
    mean of the scores (paper: RGB : Flow = 2 : 3) and of the regression."""
    a, b = float(weights[0]), float(weights[1])
    s = (a * rgb[0] + b * flow[0]) / (a + b)
    r = (a * rgb[1] + b * flow[1]) / (a + b)
    return s, r


def regression_stats(reg_target: Tensor, iou: Tensor, fg_iou: float = 0.7) -> tuple[Tensor,
                                                                                      Tensor]:
    r"""Mean and std :obj:`[2]` of the regression targets of foreground
    proposals (tIoU > :obj:`fg_iou`), to z-score the targets."""
    t = reg_target.index_select(0, (iou > fg_iou).nonzero().view(-1))
    if t.size(0) < 2:
        return torch.zeros(2), torch.ones(2)
    return t.mean(0), t.std(0).clamp(min=1e-6)
