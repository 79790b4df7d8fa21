"""The top-k multiple-instance learning baseline of weakly supervised TAL (W-TALC / BaS-Net)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tagraph.models.wtal import WeaklySupervisedTAL, batch_vectors, wtal_detection_config
from tagraph.nn.mil import normalized_ce_loss, topk_mean_pool
from tagraph.nn.temporal_conv import TemporalConv
from tagraph.ops.cas import CASDetectionConfig

__all__ = ["MIL", "wtal_detection_config"]

#: MIL's class threshold in :func:`~tagraph.models.wtal_detection_config`
#: (classes whose video score is at least this fraction of the best class's).
MIL_CLASS_THRESHOLD = 0.25


class MIL(WeaklySupervisedTAL):
    r"""The top-:math:`k` multiple-instance learning baseline of weakly
    supervised temporal action localization, as in W-TALC ("W-TALC: Weakly-
    supervised Temporal Activity Localization and Classification", Paul et
    al., ECCV 2018; its MIL loss) and the base branch of BaS-Net (Lee et al.,
    AAAI 2020): the reference every weakly supervised method is compared
    against, as the MLP is for P-GCN.

    A class activation sequence from a small temporal network on the
    normalised features (:class:`~tagraph.nn.InputNorm`),

    .. math::
        \mathrm{CAS} = \mathbf{W}_2\, \mathrm{Dropout}(\mathrm{ReLU}(
        \mathrm{TemporalConv}_{k=3}(\mathbf{x}))),

    top-:math:`k` mean pooling into video logits
    (:math:`k_i = \max(1, \lfloor T_i / r \rfloor)`,
    :func:`~tagraph.nn.topk_mean_pool`) and the multi-label cross-entropy
    with labels normalised to sum 1 (:func:`~tagraph.nn.normalized_ce_loss`):

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_i \sum_c \frac{y_{ic}}{\sum_{c'} y_{ic'}}
        \log \mathrm{softmax}\big(\tfrac{1}{k_i} \textstyle\sum_{t \in
        \mathrm{top}k_i} \mathrm{CAS}_{t,\cdot}\big)_c.

    Inference: video scores :math:`\mathrm{softmax}` of the pooled logits, the
    CAS through the shared scale-free detection path
    (:func:`~tagraph.models.wtal_detection_config` with classes of at least
    0.25 of the best video score, chosen on validation).

    Args:
        in_channels (int): Feature size :math:`D`.
        num_classes (int): Number of classes :math:`C`.
        hidden_channels (int, optional): Width of the temporal layer.
            (default: :obj:`512`)
        dropout (float, optional): Dropout before the classifier.
            (default: :obj:`0.5`)
        offsets (Sequence[int], optional): Temporal offsets of the first
            layer (kernel 3 = :obj:`(-1, 1)`). (default: :obj:`(-1, 1)`)
        topk_ratio (int, optional): :math:`r`. (default: :obj:`8`)
        input_norm (str, optional): :class:`~tagraph.nn.InputNorm` mode.
            (default: :obj:`"center_scale"`)
        detection_config (CASDetectionConfig, optional): Post-processing.
            (default: :func:`~tagraph.models.wtal_detection_config` with
            :obj:`class_threshold=0.25`)
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int = 512,
        dropout: float = 0.5,
        offsets: Sequence[int] = (-1, 1),
        topk_ratio: int = 8,
        input_norm: str = "center_scale",
        detection_config: CASDetectionConfig | None = None,
    ) -> None:
        super().__init__(detection_config
                         or wtal_detection_config(class_threshold=MIL_CLASS_THRESHOLD),
                         in_channels=in_channels, input_norm=input_norm)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.hidden_channels, self.topk_ratio = hidden_channels, int(topk_ratio)
        self.offsets = tuple(int(o) for o in offsets)
        self.conv = TemporalConv(in_channels, hidden_channels, self.offsets)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_channels, num_classes)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        self.classifier.reset_parameters()

    def forward(self, batch: Any) -> tuple[Tensor, Tensor]:
        r"""Returns the CAS :obj:`[N, C]` and the pooled video logits :obj:`[B, C]`."""
        b, _, num_graphs = batch_vectors(batch)
        ei, et = self.temporal_graph(batch, self.offsets)
        h = F.relu(self.conv(self.input_norm(batch.x), ei, et))
        cas = self.classifier(self.dropout(h))
        return cas, topk_mean_pool(cas, b, self.topk_ratio, num_graphs=num_graphs)

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        self.check_batch(batch)
        keep = self.labeled(batch)
        cas, logits = self.forward(batch)
        if not bool(keep.any()):
            return cas.sum() * 0.0, {"loss_cls": 0.0}
        loss = normalized_ce_loss(logits[keep], batch.y[keep].to(logits.dtype))
        return loss, {"loss_cls": float(loss.detach())}

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, float]:
        loss, logs = self.training_step(batch)
        return {"loss": float(loss), **logs}

    def localization_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        cas, logits = self.forward(batch)
        return cas, torch.softmax(logits, -1), None

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.num_classes}, "
                f"hidden_channels={self.hidden_channels}, topk_ratio={self.topk_ratio})")
