"""Sparse CSR tensors without torch's "beta" warning on every construction."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

__all__ = ["csr_tensor"]


def csr_tensor(crow: Tensor, col: Tensor, values: Tensor, size: tuple[int, int],
               **kwargs: Any) -> Tensor:
    r""":func:`torch.sparse_csr_tensor`, without the "Sparse CSR tensor support is in
    beta state" :class:`UserWarning` torch raises on first use (a user of
    ``tagraph train`` would otherwise read it as a problem of their data)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, size, **kwargs)
