r"""BackTAL: background-click supervised temporal action localization."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tagraph.models._snippet_batch import (
    SnippetBatch,
    batched_clicks,
    labels_of,
    snippet_batch,
)
from tagraph.models._snippet_batch import scalar as _f
from tagraph.models.ecm import minmax_normalize
from tagraph.models.wtal import WeaklySupervisedTAL, wtal_detection_config
from tagraph.nn.affinity_conv import AffinityConv
from tagraph.nn.click_losses import (
    affinity_embedding_loss,
    click_ce_loss,
    foreground_sparsity_loss,
    score_separation_loss,
)
from tagraph.nn.mil import check_finite_cas, normalized_ce_loss, topk_mean_pool
from tagraph.nn.temporal_conv import TemporalConv
from tagraph.ops.cas import (
    CASDetectionConfig,
    CASDetections,
    cas_to_detections,
    grouped_nms,
    threshold_range,
)
from tagraph.ops.sort import unique_rows

__all__ = ["BackTAL", "BackTALOutput", "backtal_detection_config"]



class BackTALOutput(NamedTuple):
    cas_base: Tensor  #: [N, C + 1] logits of the base branch
    cas_supp: Tensor  #: [N, C + 1] logits of the suppressed branch
    video_base: Tensor  #: [B, C + 1] top-k mean of cas_base
    video_supp: Tensor  #: [B, C + 1] top-k mean of cas_supp
    embedding: Tensor  #: [N, E] L2-normalised embeddings
    fg_weight: Tensor  #: [N] foreground weights of the filter module
    feat_supp: Tensor  #: [N, H] first-layer features of the suppressed branch


def backtal_detection_config(paper: bool = False) -> CASDetectionConfig:
    r"""BackTAL's inference settings. By default the shared scale-free ones
    (:func:`~tagraph.models.wtal_detection_config`) with classes of at least
    half the best video score, chosen on validation
    (``benchmarks/results/wtal_detection_selection.md``). With :obj:`paper`,
    the paper's THUMOS14 ones: classes with softmax video score
    :math:`\geq 0.25`, CAS thresholds :math:`0{:}0.025{:}0.25` (the first one
    strictly above 0, as the official :obj:`cas > 0`), :math:`\lambda = 0.25`,
    :math:`\gamma = 0.2`, hard NMS at tIoU 0.55; plus the best class of every
    video (without it, videos whose softmax mass sits on the background
    column got no detection at all: 48 of 60 positive test videos on unseen
    I3D-like features)."""
    if not paper:
        return wtal_detection_config(class_threshold=0.5)
    thresholds = (1e-6, *threshold_range(0.025, 0.25, 0.025))
    return CASDetectionConfig(class_threshold=0.25, top1_fallback=True, thresholds=thresholds,
                              outer_lambda=0.25, gamma=0.2, nms_method="hard",
                              iou_threshold=0.55)


class BackTAL(WeaklySupervisedTAL):
    r"""BackTAL from the `"Background-Click Supervision for Temporal Action
    Localization" <https://arxiv.org/abs/2111.12449>`_ paper (Yang, Han, Zhang
    et al., TPAMI), on snippet graphs.

    * Filter module: :math:`a_t = \mathrm{sigmoid}(\mathrm{MLP}(\mathbf{x}_t))`
      (:math:`D \rightarrow 512`, LeakyReLU, :math:`\rightarrow 1`).
    * Embedding module: two temporal convolutions
      (:class:`~tagraph.nn.TemporalConv`, kernel 3) :math:`D \rightarrow 512
      \rightarrow 32`, L2-normalised :math:`\mathbf{e}_t`.
    * Base module: two :class:`~tagraph.nn.AffinityConv` layers (no bias) with
      LeakyReLU, dropout, and a classifier to :math:`C + 1` classes (the last
      is background); the base branch sees :math:`\mathbf{x}`, the
      suppressed branch :math:`a \odot \mathbf{x}`, with shared weights.
      Video scores are top-:math:`k` means, :math:`k = \max(1, \lfloor T / 8
      \rfloor)` per video.

    Loss (:meth:`training_step`):

    .. math::
        \mathcal{L} = \mathrm{CE}(v^{base}, [y, 1]) + \mathrm{CE}(v^{supp}, [y, 0])
        + \alpha \|a\|_1 + \mathcal{L}_{click} + \beta \mathcal{L}_{sep}
        + \eta \mathcal{L}_{emb}

    (normalised video cross-entropies, sparsity, frame-level CE at the clicked
    snippets, score separation between the video score and the background
    clicks, affinity embedding loss; see :mod:`tagraph.nn.click_losses`).
    With :obj:`use_clicks=False` the click terms are dropped: the same network
    trained from video labels alone.

    Inference (:meth:`predict`, the shared
    :class:`~tagraph.models.WeaklySupervisedTAL` machinery) uses the suppressed
    branch: softmax video scores, per-video min-max normalised CAS, and
    (THUMOS14) extra candidates from the min-max normalised feature magnitude
    of the first suppressed layer, all merged by one NMS
    (:func:`backtal_detection_config`). Videos without any label are skipped
    in the video-level losses (counted, with a warning).

    Args:
        in_channels (int, optional): Feature size :math:`D`. (default: :obj:`2048`)
        num_classes (int, optional): Action classes :math:`C`. (default: :obj:`20`)
        hidden_channels (int, optional): Base module width. (default: :obj:`2048`)
        filter_channels (int, optional): Filter module width. (default: :obj:`512`)
        embed_hidden (int, optional): Embedding module width. (default: :obj:`512`)
        embed_channels (int, optional): Embedding size. (default: :obj:`32`)
        dropout (float, optional): Dropout of the base module. (default: :obj:`0.7`)
        topk_ratio (int, optional): :math:`T / k`. (default: :obj:`8`)
        temporal_offsets (tuple[int, ...], optional): The graphs' temporal edge
            offsets (edge type order). (default: :obj:`(-1, 1)`)
        use_clicks (bool, optional): Train with the click losses. (default: :obj:`True`)
        sparsity_weight (float, optional): :math:`\alpha`. (default: :obj:`1e-4`)
        separation_weight (float, optional): :math:`\beta` (1 on THUMOS14, 0.1 on
            ActivityNet). (default: :obj:`1.0`)
        embedding_weight (float, optional): :math:`\eta`. (default: :obj:`0.8`)
        sim_min (float, optional): Same-set similarity floor. (default: :obj:`0.5`)
        diff_max (float, optional): Cross-set similarity ceiling. (default: :obj:`0.1`)
        detection_config (CASDetectionConfig, optional): Inference settings.
            (default: :func:`backtal_detection_config`)
        magnitude_thresholds (tuple[float, ...], optional): Feature-magnitude
            thresholds (empty to disable). (default: :obj:`0.3:0.075:0.8`)
    """

    def __init__(
        self,
        in_channels: int = 2048,
        num_classes: int = 20,
        hidden_channels: int = 2048,
        filter_channels: int = 512,
        embed_hidden: int = 512,
        embed_channels: int = 32,
        dropout: float = 0.7,
        topk_ratio: int = 8,
        temporal_offsets: tuple[int, ...] = (-1, 1),
        use_clicks: bool = True,
        sparsity_weight: float = 1e-4,
        separation_weight: float = 1.0,
        embedding_weight: float = 0.8,
        sim_min: float = 0.5,
        diff_max: float = 0.1,
        detection_config: CASDetectionConfig | None = None,
        magnitude_thresholds: tuple[float, ...] = threshold_range(0.3, 0.8, 0.075),
        input_norm: str = "center_scale",
    ) -> None:
        super().__init__(detection_config if detection_config is not None
                         else backtal_detection_config(),
                         in_channels=in_channels, input_norm=input_norm)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.hidden_channels = hidden_channels
        self.topk_ratio = topk_ratio
        self.temporal_offsets = tuple(temporal_offsets)
        self.use_clicks = use_clicks
        self.sparsity_weight = sparsity_weight
        self.separation_weight = separation_weight
        self.embedding_weight = embedding_weight
        self.sim_min = sim_min
        self.diff_max = diff_max
        self.magnitude_thresholds = tuple(magnitude_thresholds)
        offsets = (*self.temporal_offsets, 0)
        self.filter = nn.Sequential(nn.Linear(in_channels, filter_channels), nn.LeakyReLU(),
                                    nn.Linear(filter_channels, 1))
        self.embed1 = TemporalConv(in_channels, embed_hidden, self.temporal_offsets)
        self.embed2 = TemporalConv(embed_hidden, embed_channels, self.temporal_offsets)
        self.conv1 = AffinityConv(in_channels, hidden_channels, offsets, bias=False)
        self.conv2 = AffinityConv(hidden_channels, hidden_channels, offsets, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_channels, num_classes + 1, bias=False)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    # ------------------------------------------------------------------ forward
    def _base(self, x: Tensor, e: Tensor, sb: SnippetBatch) -> tuple[Tensor, Tensor]:
        h1 = F.leaky_relu(self.conv1(x, e, sb.edge_index, sb.edge_type))
        h2 = F.leaky_relu(self.conv2(h1, e, sb.edge_index, sb.edge_type))
        return h1, self.classifier(self.dropout(h2))

    def forward(self, data: Any) -> BackTALOutput:
        sb = snippet_batch(data, self.temporal_offsets, self.input_norm)
        return self._forward(sb)

    def _forward(self, sb: SnippetBatch) -> BackTALOutput:
        x = sb.x
        fg = torch.sigmoid(self.filter(x)).squeeze(-1)
        e = F.leaky_relu(self.embed1(x, sb.edge_index, sb.edge_type))
        e = F.normalize(self.embed2(e, sb.edge_index, sb.edge_type), dim=-1)
        _, cas_base = self._base(x, e, sb)
        h1_supp, cas_supp = self._base(fg.unsqueeze(-1) * x, e, sb)
        video_base = topk_mean_pool(cas_base, sb.batch, self.topk_ratio,
                                    num_graphs=sb.num_graphs)
        video_supp = topk_mean_pool(cas_supp, sb.batch, self.topk_ratio,
                                    num_graphs=sb.num_graphs)
        return BackTALOutput(cas_base, cas_supp, video_base, video_supp, e, fg, h1_supp)

    # ----------------------------------------------------------------- training
    def compute_loss(self, data: Any) -> tuple[Tensor, dict[str, float]]:
        self.check_batch(data)
        keep = self.labeled(data)
        sb = snippet_batch(data, self.temporal_offsets, self.input_norm)
        out = self._forward(sb)
        y = labels_of(data, sb.num_graphs, self.num_classes).to(out.cas_base.dtype)
        y = y * keep.unsqueeze(-1).to(y.dtype)  # unlabeled videos: no class terms
        ones = y.new_ones(y.size(0), 1)
        if bool(keep.any()):
            loss_base = normalized_ce_loss(out.video_base[keep], torch.cat([y, ones], 1)[keep])
            loss_supp = normalized_ce_loss(out.video_supp[keep],
                                           torch.cat([y, 0 * ones], 1)[keep])
        else:
            loss_base = loss_supp = out.cas_base.sum() * 0.0
        loss_norm = foreground_sparsity_loss(out.fg_weight, sb.batch, sb.num_graphs)
        loss = loss_base + loss_supp + self.sparsity_weight * loss_norm
        logs = {"loss_base": _f(loss_base), "loss_supp": _f(loss_supp),
                "loss_norm": _f(loss_norm)}
        if self.use_clicks:
            clicks = batched_clicks(data, sb)
            is_bg = clicks.labels == self.num_classes
            bg_index, bg_batch = clicks.index[is_bg], clicks.batch[is_bg]
            bg_mask = torch.zeros(sb.x.size(0), dtype=torch.bool, device=sb.x.device)
            bg_mask[bg_index] = True
            loss_click = click_ce_loss(out.cas_base, clicks.index, clicks.labels)
            loss_sep = score_separation_loss(out.cas_base, out.video_base, y, bg_index, bg_batch)
            loss_emb = affinity_embedding_loss(
                out.embedding, out.cas_supp, y, sb.batch, bg_mask, self.topk_ratio,
                self.sim_min, self.diff_max, sb.num_graphs)
            loss = (loss + loss_click + self.separation_weight * loss_sep
                    + self.embedding_weight * loss_emb)
            logs.update(loss_click=_f(loss_click), loss_sep=_f(loss_sep),
                        loss_emb=_f(loss_emb))
        return loss, logs

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        return self.compute_loss(batch)

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, float]:
        loss, logs = self.compute_loss(batch)
        return {"loss": _f(loss), **logs}

    # ---------------------------------------------------------------- inference
    def _suppressed(self, batch: Any) -> tuple[Tensor, Tensor, Tensor, SnippetBatch]:
        sb = snippet_batch(batch, self.temporal_offsets, self.input_norm)
        out = self._forward(sb)
        c = self.num_classes
        video = F.softmax(out.video_supp, dim=-1)[:, :c]
        cas = minmax_normalize(out.cas_supp[:, :c], sb.batch, sb.num_graphs)
        mag = minmax_normalize(out.feat_supp.norm(dim=-1, keepdim=True), sb.batch,
                               sb.num_graphs).clamp(0.0, 1.0)
        return cas, video, mag, sb

    def localization_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        r"""Min-max normalised suppressed CAS :obj:`[N, C]` and softmax video
        scores :obj:`[B, C]` of the suppressed branch."""
        cas, video, _, _ = self._suppressed(batch)
        return cas, video, None

    @torch.no_grad()
    def predict(self, batch: Any) -> CASDetections:
        r"""Detections of a snippet graph or batch (times in seconds; needs
        :obj:`pos`, uses :obj:`duration` when present): candidates from the CAS
        thresholds and from the feature-magnitude thresholds, merged by one NMS
        per (video, class)."""
        if not self.magnitude_thresholds:
            return super().predict(batch)
        was_training = self.training
        self.eval()
        try:
            self.check_batch(batch)
            cas, video, mag, sb = self._suppressed(batch)
        finally:
            self.train(was_training)
        check_finite_cas(cas, sb.batch, sb.video_ids)
        duration = getattr(batch, "duration", None)
        if duration is not None:
            duration = torch.as_tensor(duration, device=cas.device).reshape(-1)
        cfg = self.detection_config
        no_nms = replace(cfg, iou_threshold=1.0, nms_method="hard", max_per_video=None)
        parts = [
            cas_to_detections(cas, video, sb.batch, batch.pos, no_nms, duration=duration),
            cas_to_detections(cas, video, sb.batch, batch.pos,
                              replace(no_nms, thresholds=self.magnitude_thresholds),
                              act=mag, duration=duration),
        ]
        graph = torch.cat([p.batch for p in parts])
        cls = torch.cat([p.labels for p in parts])
        seg = torch.cat([p.segments for p in parts])
        scores = torch.cat([p.scores for p in parts])
        if cfg.nms_method == "hard" and cfg.iou_threshold < 1.0 and scores.numel() > 0:
            # a run found by both sources is the same candidate (same score): hard NMS
            # keeps one copy either way, and the padded NMS is quadratic in the group size
            rows = torch.stack([graph.to(torch.float64), cls.to(torch.float64),
                                seg[:, 0].to(torch.float64), seg[:, 1].to(torch.float64),
                                scores.to(torch.float64)], 1)
            first = unique_rows(rows)
            graph, cls, seg, scores = graph[first], cls[first], seg[first], scores[first]
        keep, score = grouped_nms(seg, scores, graph * self.num_classes + cls,
                                  cfg.iou_threshold, cfg.nms_method, cfg.sigma,
                                  cfg.soft_score_threshold)
        graph, cls, seg = graph[keep], cls[keep], seg[keep]
        order = torch.sort(score, descending=True, stable=True).indices
        order = order[torch.sort(graph[order], stable=True).indices]
        graph, cls, seg, score = graph[order], cls[order], seg[order], score[order]
        if cfg.max_per_video is not None:
            first = torch.searchsorted(graph, graph, right=False)
            ok = torch.arange(graph.numel(), device=graph.device) - first < cfg.max_per_video
            graph, cls, seg, score = graph[ok], cls[ok], seg[ok], score[ok]
        return CASDetections(graph, cls, score, seg)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, num_classes={self.num_classes}, "
                f"hidden_channels={self.hidden_channels}, use_clicks={self.use_clicks})")
