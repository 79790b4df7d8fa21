"""Cosine classifier with class centres and a foreground-centre attention (ISSF)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

__all__ = ["CosineClassifier", "CosineClassifierOutput"]


class CosineClassifierOutput(NamedTuple):
    frame_logits: Tensor  #: [N, C + 1] scaled cosine to every class centre
    attention: Tensor  #: [N] class-agnostic attention in (0, 1)
    video_ca_logits: Tensor  #: [B, C + 1] from the attention-pooled video feature
    #: [B, C + 1] from the class-wise pooled video features (``None`` when not asked for)
    video_cw_logits: Tensor | None


class CosineClassifier(nn.Module):
    r"""The prediction head of ISSF (`"Weakly-Supervised Temporal Action
    Localization by Inferring Salient Snippet-Feature"
    <https://doi.org/10.1609/aaai.v38i7.28516>`_, Yun et al., AAAI 2024):
    :math:`C + 1` class centres :math:`\mathbf{w}_c` (the last one is
    background) and a foreground centre :math:`\mathbf{w}_{fg}`,

    .. math::
        s_{t,c} = \sigma \cos(\mathbf{x}_t, \mathbf{w}_c), \qquad
        a_t = \mathrm{sigmoid}\!\left(\sigma \cos(\mathbf{x}_t,
        \mathbf{w}_{fg})\right)

    Video logits: class-agnostic, :math:`\sigma \cos(\sum_t \bar{a}_t
    \mathbf{x}_t, \mathbf{w}_c)` with :math:`\bar{a}_t = a_t / (\sum_{t'}
    a_{t'} + 10^{-5})`; class-wise, :math:`\sigma \cos(\sum_t \bar{b}_{t,c}
    \mathbf{x}_t, \mathbf{w}_c)` with :math:`b_{t,c} = \mathrm{sigmoid}(s_{t,c})`
    normalised the same way per class. Sums run over each video of the batch.

    With :obj:`normalize=False` the same head is linear: :math:`\cos(\cdot,
    \mathbf{w})` becomes :math:`\mathbf{w}^{\top} \cdot + b` (a bias per
    centre, no scale :math:`\sigma`), so that the logits keep the features'
    magnitude (not in the paper).

    Args:
        channels (int): Feature size.
        num_classes (int): Number of action classes :math:`C` (a background
            centre is added).
        scale (float, optional): :math:`\sigma`. (default: :obj:`20.0`)
        eps (float, optional): Added to norms. (default: :obj:`1e-9`)
        normalize (bool, optional): Cosine (the paper) or linear logits.
            (default: :obj:`True`)

    Shapes:
        - **inputs:** snippet features :math:`(|\mathcal{V}|, D)`, batch vector
          :math:`(|\mathcal{V}|)` *(optional)*
        - **output:** :class:`CosineClassifierOutput` (frame logits
          :math:`(|\mathcal{V}|, C + 1)`, attention :math:`(|\mathcal{V}|)`,
          two video logits :math:`(B, C + 1)`)
    """

    def __init__(self, channels: int, num_classes: int, scale: float = 20.0,
                 eps: float = 1e-9, normalize: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.num_classes = num_classes
        self.scale = scale
        self.eps = eps
        self.normalize = bool(normalize)
        self.centers = nn.Parameter(torch.empty(num_classes + 1, channels))
        self.fg_center = nn.Parameter(torch.empty(1, channels))
        self.bias: nn.Parameter | None = None
        self.fg_bias: nn.Parameter | None = None
        if not self.normalize:
            self.bias = nn.Parameter(torch.empty(num_classes + 1))
            self.fg_bias = nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.centers)
        with torch.no_grad():  # foreground centre starts opposite to background
            self.fg_center.copy_(-self.centers[-1:])
        if self.bias is not None and self.fg_bias is not None:
            nn.init.zeros_(self.bias)
            nn.init.zeros_(self.fg_bias)

    def _normalize(self, x: Tensor) -> Tensor:
        if not self.normalize:
            return x
        return x / (x.norm(dim=-1, keepdim=True) + self.eps)

    def _logits(self, x_n: Tensor, w_n: Tensor, bias: Tensor | None) -> Tensor:
        # x_n [..., D] and w_n [K, D] already normalised (or not): [..., K]
        if bias is None:
            return self.scale * x_n @ w_n.t()
        return x_n @ w_n.t() + bias

    def frame_logits(self, x: Tensor) -> Tensor:
        r"""Scaled cosine (or linear logit) of every snippet to every class
        centre, :obj:`[N, C + 1]`."""
        return self._logits(self._normalize(x), self._normalize(self.centers), self.bias)

    def forward(self, x: Tensor, batch: Tensor | None = None,
                num_graphs: int | None = None, class_wise: bool = True
                ) -> CosineClassifierOutput:
        r"""Frame logits, attention and the video logits; with
        :obj:`class_wise=False` the class-wise video logits (a :math:`(B, C + 1,
        T) \times (B, T, D)` product) are skipped and returned as ``None``."""
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        x_n = self._normalize(x)
        c_n = self._normalize(self.centers)
        frame = self._logits(x_n, c_n, self.bias)
        att = torch.sigmoid(self._logits(x_n, self._normalize(self.fg_center),
                                         self.fg_bias).squeeze(-1))
        xd, mask = to_dense_batch(x, batch, batch_size=num_graphs)  # [B, T, D]
        att_d, _ = to_dense_batch(att, batch, batch_size=num_graphs)  # [B, T], 0 at padding
        att_d = att_d / (att_d.sum(1, keepdim=True) + 1e-5)
        ca_feat = (att_d.unsqueeze(1) @ xd).squeeze(1)  # [B, D]
        ca = self._logits(self._normalize(ca_feat), c_n, self.bias)
        if not class_wise:
            return CosineClassifierOutput(frame, att, ca, None)
        cw_att, _ = to_dense_batch(torch.sigmoid(frame), batch, batch_size=num_graphs)
        cw_att = cw_att * mask.unsqueeze(-1)
        cw_att = cw_att / (cw_att.sum(1, keepdim=True) + 1e-5)
        cw_feat = cw_att.transpose(1, 2) @ xd  # [B, C + 1, D]
        cw = (self._normalize(cw_feat) * c_n.unsqueeze(0)).sum(-1)
        cw = self.scale * cw if self.bias is None else cw + self.bias
        return CosineClassifierOutput(frame, att, ca, cw)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, num_classes={self.num_classes}, "
                f"scale={self.scale}" + ("" if self.normalize else ", normalize=False") + ")")
