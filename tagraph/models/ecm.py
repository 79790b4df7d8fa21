"""ECM: equivalent classification mapping (pre- and post-classification streams)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tagraph.models.wtal import WeaklySupervisedTAL, batch_vectors, wtal_detection_config
from tagraph.nn.mil import normalized_ce_loss, topk_mean_pool
from tagraph.nn.temporal_conv import TemporalConv, temporal_edges
from tagraph.ops.cas import CASDetectionConfig, threshold_range

__all__ = ["ECM", "ecm_paper_detection_config", "group_aggregate", "minmax_normalize"]


def ecm_paper_detection_config() -> CASDetectionConfig:
    r"""The paper's / official code's THUMOS14 post-processing: softmax(pre)
    :math:`\geq 0.25`, thresholds 0.01:0.025:0.2 on the min-max normalised CAS,
    :math:`\lambda = 0.4`, :math:`\gamma = 0.15`, NMS 0.6 (plus the best
    class of every video). Not the default: see :class:`ECM`."""
    return CASDetectionConfig(
        class_threshold=0.25, thresholds=threshold_range(0.01, 0.2, 0.025), outer_lambda=0.4,
        gamma=0.15, nms_method="hard", iou_threshold=0.6,
    )


def minmax_normalize(cas: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    r"""Per video and class :math:`(x - m) / (M - m)` with :math:`M, m` the ReLU
    of the max / min over the video (a range :math:`\leq 0` divides by 1), as
    the official ECM post-processing."""
    c = cas.size(1)
    idx = batch.unsqueeze(-1).expand_as(cas)
    mx = cas.new_full((num_graphs, c), float("-inf")).scatter_reduce(0, idx, cas, "amax")
    mn = cas.new_full((num_graphs, c), float("inf")).scatter_reduce(0, idx, cas, "amin")
    mx, mn = mx.clamp(min=0), mn.clamp(min=0)
    delta = mx - mn
    delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    return (cas - mn[batch]) / delta[batch]


AGGREGATIONS = ("sum", "mean", "weighted")
POST_GRADIENTS = ("both", "classifier", "transition")
RESIDUALS = ("none", "sum", "rezero")


def group_aggregate(
    weights: Tensor, x: Tensor, node: Tensor, owner: Tensor, local: Tensor,
    num_owners: int, groups: int = 3, normalize: str = "sum",
) -> Tensor:
    r"""Weighted sums of snippet features in interleaved temporal groups,

    .. math::
        \mathbf{f}_{o,c,g} = \frac{1}{Z_{o,c,g}}
        \sum_{m:\, \mathrm{owner}(m) = o,\ t_m \equiv g
        \ (\mathrm{mod}\ G)} w_{m,c}\, \mathbf{x}_{\mathrm{node}(m)},

    for all owners (videos, or (video, class) pairs), classes and groups at
    once, as one sparse-dense product (:obj:`nnz = M C`). The normaliser
    :math:`Z` is 1 (:obj:`"sum"`, the official ECM code, which always sees
    :math:`T = 750`), the number of rows in the group (:obj:`"mean"`:
    independent of the video length) or :math:`\sum_m w_{m,c}` over the group
    (:obj:`"weighted"`: an attention-weighted average).

    Args:
        weights (torch.Tensor): Row weights :obj:`[M, C]`.
        x (torch.Tensor): Snippet features :obj:`[N, D]`.
        node (torch.Tensor): Snippet of each row, :obj:`[M]`.
        owner (torch.Tensor): Owner of each row, :obj:`[M]`.
        local (torch.Tensor): Snippet index within its video, :obj:`[M]`.
        num_owners (int): Number of owners :obj:`O`.
        groups (int, optional): :obj:`G`. (default: :obj:`3`)
        normalize (str, optional): :obj:`"sum"`, :obj:`"mean"` or
            :obj:`"weighted"`. (default: :obj:`"sum"`)

    Returns:
        torch.Tensor: :obj:`[O * C * G, D]`, row :obj:`(o * C + c) * G + g`.
    """
    if normalize not in AGGREGATIONS:
        raise ValueError(f"group_aggregate: unknown normalize '{normalize}' ({AGGREGATIONS})")
    m, c = weights.shape
    cls = torch.arange(c, device=x.device)
    rows = (owner.unsqueeze(-1) * c + cls) * groups + (local % groups).unsqueeze(-1)
    cols = node.unsqueeze(-1).expand(m, c)
    mat = torch.sparse_coo_tensor(
        torch.stack([rows.reshape(-1), cols.reshape(-1)]), weights.reshape(-1),
        (num_owners * c * groups, x.size(0)), check_invariants=False,
    )
    out = torch.sparse.mm(mat, x)
    if normalize == "mean":
        cnt = torch.bincount(owner * groups + local % groups, minlength=num_owners * groups)
        cnt = cnt.view(num_owners, 1, groups).expand(num_owners, c, groups).reshape(-1)
        out = out / cnt.clamp(min=1).to(out.dtype).unsqueeze(-1)
    elif normalize == "weighted":
        z = weights.new_zeros(num_owners * c * groups).index_add_(
            0, rows.reshape(-1), weights.reshape(-1))
        out = out / z.clamp(min=1e-6).unsqueeze(-1)
    return out


class ECM(WeaklySupervisedTAL):
    r"""Equivalent Classification Mapping from the "Equivalent Classification
    Mapping for Weakly Supervised Temporal Action Localization" paper (Yang et
    al., TPAMI; facts from the paper and the official code
    VividLe/Equivalent-Classification-Mapping).

    A shared backbone :math:`f` (two :class:`~tagraph.nn.TemporalConv` layers
    with kernel 3, LeakyReLU, dropout 0.5) and one classifier
    :math:`\mathbf{W}` (no bias) serve two streams:

    * pre-classification: :math:`\mathrm{CAS} = \mathbf{W} f(\mathbf{x})`,
      video logits = top-:math:`k` mean (:math:`k = T / 8`);
    * weight transition :math:`w = \sigma(\mathrm{Linear}_{C \to C}(\mathrm{CAS}))`;
    * post-classification: for every class :math:`c`, the features are summed
      with weights :math:`w_{\cdot c}` in :math:`G = 3` interleaved groups
      (:func:`group_aggregate`; averaged over each group's snippets by
      default, see :obj:`aggregation`); the 3-step sequence passes through the same
      backbone, is scored by row :math:`c` of :math:`\mathbf{W}` and averaged
      over the groups;
    * background stream (training): the features times :math:`1 - w_{\cdot c}`
      for each ground-truth class :math:`c`, through the post stream.

    Loss: normalised CE(pre) + CE(post) + :obj:`consistency_weight` (0.05) MSE(pre,
    post) + :obj:`agg_weight` (5 THUMOS14, 1 ActivityNet) aggregation
    consistency: softmax over [post logits, background logits] (:math:`2C`
    entries, the background entries of non-ground-truth classes being the
    mean over the video's ground-truth runs), BCE pushing the ground-truth
    entries to 1 and their background entries to 0.

    Inference: video scores softmax(pre), CAS min-max normalised per video
    (:func:`minmax_normalize`), then :attr:`detection_config`: by default the
    shared scale-free settings (:func:`~tagraph.models.wtal_detection_config`:
    classes of at least 0.1 of the best video score, thresholds 0.1:0.05:0.9
    of each video's CAS range). The paper's settings
    (:func:`ecm_paper_detection_config`: thresholds 0.01:0.025:0.2, i.e. only
    the low end of the range, :math:`\lambda = 0.4`, :math:`\gamma = 0.15`,
    NMS 0.6) scored half the validation mAP of the shared ones on unseen
    I3D-like features (8.7 vs 19.1; ``benchmarks/results/wtal_detection_selection.md``).

    With :obj:`post_stream=False` only the pre-classification stream is
    trained (the ablation "pre-classification stream alone").

    Args:
        in_channels (int): Feature size :math:`D`.
        num_classes (int): Number of classes :math:`C`.
        hidden_channels (int, optional): Backbone width. (default: :obj:`2048`)
        dropout (float, optional): Backbone dropout. (default: :obj:`0.5`)
        offsets (Sequence[int], optional): Temporal offsets of the backbone
            layers (edge types of the snippet graph). (default: :obj:`(-1, 1)`)
        groups (int, optional): Interleaved groups :math:`G`. (default: :obj:`3`)
        topk_ratio (int, optional): :math:`k = T / r`. (default: :obj:`8`)
        consistency_weight (float, optional): (default: :obj:`0.05`)
        agg_weight (float, optional): (default: :obj:`5.0`)
        post_stream (bool, optional): Train the post-classification and
            background streams. (default: :obj:`True`)
        aggregation (str, optional): Normaliser of the group aggregation
            (:func:`group_aggregate`): :obj:`"mean"` over each group's
            snippets, :obj:`"sum"` as the official code, or :obj:`"weighted"`
            by the sum of the weights. The official code sums, but always
            trains and tests at :math:`T = 750`; with variable-length videos a
            sum makes the post stream's input (and logits) grow with
            :math:`T`, and its gradients then dominate the backbone and
            classifier shared with the pre-classification stream, which stops
            learning (on the synthetic set ECM fell far below its own
            pre-stream). :obj:`"mean"` equals the official sum at a fixed
            :math:`T` up to the constant :math:`G / T`.
            (default: :obj:`"mean"`)
        sparsity_weight (float, optional): Weight :math:`\beta` of an
            :math:`\ell_1` term :math:`\beta \cdot \mathrm{mean}_{t,c}\, w_{t,c}`
            on the transition weights of labelled videos (not in the paper; the
            attention-sparsity term of STPN / BaS-Net). Both post-stream losses
            are satisfied by :math:`w = 1` on every snippet (the background
            features :math:`\mathbf{x}(1 - w)` vanish), and on unseen I3D-like
            features the transition saturates there; with
            :obj:`aggregation="weighted"` the term leaves the post stream's
            input unchanged in scale and makes :math:`w` choose snippets
            (weight 2 at THUMOS size: mean :math:`w` of a ground-truth class
            0.52 inside its segments, 0.30 outside, instead of 0.97 / 0.95),
            but the validation mAP did not move there, so the configs keep
            :obj:`0`, the paper. (default: :obj:`0.0`)
        shared_backbone (bool, optional): The post-classification stream runs
            through the pre-classification stream's backbone (the official
            code); :obj:`False` gives it its own two layers, the classifier
            still shared (the paper's "two streams sharing one classifier").
            (default: :obj:`True`)
        detection_config (CASDetectionConfig, optional): Post-processing.
        layers (int, optional): Temporal layers of the backbone(s): :obj:`2`
            (the paper) or :obj:`1` (:class:`MIL`'s depth; with it the post
            stream pulled the shared classifier 7-10 validation points down,
            ``benchmarks/results/wtal_redetect.md`` session 18). (default: :obj:`2`)
        second_offsets (Sequence[int], optional): Temporal offsets of the second
            layer; :obj:`[]` makes it per-snippet, so that the backbone sees
            :math:`\pm 1` snippets as :class:`MIL` instead of :math:`\pm 2`
            (lower on validation on 4 of 4 cells, session 18).
            (default: :obj:`None`, the same as :obj:`offsets`)
        post_gradient (str, optional): The paths by which the post stream's
            losses reach the pre-classification stream: :obj:`"both"` (the
            paper), :obj:`"classifier"` (the shared classifier only: the weight
            transition reads the CAS without gradient) or :obj:`"transition"`
            (the weight transition :math:`w` only: the post stream scores with
            the classifier's weights without gradient). A diagnostic of where
            the post stream harms the pre-classification CAS on long videos
            (``benchmarks/results/wtal_redetect.md`` session 19).
            (default: :obj:`"both"`)
        residual (str, optional): How the second layer's output
            :math:`\mathbf{h}_2` forms the backbone's output: :obj:`"none"`
            (:math:`\mathbf{h}_2`, the paper), :obj:`"sum"`
            (:math:`\mathbf{h}_1 + \mathbf{h}_2`) or :obj:`"rezero"`
            (:math:`\mathbf{h}_1 + g\,\mathbf{h}_2` with a learned scalar
            :math:`g = 0` at the start, one per backbone: the model starts at
            one layer's depth). Not in the paper. :obj:`"sum"` gained 2.2
            validation points on THUMOS-length videos (test 0.87x -> 0.91x
            :class:`MIL` on THUMOS14's real timings, 5 seeds) and lost 4.9 on
            the short reference variants (11.9 on relu1024), so the configs
            keep :obj:`"none"`; with :obj:`post_gradient="classifier"` it is
            0.96x :class:`MIL` on long videos' test (5 seeds), and the README
            advises both there (``benchmarks/results/wtal_redetect.md`` session
            20).
            (default: :obj:`"none"`)
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int = 2048,
        dropout: float = 0.5,
        offsets: Sequence[int] = (-1, 1),
        groups: int = 3,
        topk_ratio: int = 8,
        consistency_weight: float = 0.05,
        agg_weight: float = 5.0,
        post_stream: bool = True,
        aggregation: str = "mean",
        sparsity_weight: float = 0.0,
        shared_backbone: bool = True,
        detection_config: CASDetectionConfig | None = None,
        input_norm: str = "center_scale",
        layers: int = 2,
        second_offsets: Sequence[int] | None = None,
        post_gradient: str = "both",
        residual: str = "none",
    ) -> None:
        super().__init__(detection_config or wtal_detection_config(),
                         in_channels=in_channels, input_norm=input_norm)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"ECM: unknown aggregation '{aggregation}' ({AGGREGATIONS})")
        self.aggregation = aggregation
        if sparsity_weight < 0:
            raise ValueError(f"ECM: sparsity_weight must be >= 0 (got {sparsity_weight})")
        self.sparsity_weight = float(sparsity_weight)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.hidden_channels = hidden_channels
        self.offsets = tuple(int(o) for o in offsets)
        self.groups, self.topk_ratio = groups, topk_ratio
        self.consistency_weight, self.agg_weight = consistency_weight, agg_weight
        self.post_stream = post_stream
        if layers not in (1, 2):
            raise ValueError(f"ECM: layers must be 1 or 2 (got {layers})")
        self.layers = int(layers)
        self.second_offsets = (self.offsets if second_offsets is None
                               else tuple(int(o) for o in second_offsets))
        if post_gradient not in POST_GRADIENTS:
            raise ValueError(f"ECM: post_gradient must be one of {POST_GRADIENTS} "
                             f"(got '{post_gradient}')")
        self.post_gradient = post_gradient
        if residual not in RESIDUALS:
            raise ValueError(f"ECM: residual must be one of {RESIDUALS} (got '{residual}')")
        if residual != "none" and self.layers != 2:
            raise ValueError("ECM: residual needs layers = 2")
        self.residual = residual
        self.conv1 = TemporalConv(in_channels, hidden_channels, self.offsets)
        self.conv2 = (TemporalConv(hidden_channels, hidden_channels, self.second_offsets)
                      if self.layers == 2 else None)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_channels, num_classes, bias=False)
        self.attention = nn.Linear(num_classes, num_classes)
        self.shared_backbone = bool(shared_backbone)
        if not self.shared_backbone:
            self.post_conv1 = TemporalConv(in_channels, hidden_channels, self.offsets)
            self.post_conv2 = (TemporalConv(hidden_channels, hidden_channels,
                                            self.second_offsets)
                               if self.layers == 2 else None)
        # ReZero gates of the second layer (one per backbone), zero at the start
        self.gate = nn.Parameter(torch.zeros(1)) if residual == "rezero" else None
        self.post_gate = (nn.Parameter(torch.zeros(1))
                          if residual == "rezero" and not self.shared_backbone else None)

    def reset_parameters(self) -> None:
        for m in (self.conv1, self.conv2, self.classifier, self.attention):
            if m is not None:
                m.reset_parameters()
        if not self.shared_backbone:
            self.post_conv1.reset_parameters()
            if self.post_conv2 is not None:
                self.post_conv2.reset_parameters()
        for g in (self.gate, self.post_gate):
            if g is not None:
                nn.init.zeros_(g)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.num_classes}, "
                f"hidden_channels={self.hidden_channels}, post_stream={self.post_stream}, "
                f"shared_backbone={self.shared_backbone}, "
                f"aggregation='{self.aggregation}')")

    def backbone(self, x: Tensor, edge_index: Tensor, edge_type: Tensor,
                 post: bool = False) -> Tensor:
        r"""The temporal layers (:obj:`layers`); :obj:`post=True` selects the post
        stream's own layers when :obj:`shared_backbone` is :obj:`False`."""
        own = post and not self.shared_backbone
        conv1, conv2 = (self.post_conv1, self.post_conv2) if own else (self.conv1, self.conv2)
        h = F.leaky_relu(conv1(x, edge_index, edge_type))
        if conv2 is not None:
            h2 = F.leaky_relu(conv2(h, edge_index, edge_type))
            if self.residual == "sum":
                h = h + h2
            elif self.residual == "rezero":
                h = h + (self.post_gate if own else self.gate) * h2
            else:
                h = h2
        return self.dropout(h)

    def _post_scores(self, feats: Tensor, num_owners: int) -> Tensor:
        # feats: [O * C * G, D] groups of each (owner, class) as a G-step sequence.
        c, g = self.num_classes, self.groups
        ptr = torch.arange(0, num_owners * c * g + 1, g, device=feats.device)
        ei, et = temporal_edges(ptr, self.offsets)
        h = self.backbone(feats, ei, et, post=True).view(num_owners, c, g, -1)
        weight = self.classifier.weight
        if self.post_gradient == "transition":
            weight = weight.detach()
        scores = (h * weight.view(1, c, 1, -1)).sum(-1)
        return scores.mean(-1)  # [O, C]

    def forward(self, batch: Any, with_post: bool = True,
                with_background: bool = False) -> dict[str, Tensor]:
        r"""Outputs :obj:`cas` :obj:`[N, C]`, :obj:`pre` :obj:`[B, C]` (logits) and,
        with the post stream, :obj:`post` :obj:`[B, C]`, :obj:`w` :obj:`[N, C]`,
        and with the background stream :obj:`bg` :obj:`[P, C]` for the
        (video, ground-truth class) pairs :obj:`bg_pairs` :obj:`[2, P]`."""
        b, ptr, num_graphs = batch_vectors(batch)
        x = self.input_norm(batch.x)
        ei, et = self.temporal_graph(batch, self.offsets)
        cas = self.classifier(self.backbone(x, ei, et))
        out = {"cas": cas, "pre": topk_mean_pool(cas, b, self.topk_ratio, num_graphs=num_graphs)}
        if not (self.post_stream and with_post):
            return out
        w = torch.sigmoid(self.attention(
            cas.detach() if self.post_gradient == "classifier" else cas))
        n = x.size(0)
        node = torch.arange(n, device=x.device)
        local = node - ptr[:-1][b]
        agg = group_aggregate(w, x, node, b, local, num_graphs, self.groups, self.aggregation)
        out["post"] = self._post_scores(agg, num_graphs)
        out["w"] = w
        if with_background:
            y = batch.y
            vid, cls = (y > 0).nonzero(as_tuple=True)  # one (video, GT class) pair each
            counts = ptr[1:] - ptr[:-1]
            rep = counts[vid]
            pair = torch.repeat_interleave(torch.arange(vid.numel(), device=x.device), rep)
            # nodes of each pair's video, in order
            start = torch.repeat_interleave(ptr[:-1][vid], rep)
            offs = torch.arange(int(rep.sum()), device=x.device) - torch.repeat_interleave(
                torch.cumsum(rep, 0) - rep, rep)
            nodes = start + offs
            wb = w[nodes] * (1.0 - w[nodes, cls[pair]]).unsqueeze(-1)
            agg_bg = group_aggregate(wb, x, nodes, pair, offs, vid.numel(), self.groups,
                                     self.aggregation)
            out["bg"] = self._post_scores(agg_bg, vid.numel())  # [P, C]
            out["bg_pairs"] = torch.stack([vid, cls])
        return out

    def aggregation_consistency(self, post: Tensor, bg: Tensor, pairs: Tensor, y: Tensor
                                ) -> Tensor:
        vid, cls = pairs
        bsz, c = post.shape
        if vid.numel() == 0:
            return post.sum() * 0.0
        cnt = torch.bincount(vid, minlength=bsz).clamp(min=1).to(post.dtype)
        bg_mean = post.new_zeros(bsz, c).index_add_(0, vid, bg) / cnt.unsqueeze(-1)
        bg_collect = bg_mean.index_put((vid, cls), bg[torch.arange(vid.numel()), cls])
        prob = torch.softmax(torch.cat([post, bg_collect], -1), -1)
        p_act = prob[vid, cls].clamp(1e-7, 1 - 1e-7)
        p_bg = prob[vid, c + cls].clamp(1e-7, 1 - 1e-7)
        per_entry = torch.cat([-torch.log(p_act), -torch.log1p(-p_bg)])
        owner = torch.cat([vid, vid])
        # BCE mean over each video's 2 G_b entries, then mean over videos.
        per_video = post.new_zeros(bsz).index_add_(0, owner, per_entry)
        has = torch.bincount(vid, minlength=bsz) > 0
        return (per_video[has] / (2 * cnt[has])).mean()

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        self.check_batch(batch)
        keep = self.labeled(batch)
        y = batch.y.to(batch.x.dtype)
        if not bool(keep.all()):
            y = y * keep.unsqueeze(-1).to(y.dtype)  # unlabeled: no GT pairs, no CE term
        out = self.forward(batch, with_background=self.post_stream)
        kk = keep
        if not bool(kk.any()):
            zero = out["cas"].sum() * 0.0
            return zero, {"loss_pre": 0.0}
        loss_pre = normalized_ce_loss(out["pre"][kk], y[kk])
        logs = {"loss_pre": float(loss_pre.detach())}
        loss = loss_pre
        if self.post_stream:
            loss_post = normalized_ce_loss(out["post"][kk], y[kk])
            loss_cons = F.mse_loss(out["pre"][kk], out["post"][kk])
            loss_agg = self.aggregation_consistency(out["post"], out["bg"], out["bg_pairs"], y)
            loss = (loss + loss_post + self.consistency_weight * loss_cons
                    + self.agg_weight * loss_agg)
            logs.update(loss_post=float(loss_post.detach()), loss_cons=float(loss_cons.detach()),
                        loss_agg=float(loss_agg.detach()))
            if self.sparsity_weight > 0:
                b, _, _ = batch_vectors(batch)
                loss_sparse = out["w"][kk[b]].mean()
                loss = loss + self.sparsity_weight * loss_sparse
                logs["loss_sparse"] = float(loss_sparse.detach())
        return loss, logs

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, float]:
        loss, logs = self.training_step(batch)
        return {"loss": float(loss), **logs}

    def localization_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        b, _, num_graphs = batch_vectors(batch)
        out = self.forward(batch, with_post=False)
        cas = minmax_normalize(out["cas"], b, num_graphs)
        return cas, torch.softmax(out["pre"], -1), None
