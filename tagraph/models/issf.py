r"""ISSF: weakly supervised temporal action localization by inferring salient
snippet features."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tagraph.models._snippet_batch import SnippetBatch, labels_of, snippet_batch
from tagraph.models._snippet_batch import scalar as _f
from tagraph.models.wtal import WeaklySupervisedTAL
from tagraph.nn.cosine_classifier import CosineClassifier, CosineClassifierOutput
from tagraph.nn.discrimination_memory import DiscriminationMemory
from tagraph.nn.information_interaction import InformationInteraction
from tagraph.nn.issf_losses import attention_contrast_loss, soft_label_ce_loss
from tagraph.nn.mil import normalized_ce_loss, topk_mean_pool
from tagraph.nn.saliency import SalientSnippets
from tagraph.ops.cas import CASDetectionConfig, CASDetections, threshold_range

__all__ = ["ISSF", "ISSFOutput", "issf_detection_config"]


class _EpochCounter:
    def __init__(self, loader: Iterable, model: ISSF) -> None:
        self.loader = loader
        self.model = model

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator:
        yield from self.loader
        nxt = int(self.model.epoch) + 1
        if self.model.use_refinement and nxt == self.model.memory_start_epoch:
            self.model.fill_memory(self.loader)  # the official initialisation pass
        self.model.set_epoch(nxt)


class ISSFOutput(NamedTuple):
    features: Tensor  #: [N, H] embedded snippet features
    salient: Tensor  #: [N] salient-snippet mask of the features the refinement works on
    base: CosineClassifierOutput  #: head on the embedded features
    refined_features: Tensor | None  #: [N, H] boundary-refined features
    refined: CosineClassifierOutput | None  #: head on the refined features
    refine_input: Tensor | None = None  #: [N, H] features the refinement and memory work on


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    # Sum of two optional losses (None where neither is computed).
    if a is None:
        return b
    return a if b is None else a + b


def issf_detection_config() -> CASDetectionConfig:
    r"""ISSF's inference: thresholds :math:`0.001{:}0.002{:}0.04` on the
    attention-weighted frame probabilities, proposals of at least 2 snippets,
    :math:`\lambda = 0.25`, no video-score term, hard NMS at tIoU 0.45; classes
    with video probability :math:`\geq 0.1` (the official code's default
    :obj:`--class-threshold`), plus the best class of every video (chosen on
    validation: the shared min-max settings scored 1.3-2.9 vs 9.7 validation
    mAP, ``benchmarks/results/wtal_detection_selection.md``)."""
    return CASDetectionConfig(class_threshold=0.1, top1_fallback=True,
                              thresholds=threshold_range(0.001, 0.04, 0.002), outer_lambda=0.25,
                              gamma=0.0, nms_method="hard", iou_threshold=0.45, min_length=2)


class ISSF(WeaklySupervisedTAL):
    r"""ISSF from the `"Weakly-Supervised Temporal Action Localization by
    Inferring Salient Snippet-Feature" <https://doi.org/10.1609/aaai.v38i7.28516>`_
    paper (Yun, Qi, Wang, Ma, AAAI 2024), on snippet graphs.

    * Embedding: linear :math:`D \rightarrow H`, ReLU, dropout; a
      :class:`~tagraph.nn.CosineClassifier` head (:math:`C + 1` centres, scale
      20, foreground-centre attention).
    * Saliency inference (:class:`~tagraph.nn.SalientSnippets`, message passing
      on the temporal edges, per video).
    * Boundary refinement (:class:`~tagraph.nn.InformationInteraction`) on the
      salient / non-salient sets, classified by the same head.
    * Discrimination enhancement (:class:`~tagraph.nn.DiscriminationMemory`):
      per-class memory of the 9 best salient features, filled at the end of
      epoch :obj:`memory_start_epoch` :math:`- 1` by one eval-mode pass over
      the training videos (:meth:`fill_memory`, as the official code) and
      updated by every training batch from then on (replacing during the
      warm-up, with momentum after it); from epoch :obj:`memory_start_epoch`
      the refined features attend to the memory of their video's classes, and
      that *memory branch* enters the video losses (weight 0.5) and the pseudo
      labels.

    Loss (:meth:`training_step`): normalised CE of the class-agnostic video
    logits against :math:`[y, 0]` (base + refined), :obj:`back_weight` times
    normalised CE of the class-wise video logits against :math:`[y, 1]`,
    :obj:`att_weight` times the attention contrast loss, and :math:`w_s`
    times the soft-label CE (temperature 0.2) between the base frame logits
    and the pseudo logits :math:`0.8 \cdot` refined :math:`+ 0.2 \cdot` memory
    (refined alone before the memory is used; :math:`w_s = 1`, then 0.5).

    The memory momentum and warm-up depend on the epoch: train on
    :meth:`track_epochs` of the loader (it also runs the memory's
    initialisation pass), or call :meth:`set_epoch` at the start of every
    epoch (and :meth:`fill_memory` before epoch :obj:`memory_start_epoch`;
    without it the memory fills from the training batches of that epoch on).

    With :obj:`use_refinement=False` only the base branch is built into the
    loss (no refinement, memory or pseudo labels): the ablation baseline.

    Inference (:meth:`predict`): frame score :math:`(0.6\,\mathrm{softmax}(
    \mathrm{base}) + 0.4\,\mathrm{softmax}(\mathrm{refined})) \times a_t`, video
    score the same mix of the class-agnostic video probabilities;
    :func:`issf_detection_config`. :obj:`branch="base"` uses the base branch
    alone.

    Args:
        in_channels (int, optional): Feature size :math:`D`. (default: :obj:`2048`)
        num_classes (int, optional): Action classes :math:`C`. (default: :obj:`20`)
        hidden_channels (int, optional): :math:`H`. (default: :obj:`2048`)
        dropout (float, optional): Embedding dropout. (default: :obj:`0.6`)
        scale (float, optional): Cosine scale. (default: :obj:`20.0`)
        reduction (int, optional): Interaction MLP reduction. (default: :obj:`4`)
        mix (float, optional): Weight of the non-salient set. (default: :obj:`0.12`)
        saliency_ratio (float, optional): :math:`\rho`. (default: :obj:`0.5`)
        memory_size (int, optional): Slots per class. (default: :obj:`9`)
        warmup_epochs (int, optional): Memory warm-up. (default: :obj:`85`)
        max_epochs (int, optional): :math:`T` of the momentum. (default: :obj:`180`)
        memory_start_epoch (int, optional): First epoch (0-based) using the memory
            branch. (default: :obj:`2`)
        temporal_offsets (tuple[int, ...], optional): Graph edge offsets. (default:
            :obj:`(-1, 1)`)
        embed_temporal (bool, optional): Make the embedding's linear layer a
            :class:`~tagraph.nn.TemporalConv` over each snippet and its neighbours
            at :obj:`temporal_offsets` (not in the paper, whose embedding is per
            snippet; chosen on validation for the shipped configs).
            (default: :obj:`False`)
        use_refinement (bool, optional): Full model or base-only ablation.
            (default: :obj:`True`)
        back_weight (float, optional): Weight of the class-wise video loss
            (the paper's 0.2; ``issf/thumos14`` sets 0, chosen on validation:
            ``benchmarks/results/wtal_redetect.md``, session 15). At 0 the
            class-wise video logits are not computed and ``loss_back`` is not
            logged. (default: :obj:`0.2`)
        att_weight (float, optional): (default: :obj:`0.1`)
        memory_weight (float, optional): (default: :obj:`0.5`)
        temperature (float, optional): (default: :obj:`0.2`)
        pseudo_mix (float, optional): Weight of the refined logits in the pseudo
            labels. (default: :obj:`0.8`)
        detection_config (CASDetectionConfig, optional): (default:
            :func:`issf_detection_config`)
        input_norm (str, optional): Per-video input normalisation (see
            :class:`~tagraph.models.wtal.WeaklySupervisedTAL`). (default:
            :obj:`"center_scale"`)
        mil_weight (float, optional): Weight of a top-:math:`k` MIL loss on the
            frame logits of every branch (mean of the :math:`\lfloor T / r
            \rfloor` largest per centre, normalised CE against :math:`[y, 1]`,
            as BaS-Net's base branch), which supervises the CAS directly; not in
            the paper, whose frame logits are trained only through the pooled
            video features and the pseudo labels. (default: :obj:`0.0`)
        mil_ratio (int, optional): :math:`r` of that loss. (default: :obj:`8`)
        scaled_interaction (bool, optional): Scale the boundary refinement's
            attention logits by :math:`1 / \sqrt{H}`
            (:class:`~tagraph.nn.InformationInteraction` :obj:`scaled`; not in
            the paper). (default: :obj:`False`)
        attention_scoring (bool, optional): Multiply the frame probabilities by
            the attention :math:`a_t` at inference (the paper). (default:
            :obj:`True`)
        refined_embedding (str, optional): What the boundary refinement (and
            the memory) works on: :obj:`"shared"` the embedded features of the
            base branch (the paper), :obj:`"detached"` the same features
            without gradient, so that the refined and memory branches' losses
            train only the refinement and the shared head, or :obj:`"own"` a
            second embedding of the same shape (its own salient snippets and
            memory features). Not in the paper; :obj:`"detached"` is set in
            ``issf/thumos14`` (chosen on validation: the embedding is then
            trained by the base branch's losses and the pseudo labels only).
            (default: :obj:`"shared"`)
        soft_weight (float, optional): Multiplier of the soft-label CE term
            (:math:`w_s`; 1 = the paper). (default: :obj:`1.0`)
        background_memory (bool, optional): Give the discrimination memory a
            background class as well (:math:`C + 1` classes, every labelled
            video holds background, its slots the salient features of highest
            background probability), so that the memory branch can read a
            background prototype; in the paper the memory holds only the
            :math:`C` action classes, so every snippet reads the prototypes of
            its video's actions and the memory term of the pseudo labels pulls
            every snippet towards them. Not in the paper. (default: :obj:`False`)
        keep_background (bool, optional): Soft-label targets that keep the base
            branch's own (detached) background probability at the temperature
            and share only the rest among the action classes by the pseudo
            labels, so that they cannot teach the base branch that background
            snippets are actions (the paper's pseudo labels call 1-20 % of the
            snippets background where 65-68 % are). Not in the paper.
            (default: :obj:`False`)
        clean_teacher (bool, optional): Pseudo labels from a second forward
            pass without dropout (no gradient), while the base branch they teach
            keeps its dropout: a consistency target the student cannot meet by
            sharing the teacher's dropout mask (in the paper both come from the
            same pass). Not in the paper. (default: :obj:`False`)
        soft_mask (str, optional): Where the soft-label CE acts: :obj:`"none"`
            on every snippet (the paper), :obj:`"disagree"` only on the snippets
            whose pseudo label (arg max) differs from the base branch's own arg
            max, the others contributing 0 to the per-video mean (updates only
            on disagreement, as in Malach and Shalev-Shwartz's "decoupling"):
            where the refinement agrees with the base branch the term is a
            self-confirming sharpening of the base branch's own predictions.
            Not in the paper. (default: :obj:`"none"`)
        head (str, optional): :obj:`"cosine"` (the paper's scaled-cosine
            :class:`~tagraph.nn.CosineClassifier`) or :obj:`"linear"` (the same
            head with linear logits, :obj:`normalize=False`: the logits keep
            the features' magnitude, as MIL's CAS does; not in the paper).
            (default: :obj:`"cosine"`)
        pseudo_video_classes (bool, optional): Restrict the soft pseudo labels
            of every snippet to its video's ground-truth classes and background
            (the other classes' pseudo logits set to :math:`-\infty`); the paper
            spreads them over all :math:`C + 1` centres, so a snippet whose
            refined features point to an absent class teaches the base branch
            that class. (default: :obj:`False`)
        interaction_window (int, optional): If :obj:`> 0`, the boundary
            refinement's attention only reaches the salient / non-salient
            snippets within this many snippets (:class:`~tagraph.nn.InformationInteraction`
            :obj:`window`); not in the paper, whose attention spans the whole
            video. (default: :obj:`0`)
    """

    epoch: Tensor

    def __init__(
        self,
        in_channels: int = 2048,
        num_classes: int = 20,
        hidden_channels: int = 2048,
        dropout: float = 0.6,
        scale: float = 20.0,
        reduction: int = 4,
        mix: float = 0.12,
        saliency_ratio: float = 0.5,
        memory_size: int = 9,
        warmup_epochs: int = 85,
        max_epochs: int = 180,
        memory_start_epoch: int = 2,
        temporal_offsets: tuple[int, ...] = (-1, 1),
        use_refinement: bool = True,
        back_weight: float = 0.2,
        att_weight: float = 0.1,
        memory_weight: float = 0.5,
        temperature: float = 0.2,
        pseudo_mix: float = 0.8,
        detection_config: CASDetectionConfig | None = None,
        input_norm: str = "center_scale",
        embed_temporal: bool = False,
        mil_weight: float = 0.0,
        mil_ratio: int = 8,
        attention_scoring: bool = True,
        scaled_interaction: bool = False,
        pseudo_video_classes: bool = False,
        refined_embedding: str = "shared",
        soft_weight: float = 1.0,
        head: str = "cosine",
        background_memory: bool = False,
        keep_background: bool = False,
        clean_teacher: bool = False,
        soft_mask: str = "none",
        interaction_window: int = 0,
    ) -> None:
        super().__init__(detection_config if detection_config is not None
                         else issf_detection_config(),
                         in_channels=in_channels, input_norm=input_norm)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.hidden_channels = hidden_channels
        self.temporal_offsets = tuple(temporal_offsets)
        if -1 not in self.temporal_offsets:
            raise ValueError("ISSF needs temporal edges of offset -1 (predecessors)")
        self.use_refinement = use_refinement
        self.memory_start_epoch = memory_start_epoch
        self.back_weight = back_weight
        self.att_weight = att_weight
        self.memory_weight = memory_weight
        self.temperature = temperature
        self.pseudo_mix = pseudo_mix
        self.branch = "both"
        self.embed_temporal = bool(embed_temporal)
        if mil_weight < 0 or mil_ratio < 1:
            raise ValueError(f"ISSF: mil_weight must be >= 0 and mil_ratio >= 1 "
                             f"(got {mil_weight}, {mil_ratio})")
        self.mil_weight = float(mil_weight)
        self.pseudo_video_classes = bool(pseudo_video_classes)
        self.mil_ratio = int(mil_ratio)
        if refined_embedding not in ("shared", "detached", "own"):
            raise ValueError(f"ISSF: refined_embedding must be 'shared', 'detached' or 'own' "
                             f"(got {refined_embedding!r})")
        self.refined_embedding = refined_embedding
        if soft_weight < 0:
            raise ValueError(f"ISSF: soft_weight must be >= 0 (got {soft_weight})")
        self.soft_weight = float(soft_weight)
        self.attention_scoring = bool(attention_scoring)
        self.embed_conv, self.embed = self._embedding(in_channels, hidden_channels, dropout)
        self.own_conv: nn.Module | None = None
        self.own_embed: nn.Module | None = None
        if refined_embedding == "own":
            self.own_conv, self.own_embed = self._embedding(in_channels, hidden_channels, dropout)
        if head not in ("cosine", "linear"):
            raise ValueError(f"ISSF: head must be 'cosine' or 'linear' (got {head!r})")
        self.head_type = head
        self.head = CosineClassifier(hidden_channels, num_classes, scale,
                                     normalize=head == "cosine")
        self.saliency = SalientSnippets(saliency_ratio, self.temporal_offsets.index(-1))
        self.interaction = InformationInteraction(hidden_channels, reduction, mix,
                                                  scaled=scaled_interaction,
                                                  window=interaction_window)
        self.background_memory = bool(background_memory)
        self.keep_background = bool(keep_background)
        self.clean_teacher = bool(clean_teacher)
        if soft_mask not in ("none", "disagree"):
            raise ValueError(f"ISSF: soft_mask must be 'none' or 'disagree' (got {soft_mask!r})")
        self.soft_mask = soft_mask
        self.memory = DiscriminationMemory(num_classes + int(self.background_memory),
                                           hidden_channels, memory_size,
                                           warmup_epochs, max_epochs)
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.reset_parameters()

    def _embedding(self, in_channels: int, hidden_channels: int, dropout: float
                   ) -> tuple[nn.Module | None, nn.Module]:
        if self.embed_temporal:  # the embedding sees each snippet and its temporal neighbours
            from tagraph.nn.temporal_conv import TemporalConv

            return (TemporalConv(in_channels, hidden_channels, self.temporal_offsets),
                    nn.Sequential(nn.ReLU(), nn.Dropout(dropout)))
        return None, nn.Sequential(nn.Linear(in_channels, hidden_channels), nn.ReLU(),
                                   nn.Dropout(dropout))

    def reset_parameters(self) -> None:
        for conv, embed in ((self.embed_conv, self.embed), (self.own_conv, self.own_embed)):
            if embed is None:
                continue
            if conv is not None:
                conv.reset_parameters()
            else:
                nn.init.xavier_uniform_(embed[0].weight)
                nn.init.zeros_(embed[0].bias)
        self.head.reset_parameters()
        self.interaction.reset_parameters()
        self.memory.reset_parameters()

    def set_epoch(self, epoch: int) -> None:
        r"""Sets the current (0-based) training epoch."""
        self.epoch.fill_(int(epoch))

    def track_epochs(self, loader: Iterable) -> _EpochCounter:
        r"""Wraps a training loader so that every complete pass over it advances
        :obj:`epoch` by one (the counter is a buffer, so it is checkpointed and
        resumes with the model): ``trainer.fit(model.track_epochs(loader), ...)``."""
        return _EpochCounter(loader, self)

    # ------------------------------------------------------------------ forward
    @property
    def _class_wise(self) -> bool:
        # The class-wise video logits are only needed by the class-wise video loss.
        return self.back_weight != 0

    def forward(self, data: Any) -> ISSFOutput:
        return self._forward(snippet_batch(data, self.temporal_offsets, self.input_norm))

    def _forward(self, sb: SnippetBatch, refine: bool | None = None) -> ISSFOutput:
        refine = self.use_refinement if refine is None else refine
        x = self._embed(sb, self.embed_conv, self.embed)
        salient = self.saliency(x, sb.edge_index, sb.edge_type, sb.batch)
        base = self.head(x, sb.batch, sb.num_graphs, class_wise=self._class_wise)
        if not refine:
            return ISSFOutput(x, salient, base, None, None)
        r_in, r_sal = self._refine_input(sb, x, salient)
        feats = self.interaction(r_in, r_sal, sb.batch, sb.num_graphs)
        refined = self.head(feats, sb.batch, sb.num_graphs, class_wise=self._class_wise)
        return ISSFOutput(x, r_sal, base, feats, refined, r_in)

    def _embed(self, sb: SnippetBatch, conv: nn.Module | None, embed: nn.Module) -> Tensor:
        return embed(sb.x if conv is None else conv(sb.x, sb.edge_index, sb.edge_type))

    def _refine_input(self, sb: SnippetBatch, x: Tensor, salient: Tensor
                      ) -> tuple[Tensor, Tensor]:
        # The features the refinement and the memory work on, and their salient mask.
        if self.refined_embedding == "detached":
            return x.detach(), salient
        if self.refined_embedding == "own":
            assert self.own_embed is not None
            r_in = self._embed(sb, self.own_conv, self.own_embed)
            return r_in, self.saliency(r_in, sb.edge_index, sb.edge_type, sb.batch)
        return x, salient

    # ----------------------------------------------------------------- training
    def compute_loss(self, data: Any, update_memory: bool = True
                     ) -> tuple[Tensor, dict[str, float]]:
        self.check_batch(data)
        keep = self.labeled(data)
        sb = snippet_batch(data, self.temporal_offsets, self.input_norm)
        out = self._forward(sb)
        y = labels_of(data, sb.num_graphs, self.num_classes).to(out.features.dtype)
        if not bool(keep.any()):
            return out.features.sum() * 0.0, {}
        # Unlabeled videos take no part in the video losses nor the memory.
        y = y * keep.unsqueeze(-1).to(y.dtype)
        zeros = y.new_zeros(y.size(0), 1)
        y_fg, y_bg = torch.cat([y, zeros], 1), torch.cat([y, zeros + 1], 1)
        base = out.base
        fore = normalized_ce_loss(base.video_ca_logits[keep], y_fg[keep])
        # The class-wise video loss (None with back_weight = 0: the logits are skipped).
        back = self._back_loss(base, keep, y_bg)
        att = attention_contrast_loss(base.attention, sb.batch, num_graphs=sb.num_graphs)
        logs: dict[str, float] = {}
        spl = fore.new_zeros(())
        if out.refined is not None and out.refined_features is not None:
            fore = fore + normalized_ce_loss(out.refined.video_ca_logits[keep], y_fg[keep])
            back = _add(back, self._back_loss(out.refined, keep, y_bg))
            epoch = int(self.epoch)
            pseudo, mem, has, w_soft = self._pseudo_logits(out, sb, y, keep, epoch)
            if self.clean_teacher and self.training:
                with torch.no_grad():
                    self.eval()
                    try:
                        teacher = self._forward(sb)
                    finally:
                        self.train()
                    pseudo = self._pseudo_logits(teacher, sb, y, keep, epoch)[0]
            if mem is not None and has is not None:
                fore = fore + self.memory_weight * normalized_ce_loss(
                    mem.video_ca_logits[has], y_fg[has])
                mem_back = self._back_loss(mem, has, y_bg)
                if mem_back is not None:
                    back = _add(back, self.memory_weight * mem_back)
            weight = None
            if self.soft_mask == "disagree":
                # Only the snippets whose pseudo label the base branch does not
                # already predict: no self-confirmation where the two agree.
                weight = (pseudo.detach().argmax(-1) != base.frame_logits.detach().argmax(-1))
                logs["soft_frac"] = _f(weight.float().mean())
            spl = soft_label_ce_loss(base.frame_logits, pseudo, sb.batch, self.temperature,
                                     sb.num_graphs, weight=weight)
            if self.training and update_memory and epoch >= self.memory_start_epoch:
                self._update_memory(out, sb, y, epoch)
            logs["w_soft"] = w_soft
            spl_term = self.soft_weight * w_soft * spl
        else:
            spl_term = spl
        loss = fore + self.att_weight * att + spl_term
        if back is not None:
            loss = loss + self.back_weight * back
            logs["loss_back"] = _f(back)
        logs.update(loss_fore=_f(fore), loss_att=_f(att), loss_soft=_f(spl))
        if self.mil_weight > 0:
            mil = sum(self._mil_loss(h.frame_logits, sb, y_bg, keep)
                      for h in (base, out.refined) if h is not None)
            loss = loss + self.mil_weight * mil
            logs["loss_mil"] = _f(mil)
        return loss, logs

    def _back_loss(self, head: CosineClassifierOutput, keep: Tensor, y_bg: Tensor
                   ) -> Tensor | None:
        if head.video_cw_logits is None:
            return None
        return normalized_ce_loss(head.video_cw_logits[keep], y_bg[keep])

    def _pseudo_logits(self, out: ISSFOutput, sb: SnippetBatch, y: Tensor, keep: Tensor,
                       epoch: int) -> tuple[Tensor, CosineClassifierOutput | None,
                                            Tensor | None, float]:
        # The pseudo logits the base branch is taught with, the memory branch's head
        # output and its video mask (None before the memory is used), and w_s.
        assert out.refined is not None and out.refined_features is not None
        pseudo = out.refined.frame_logits
        mem: CosineClassifierOutput | None = None
        has: Tensor | None = None
        w_soft = 1.0
        if epoch >= self.memory_start_epoch:
            mem_feat, has = self.memory.read(out.refined_features, sb.batch,
                                             self._memory_labels(y), sb.num_graphs)
            has = has & keep
            if bool(has.any()):
                mem = self.head(mem_feat, sb.batch, sb.num_graphs,
                                class_wise=self._class_wise)
                mixed = self.pseudo_mix * pseudo + (1.0 - self.pseudo_mix) * mem.frame_logits
                pseudo = torch.where(has[sb.batch].unsqueeze(-1), mixed, pseudo)
                w_soft = 0.5
        if self.pseudo_video_classes:
            # Pseudo labels only among the video's own classes and background.
            allowed = torch.cat([y > 0, y.new_ones(y.size(0), 1, dtype=torch.bool)], 1)
            allowed = allowed | ~keep.unsqueeze(-1)
            pseudo = pseudo.masked_fill(~allowed[sb.batch], float("-inf"))
        if self.keep_background:
            # The targets keep the base branch's own background probability; the
            # pseudo labels only share the rest among the action classes.
            t = self.temperature
            target = F.softmax(pseudo.detach() / t, dim=-1)
            p_bg = F.softmax(out.base.frame_logits.detach() / t, dim=-1)[:, -1:]
            fg = target[:, :-1]
            fg = fg / fg.sum(-1, keepdim=True).clamp_min(1e-12) * (1.0 - p_bg)
            pseudo = t * torch.log(torch.cat([fg, p_bg], -1).clamp_min(1e-30))
        return pseudo, mem, has, w_soft

    @torch.no_grad()
    def pseudo_labels(self, batch: Any) -> Tensor:
        r"""The soft-label targets the base branch is trained towards at the
        current :obj:`epoch`, :math:`\mathrm{softmax}(\hat{z}_t / \tau)`
        :obj:`[N, C + 1]` (refined and, once used, memory logits; eval mode, no
        memory update): a diagnostic of what the refinement teaches, e.g. how many
        snippets it calls background."""
        if not self.use_refinement:
            raise ValueError("ISSF(use_refinement=False) has no pseudo labels")
        was_training = self.training
        self.eval()
        try:
            sb = snippet_batch(batch, self.temporal_offsets, self.input_norm)
            out = self._forward(sb)
            y = labels_of(batch, sb.num_graphs, self.num_classes).to(out.features.dtype)
            keep = self.labeled(batch)
            pseudo = self._pseudo_logits(out, sb, y * keep.unsqueeze(-1).to(y.dtype), keep,
                                         int(self.epoch))[0]
        finally:
            self.train(was_training)
        return F.softmax(pseudo / self.temperature, dim=-1)

    def _mil_loss(self, frame_logits: Tensor, sb: SnippetBatch, y_bg: Tensor,
                  keep: Tensor) -> Tensor:
        # Top-k MIL on the frame logits (all C + 1 centres, background positive in
        # every video, as BaS-Net's base branch): supervises the CAS itself.
        video = topk_mean_pool(frame_logits, sb.batch, ratio=self.mil_ratio,
                               num_graphs=sb.num_graphs)
        return normalized_ce_loss(video[keep], y_bg[keep])

    def _memory_labels(self, y: Tensor) -> Tensor:
        # The memory's classes of every video: its labels, and with a background
        # memory also the background of every labelled video.
        if not self.background_memory:
            return y
        return torch.cat([y, (y > 0).any(1, keepdim=True).to(y.dtype)], 1)

    def _update_memory(self, out: ISSFOutput, sb: SnippetBatch, y: Tensor, epoch: int) -> None:
        sal = out.salient
        feats = out.features if out.refine_input is None else out.refine_input
        probs = F.softmax(out.base.frame_logits[sal].detach(), dim=-1)
        self.memory.update(feats[sal], probs, sb.batch[sal], self._memory_labels(y), epoch)

    @torch.no_grad()
    def fill_memory(self, loader: Iterable) -> None:
        r"""Fills the memory from one pass over :obj:`loader` in eval mode (the
        official initialisation at the end of the last epoch before
        :obj:`memory_start_epoch`; :meth:`track_epochs` calls it): the
        :obj:`memory_size` best-scoring salient features of every class among
        the videos labelled with it, scored by the base branch's class
        probabilities. Unlabelled videos take no part."""
        was_training = self.training
        self.eval()
        device = self.epoch.device
        try:
            for batch in loader:
                if hasattr(batch, "to"):
                    batch = batch.to(device)
                sb = snippet_batch(batch, self.temporal_offsets, self.input_norm)
                out = self._forward(sb, refine=False)
                if self.refined_embedding == "own":
                    r_in, r_sal = self._refine_input(sb, out.features, out.salient)
                    out = out._replace(salient=r_sal, refine_input=r_in)
                y = labels_of(batch, sb.num_graphs, self.num_classes).to(out.features.dtype)
                self._update_memory(out, sb, y, int(self.epoch))
        finally:
            self.train(was_training)

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        return self.compute_loss(batch)

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, float]:
        loss, logs = self.compute_loss(batch, update_memory=False)
        return {"loss": _f(loss), **logs}

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def scores(self, batch: Any, branch: str = "both") -> tuple[Tensor, Tensor, SnippetBatch]:
        r"""Video probabilities :obj:`[B, C]` and attention-weighted frame
        probabilities :obj:`[N, C]` of :obj:`branch` (:obj:`"both"` = 0.6 base +
        0.4 refined, :obj:`"base"`, :obj:`"refined"`)."""
        if branch not in ("both", "base", "refined"):
            raise ValueError(f"ISSF: unknown branch {branch!r}")
        was_training = self.training
        self.eval()
        try:
            sb = snippet_batch(batch, self.temporal_offsets, self.input_norm)
            refine = branch != "base" and self.use_refinement
            if branch == "refined" and not self.use_refinement:
                raise ValueError("ISSF(use_refinement=False) has no refined branch")
            out = self._forward(sb, refine=refine)
        finally:
            self.train(was_training)
        c = self.num_classes
        vid_b = F.softmax(out.base.video_ca_logits, -1)
        frm_b = F.softmax(out.base.frame_logits, -1)
        if out.refined is None:
            vid, frm = vid_b, frm_b
        else:
            vid_r = F.softmax(out.refined.video_ca_logits, -1)
            frm_r = F.softmax(out.refined.frame_logits, -1)
            if branch == "refined":
                vid, frm = vid_r, frm_r
            else:
                vid, frm = 0.6 * vid_b + 0.4 * vid_r, 0.6 * frm_b + 0.4 * frm_r
        if self.attention_scoring:
            frm = frm * out.base.attention.unsqueeze(-1)
        return vid[:, :c], frm[:, :c], sb

    def localization_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        r"""Attention-weighted frame probabilities and video probabilities of
        :attr:`branch` (see :meth:`scores`)."""
        vid, frm, _ = self.scores(batch, self.branch)
        return frm, vid, None

    @torch.no_grad()
    def predict(self, batch: Any, branch: str | None = None) -> CASDetections:
        r"""Detections (times in seconds; needs :obj:`pos`, uses :obj:`duration`)
        from :obj:`branch` (:obj:`"both"`, :obj:`"base"` or :obj:`"refined"`;
        default: the :attr:`branch` attribute, :obj:`"both"` unless set)."""
        previous = self.branch
        self.branch = previous if branch is None else branch
        try:
            return super().predict(batch)
        finally:
            self.branch = previous

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, num_classes={self.num_classes}, "
                f"hidden_channels={self.hidden_channels}, "
                f"use_refinement={self.use_refinement}"
                + ("" if self.refined_embedding == "shared"
                   else f", refined_embedding={self.refined_embedding!r}")
                + ("" if self.head_type == "cosine" else f", head={self.head_type!r}")
                + (", background_memory=True" if self.background_memory else "")
                + (", keep_background=True" if self.keep_background else "")
                + (", clean_teacher=True" if self.clean_teacher else "")
                + ("" if self.soft_mask == "none" else f", soft_mask={self.soft_mask!r}") + ")")
