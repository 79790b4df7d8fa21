"""Input feature normalisation fitted on the training videos (scale- and offset-free models)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["InputNorm", "feature_moments"]

MODES = ("center_scale", "standardize", "none")


def feature_moments(features: Iterable[Tensor]) -> tuple[Tensor, Tensor, int]:
    r"""Per-channel mean and (biased) variance of the rows of all tensors in
    :obj:`features` (each :obj:`[T_i, D]`), accumulated in float64 by
    Chan et al.'s pairwise update, so one pass over a dataset suffices and
    the result does not depend on how the rows are split into videos.

    Returns:
        (torch.Tensor, torch.Tensor, int): :obj:`mean [D]`, :obj:`var [D]` and
        the number of rows.
    """
    n = 0
    mean: Tensor | None = None
    m2: Tensor | None = None
    for x in features:
        x = x.detach().to(torch.float64).reshape(-1, x.size(-1))
        k = x.size(0)
        if k == 0:
            continue
        mu = x.mean(0)
        d2 = ((x - mu) ** 2).sum(0)
        if mean is None or m2 is None:
            n, mean, m2 = k, mu, d2
            continue
        if x.size(1) != mean.numel():
            raise ValueError(f"feature_moments: rows of {x.size(1)} channels after rows of "
                             f"{mean.numel()}")
        tot = n + k
        delta = mu - mean
        mean = mean + delta * (k / tot)
        m2 = m2 + d2 + delta * delta * (n * k / tot)
        n = tot
    if mean is None or m2 is None:
        raise ValueError("feature_moments: no feature rows")
    return mean, m2 / n, n


class InputNorm(nn.Module):
    r"""Affine normalisation of snippet features with statistics of the
    training videos, so that a model sees the same input whatever the feature
    extractor's offset and scale (non-negative I3D-like features of mean 0.4,
    signed ones, :math:`\times 0.1` or :math:`\times 10`):

    .. math::
        \mathbf{x}' = \frac{\mathbf{x} - \boldsymbol{\mu}}{\sigma}, \qquad
        \sigma = \sqrt{\tfrac{1}{D} \textstyle\sum_d \sigma_d^2}
        \quad (\texttt{"center\_scale"}), \qquad
        \sigma_d \quad (\texttt{"standardize"}),

    with :math:`\boldsymbol{\mu}, \sigma_d^2` the per-channel mean and variance
    over all training snippets (:meth:`fit`). :obj:`"center_scale"` (the
    default) removes the offset and one global scale and keeps the relative
    variance of the channels (a rarely active channel is not blown up to unit
    variance); :obj:`"standardize"` scales every channel to unit variance.
    Until :meth:`fit` is called it is the identity. The statistics are
    buffers: they travel with :meth:`state_dict`, so a checkpoint normalises
    test features exactly as in training. A state dict without them (written
    before this layer existed) loads as the identity.

    Why: with a large common offset (non-negative features) every input
    shares one dominant direction; gradients of the first layer then mostly
    move that direction and the models never leave chance level (measured:
    ECM's classification loss stayed at :math:`\ln C`).

    Args:
        in_channels (int): Feature size :math:`D`.
        mode (str, optional): :obj:`"center_scale"`, :obj:`"standardize"` or
            :obj:`"none"`. (default: :obj:`"center_scale"`)
        eps (float, optional): Channels whose standard deviation is below
            :obj:`eps` times the largest one are only centred.
            (default: :obj:`1e-6`)

    Shapes:
        - **input:** :obj:`[N, D]`
        - **output:** :obj:`[N, D]`
    """

    mean: Tensor
    scale: Tensor
    fitted: Tensor

    def __init__(self, in_channels: int, mode: str = "center_scale", eps: float = 1e-6) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"InputNorm: unknown mode '{mode}' ({', '.join(MODES)})")
        self.in_channels, self.mode, self.eps = int(in_channels), mode, float(eps)
        self.register_buffer("mean", torch.zeros(self.in_channels))
        self.register_buffer("scale", torch.ones(self.in_channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def reset_parameters(self) -> None:
        self.mean.zero_()
        self.scale.fill_(1.0)
        self.fitted.fill_(False)

    @torch.no_grad()
    def set_moments(self, mean: Tensor, var: Tensor) -> None:
        r"""Sets the statistics from a per-channel mean and variance (a no-op
        for :obj:`mode="none"`)."""
        if self.mode == "none":
            return
        if mean.numel() != self.in_channels or var.numel() != self.in_channels:
            raise ValueError(f"InputNorm: moments of {mean.numel()} channels for a layer of "
                             f"{self.in_channels}")
        if not (torch.isfinite(mean).all() and torch.isfinite(var).all()):
            raise ValueError("InputNorm: non-finite feature moments")
        var = var.to(torch.float64).clamp(min=0)
        std = var.sqrt()
        if self.mode == "center_scale":
            s = var.mean().sqrt()
            scale = torch.full_like(std, float(s) if float(s) > 0 else 1.0)
        else:
            floor = self.eps * float(std.max()) if std.numel() else 0.0
            scale = torch.where(std > floor, std, torch.ones_like(std))
            if floor == 0.0:
                scale = torch.ones_like(std)
        self.mean.copy_(mean.to(self.mean.dtype))
        self.scale.copy_(scale.to(self.scale.dtype))
        self.fitted.fill_(True)

    def fit(self, features: Iterable[Tensor]) -> InputNorm:
        r"""Fits the statistics on an iterable of :obj:`[T_i, D]` feature
        tensors (e.g. ``(g.x for g in train_graphs)``); with
        :obj:`mode="none"` the data is not read."""
        if self.mode == "none":
            return self
        mean, var, _ = feature_moments(features)
        self.set_moments(mean, var)
        return self

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "none" or not bool(self.fitted):
            return x
        return (x - self.mean.to(x.dtype)) / self.scale.to(x.dtype)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # Checkpoints written before the layer existed: identity.
        for name, value in (("mean", self.mean), ("scale", self.scale),
                            ("fitted", self.fitted)):
            if prefix + name not in state_dict:
                state_dict[prefix + name] = (torch.zeros_like(value) if name != "scale"
                                             else torch.ones_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, mode='{self.mode}')"
