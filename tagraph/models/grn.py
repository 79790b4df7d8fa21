"""GRN: graph-Laplacian regularised class activations with a learned semantic affinity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter

from tagraph.models.mil import MIL_CLASS_THRESHOLD
from tagraph.models.wtal import WeaklySupervisedTAL, batch_vectors, wtal_detection_config
from tagraph.nn.graph_laplacian import GraphLaplacianRegularization
from tagraph.nn.mil import (
    normalized_ce_loss,
    segment_mean_pool,
    topk_mean_pool,
    video_bce_loss,
)
from tagraph.nn.temporal_conv import temporal_edges
from tagraph.ops.cas import CASDetectionConfig, threshold_range

__all__ = ["GRN", "GRN_DEFAULTS"]

#: Hyper-parameters the paper leaves open (see :class:`GRN`), at the values the
#: validation sweep was centred on. The values CHOSEN on validation (a split of
#: the training videos, never test: ``benchmarks/grn_ecm_table.py --select``,
#: results in ``benchmarks/results/grn_selection.md``) are in the configs
#: ``tagraph/configs/grn/*.toml``: top-k pooling instead of the paper's average
#: pooling, the rest unchanged (epsilon 0.5 on L2-normalised embeddings, mu 1,
#: lambda 1, confident thresholds 0.7 / 0.1, a +-2 temporal window plus 5
#: semantic kNN edges, a 32-d embedding). ``grn/thumos14`` (session 18) uses
#: MIL's class activation module and loss (:obj:`loss="ce"`) on +-1 temporal
#: edges, ``benchmarks/results/wtal_grn_ce.md``.
GRN_DEFAULTS: dict[str, Any] = dict(
    hidden_channels=512,
    embed_channels=(256, 128, 32),
    epsilon=0.5,
    mu=1.0,
    lam=1.0,
    tau_high=0.7,
    tau_low=0.1,
    window=2,
    affinity_warmup=100,
    pooling="mean",
    topk_ratio=8,
    balanced_loss=False,
    cam_offsets=(),
    dropout=0.0,
    loss="bce",
)


def _grn_detection() -> CASDetectionConfig:
    # As the paper: classes with video score > 0.1, thresholded refined CAS,
    # proposal score = mean refined score inside, NMS 0.5.
    return CASDetectionConfig(
        class_threshold=0.1, thresholds=threshold_range(0.1, 0.95, 0.1), outer_lambda=0.0,
        gamma=0.0, nms_method="hard", iou_threshold=0.5,
    )


class _Stream(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, hidden: int,
                 embed: Sequence[int], regularize: bool, cam_offsets: Sequence[int] = (),
                 dropout: float = 0.0) -> None:
        super().__init__()
        # Dropout on the hidden activations (functional, so that the parameter names,
        # and checkpoints, are those of the paper's module).
        self.dropout = float(dropout)
        self.cam_offsets = tuple(int(o) for o in cam_offsets)
        if self.cam_offsets:  # first layer sees the snippet and its temporal neighbours
            from tagraph.nn.temporal_conv import TemporalConv

            self.conv = TemporalConv(in_channels, hidden, self.cam_offsets)
            self.cam = nn.Sequential(nn.ReLU(), nn.Linear(hidden, num_classes))
        else:
            self.cam = nn.Sequential(
                nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
            )
        self.embed: nn.Module | None = None
        if regularize:
            layers: list[nn.Module] = []
            dims = [in_channels, *embed]
            for i in range(len(embed)):
                layers.append(nn.Linear(dims[i], dims[i + 1]))
                if i < len(embed) - 1:
                    layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU()]
            self.embed = nn.Sequential(*layers)

    def activations(self, x: Tensor, edge_index: Tensor | None = None,
                    edge_type: Tensor | None = None) -> Tensor:
        r"""Class activations :math:`\sigma(\mathrm{FC}(\mathrm{Dropout}(
        \mathrm{ReLU}(\mathrm{FC}_{512}(\mathbf{x})))))`, the first layer a
        :class:`~tagraph.nn.TemporalConv` when :obj:`cam_offsets` is set."""
        return torch.sigmoid(self.logits(x, edge_index, edge_type))

    def logits(self, x: Tensor, edge_index: Tensor | None = None,
               edge_type: Tensor | None = None) -> Tensor:
        r"""The class activations before the sigmoid."""
        if self.cam_offsets:
            h = self.conv(x, edge_index, edge_type)
            relu, last = self.cam[0], self.cam[1]
        else:
            h = self.cam[0](x)
            relu, last = self.cam[1], self.cam[2]
        h = F.dropout(relu(h), self.dropout, self.training)
        return last(h)


class GRN(WeaklySupervisedTAL):
    r"""The Graph Regularization Network from the "Graph Regularization Network
    with Semantic Affinity for Weakly-Supervised Temporal Action Localization"
    paper (Park et al., ICIP 2019; no official code, this is a reimplementation
    from the paper).

    Per stream (RGB and Flow: the two halves of :obj:`x`), a class activation
    module :math:`\mathbf{s} = \sigma(\mathrm{FC}(\mathrm{ReLU}(\mathrm{FC}_{512}(\mathbf{x}))))`
    and an embedding network :math:`\mathbf{e}` (3 layers, BN + ReLU between,
    L2-normalised output) give a semantic affinity on the snippet graph's
    edges and the regularised CAS

    .. math::
        A_{ij} = \exp\!\Big(-\frac{\|\mathbf{e}_i - \mathbf{e}_j\|^2}{2\epsilon^2}\Big),
        \qquad \hat{\mathbf{s}} = (\mathbf{I} + \mu \mathbf{L})^{-1} \mathbf{s},
        \quad \mathbf{L} = \mathbf{D} - \mathbf{A}

    (:class:`~tagraph.nn.GraphLaplacianRegularization`, gradients into both
    modules by implicit differentiation). Training loss
    :math:`\mathcal{L}_{aff} + \lambda \mathcal{L}_{cls}`: BCE of the
    average-pooled (:obj:`pooling`) :math:`\hat{\mathbf{s}}` against the video labels, and the
    mean squared error between :math:`A_{ij}` and :math:`A^*_{ij} =
    [\ell_i = \ell_j]` on edges between confident snippets (:math:`\ell_i` = the
    best ground-truth class if its score > :math:`\tau_h`, background if all
    ground-truth classes score < :math:`\tau_l`), into the affinity module
    only. The affinity module is frozen (learning rate 0) for the first
    :obj:`affinity_warmup` training steps.

    Graph: the batch's edges (e.g. :func:`tagraph.data.snippet_graph` with a
    temporal window and semantic kNN) or, when it has none, temporal edges
    within :obj:`window` snippets.

    Inference: :math:`\hat{\mathbf{s}} = \alpha \hat{\mathbf{s}}_{RGB} +
    (1 - \alpha) \hat{\mathbf{s}}_{Flow}`, video scores = its average (or
    top-:math:`k` mean with :obj:`pooling="topk"`), classes
    with video score > 0.1 (and always the best one), thresholded refined CAS,
    proposal score = mean inside, NMS 0.5 (:attr:`detection_config`; the
    sigmoid scores are bounded, so these thresholds are already scale-free,
    and on validation they beat the relative ones,
    ``benchmarks/results/wtal_detection_selection.md``).

    Features pass through :attr:`input_norm` first: on non-negative features
    the randomly initialised embedding otherwise maps every snippet to nearly
    the same point, the affinity starts as a constant (0.76-0.82 on every edge
    of 512-d softplus features, vs 0.20-0.27 after normalisation) and the
    regulariser flattens the CAS (its temporal variation shrinks 4-5x instead
    of about 2x).

    :obj:`balanced_loss=True` (the shipped configs) weighs each video's
    positive and negative classes equally in the BCE
    (:func:`~tagraph.nn.video_bce_loss`); the plain mean over :math:`B C`
    entries lets a video's many negatives drown its one or two positives
    (validation mAP 6.3 vs 15.5 on unseen I3D-like features).

    :obj:`loss="ce"` (not in the paper) regularises the class activations
    *before* the sigmoid and trains them as :class:`MIL` does: video logits
    :math:`\mathbf{v} = \mathrm{topk}(\hat{\mathbf{z}})` with
    :math:`\hat{\mathbf{z}} = (\mathbf{I} + \mu \mathbf{L})^{-1} \mathbf{z}`,
    :math:`\mathcal{L}_{cls} = -\sum_c \tilde{y}_c \log \mathrm{softmax}(\mathbf{v})_c`
    (labels normalised to sum 1, :func:`~tagraph.nn.normalized_ce_loss`);
    the confident snippets of :math:`\mathcal{L}_{aff}` are found on the
    logits min-max normalised per video and class (:math:`\tau_h`,
    :math:`\tau_l` become fractions of the video's own range), and the
    detections come from MIL's scale-free path
    (:func:`~tagraph.models.wtal_detection_config`). With MIL's class
    activation module (:obj:`cam_offsets=(-1, 1)`, :obj:`dropout=0.5`,
    :obj:`streams=1`, :obj:`pooling="topk"`) and :obj:`regularize=False` this
    *is* :class:`MIL`, so the ablation measures the regulariser alone.

    With :obj:`regularize=False` it is the same network without the
    regularisation (and affinity) module: the paper's ablation.

    .. note::
        :math:`\mathbf{L} = \mathbf{D} - \mathbf{A}` is symmetric with zero
        column sums, so :math:`\mathbf{1}^\top (\mathbf{I} + \mu
        \mathbf{L})^{-1} = \mathbf{1}^\top`: the regulariser keeps every
        video's *mean* score. With the paper's average pooling
        (:obj:`pooling="mean"`) the classification loss is therefore exactly
        the same with or without the regulariser: it trains the class
        activation module as the ablation does and gives the affinity module
        no gradient (only :math:`\mathcal{L}_{aff}` does); the regulariser acts
        at inference only. :obj:`pooling="topk"` (the top-:math:`k` MIL
        pooling of the other methods, :math:`k = T / 8`) makes
        :math:`\mathcal{L}_{cls}` depend on :math:`\hat{\mathbf{s}}` and
        train both modules; it is chosen on validation like the other open
        hyper-parameters.

    Open hyper-parameters (:data:`GRN_DEFAULTS`, to be chosen on validation):
    :math:`\epsilon`, :math:`\mu`, :math:`\lambda`, :math:`\tau_h`,
    :math:`\tau_l`, the neighbourhood and the embedding size.

    Args:
        in_channels (int): Feature size :math:`D` (both streams).
        num_classes (int): Number of classes :math:`C`.
        streams (int, optional): Split :obj:`x` into this many equal streams,
            each with its own class activation and embedding modules, fused at
            inference (the paper: RGB and Flow). :obj:`1` is one module on the
            concatenated features (early fusion, as :class:`MIL`); chosen on
            validation for ``grn/thumos14``: at THUMOS size 27.1 / 27.7 -> 32.6 /
            32.9 (two seeds), on four smaller geometries 21.5 -> 22.2 (8 cells),
            ``benchmarks/results/wtal_redetect.md``. (default: :obj:`2`)
        regularize (bool, optional): Use the regularisation module. (default: :obj:`True`)
        alpha (float, optional): RGB weight of the fusion. (default: :obj:`0.5`)
        detection_config (CASDetectionConfig, optional): Post-processing.
        **kwargs: Overrides of :data:`GRN_DEFAULTS` (:obj:`hidden_channels`,
            :obj:`embed_channels`, :obj:`epsilon`, :obj:`mu`, :obj:`lam`,
            :obj:`tau_high`, :obj:`tau_low`, :obj:`window`, :obj:`affinity_warmup`,
            :obj:`pooling`, :obj:`topk_ratio`, :obj:`balanced_loss`,
            :obj:`cam_offsets`, :obj:`dropout`, :obj:`loss`) and :obj:`solver` of the
            regulariser.
            :obj:`cam_offsets` (default :obj:`()`, the paper's per-snippet
            :math:`\mathrm{FC}_{512}`) makes the class activation module's first
            layer a :class:`~tagraph.nn.TemporalConv` over the snippet and its
            neighbours at these offsets (e.g. :obj:`(-1, 1)`, as :class:`MIL`;
            ``grn/thumos14`` uses :obj:`(-2, -1, 1, 2)`, chosen on validation:
            THUMOS size 32.6 / 32.9 -> 35.8 / 36.4 with :obj:`streams=1`).
            :obj:`dropout` (default :obj:`0.0`, the paper) drops the class
            activation module's hidden units in training (MIL uses 0.5; not
            better for GRN on validation, ``benchmarks/results/wtal_redetect.md``).
            :obj:`loss` (default :obj:`"bce"`, the paper's sigmoid scores and
            binary cross-entropy) or :obj:`"ce"` (see above).
    """

    #: Keyword hyper-parameters and their defaults (valid ``[model]`` config keys).
    HYPERPARAMETERS = GRN_DEFAULTS

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        streams: int = 2,
        regularize: bool = True,
        alpha: float = 0.5,
        detection_config: CASDetectionConfig | None = None,
        solver: str = "auto",
        input_norm: str = "center_scale",
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - set(GRN_DEFAULTS)
        if unknown:
            raise TypeError(f"GRN: unknown arguments {sorted(unknown)}")
        hp = {**GRN_DEFAULTS, **kwargs}
        if hp["pooling"] not in ("mean", "topk"):
            raise ValueError(f"GRN: pooling must be 'mean' or 'topk', got {hp['pooling']!r}")
        if hp["loss"] not in ("bce", "ce"):
            raise ValueError(f"GRN: loss must be 'bce' or 'ce', got {hp['loss']!r}")
        if detection_config is None:
            detection_config = (_grn_detection() if hp["loss"] == "bce"
                                else wtal_detection_config(class_threshold=MIL_CLASS_THRESHOLD))
        super().__init__(detection_config, in_channels=in_channels, input_norm=input_norm)
        if in_channels % streams:
            raise ValueError(f"GRN: in_channels {in_channels} not divisible by {streams} streams")
        self.in_channels, self.num_classes, self.streams = in_channels, num_classes, streams
        self.regularize, self.alpha = regularize, float(alpha)
        self.hp = hp
        d = in_channels // streams
        self.stream = nn.ModuleList([
            _Stream(d, num_classes, hp["hidden_channels"], hp["embed_channels"], regularize,
                    hp["cam_offsets"], float(hp["dropout"]))
            for _ in range(streams)
        ])
        self.glr = GraphLaplacianRegularization(mu=hp["mu"], solver=solver)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.step.zero_()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.num_classes}, "
                f"streams={self.streams}, regularize={self.regularize}, mu={self.hp['mu']}, "
                f"loss={self.hp['loss']!r})")

    # ---------------------------------------------------------------- forward
    def graph(self, batch: Any) -> Tensor:
        ei = getattr(batch, "edge_index", None)
        if ei is not None and ei.numel() > 0:
            return ei
        _, ptr, _ = batch_vectors(batch)
        w = int(self.hp["window"])
        offsets = [o for o in range(-w, w + 1) if o != 0]
        return temporal_edges(ptr, offsets)[0]

    def video_scores(self, s: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        r"""Video scores :obj:`[B, C]` of snippet scores: the per-video mean
        (:obj:`pooling="mean"`, the paper) or top-:math:`k` mean
        (:obj:`"topk"`, :math:`k = T / r`)."""
        if self.hp["pooling"] == "topk":
            return topk_mean_pool(s, batch, int(self.hp["topk_ratio"]), num_graphs=num_graphs)
        return segment_mean_pool(s, batch, num_graphs)

    def forward(self, batch: Any, train_affinity: bool = True) -> dict[str, list[Tensor]]:
        r"""Per stream: CAS :obj:`s`, edge affinities :obj:`a` (or :obj:`None`) and
        refined CAS :obj:`s_hat`, all :obj:`[N, C]` / :obj:`[E]`."""
        b, _, _ = batch_vectors(batch)
        xs = self.input_norm(batch.x).chunk(self.streams, dim=-1)
        ei = self.graph(batch) if self.regularize else None
        out: dict[str, list[Any]] = {"s": [], "a": [], "s_hat": []}
        eps2 = 2.0 * float(self.hp["epsilon"]) ** 2
        t_ei = t_et = None
        if self.hp["cam_offsets"]:
            _, ptr, _ = batch_vectors(batch)
            t_ei, t_et = temporal_edges(ptr, tuple(self.hp["cam_offsets"]))
        for x, st in zip(xs, self.stream):
            if self.hp["loss"] == "bce":
                s = st.activations(x, t_ei, t_et)
            else:
                s = st.logits(x, t_ei, t_et)
            a = None
            s_hat = s
            if st.embed is not None and ei is not None:
                with torch.set_grad_enabled(torch.is_grad_enabled() and train_affinity):
                    e = F.normalize(st.embed(x), dim=-1)
                    a = torch.exp(-(e[ei[0]] - e[ei[1]]).pow(2).sum(-1) / eps2)
                s_hat = self.glr(s, ei, a, b)
            out["s"].append(s)
            out["a"].append(a)
            out["s_hat"].append(s_hat)
        out["edge_index"] = [ei]
        return out

    def affinity_targets(self, s: Tensor, y: Tensor, batch: Tensor, edge_index: Tensor
                         ) -> tuple[Tensor, Tensor]:
        r"""Edge targets :math:`A^*` and the mask of edges between confident snippets.

        With :obj:`loss="ce"` the scores are logits; they are min-max normalised
        per video and class first, so that :math:`\tau_h` and :math:`\tau_l`
        are fractions of each video's own score range."""
        if self.hp["loss"] == "ce":
            lo = scatter(s, batch, 0, reduce="min")[batch]
            hi = scatter(s, batch, 0, reduce="max")[batch]
            s = (s - lo) / (hi - lo).clamp(min=1e-12)
        gt = y[batch] > 0  # [N, C]
        s_gt = torch.where(gt, s, torch.full_like(s, -1.0))
        best, label = s_gt.max(-1)
        s_low = torch.where(gt, s, torch.full_like(s, 2.0)).amin(-1)
        fg = best > self.hp["tau_high"]
        bg = (s_low < self.hp["tau_low"]) & ~fg
        label = torch.where(bg, torch.full_like(label, s.size(1)), label)
        conf = fg | bg
        src, dst = edge_index[0], edge_index[1]
        mask = conf[src] & conf[dst]
        target = (label[src] == label[dst]).to(s.dtype)
        return target, mask

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        self.check_batch(batch)
        keep = self.labeled(batch)
        train_aff = int(self.step) >= int(self.hp["affinity_warmup"])
        self.step += 1
        out = self.forward(batch, train_affinity=train_aff)
        b, _, num_graphs = batch_vectors(batch)
        y = batch.y.to(batch.x.dtype)
        loss_cls = batch.x.new_zeros(())
        loss_aff = batch.x.new_zeros(())
        for s, a, s_hat in zip(out["s"], out["a"], out["s_hat"]):
            v = self.video_scores(s_hat, b, num_graphs)
            if bool(keep.any()):
                if self.hp["loss"] == "ce":
                    loss_cls = loss_cls + normalized_ce_loss(v[keep], y[keep])
                else:
                    loss_cls = loss_cls + video_bce_loss(v[keep], y[keep],
                                                         balanced=bool(self.hp["balanced_loss"]))
            if a is not None and train_aff:
                target, mask = self.affinity_targets(s.detach(), y, b, out["edge_index"][0])
                mask = mask & keep[b[out["edge_index"][0][1]]]
                if bool(mask.any()):
                    loss_aff = loss_aff + F.mse_loss(a[mask], target[mask])
        loss = loss_aff + float(self.hp["lam"]) * loss_cls
        return loss, {"loss_cls": float(loss_cls.detach()), "loss_aff": float(loss_aff.detach())}

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, float]:
        loss, logs = self.training_step_eval(batch)
        return {"loss": float(loss), **logs}

    def training_step_eval(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        step = self.step.clone()
        try:
            return self.training_step(batch)
        finally:
            self.step.copy_(step)

    def refined_cas(self, batch: Any) -> Tensor:
        r"""The fused refined CAS :math:`\alpha \hat{s}_{RGB} + (1 - \alpha)\hat{s}_{Flow}`."""
        s_hat = self.forward(batch)["s_hat"]
        if len(s_hat) == 1:
            return s_hat[0]
        if len(s_hat) == 2:
            return self.alpha * s_hat[0] + (1.0 - self.alpha) * s_hat[1]
        return torch.stack(s_hat).mean(0)

    def localization_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        cas = self.refined_cas(batch)
        b, _, num_graphs = batch_vectors(batch)
        v = self.video_scores(cas, b, num_graphs)
        return cas, (torch.softmax(v, -1) if self.hp["loss"] == "ce" else v), None
