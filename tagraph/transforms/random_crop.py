"""Random temporal crop of a snippet graph (fixed-T training of weakly supervised models)."""

from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

__all__ = ["RandomSnippetCrop"]


@functional_transform("tagraph_random_snippet_crop")
class RandomSnippetCrop(BaseTransform):
    r"""Keeps :obj:`length` consecutive snippets, starting at a uniformly random
    snippet, of videos longer than that (functional name:
    :obj:`tagraph_random_snippet_crop`), the random-crop training mode of
    weakly supervised TAL codes (T = 750 on THUMOS14). Use it as a
    :obj:`transform` (not a :obj:`pre_transform`: every epoch draws a new
    crop); deterministic resampling is the datasets' :obj:`max_snippets`.

    :obj:`x` and :obj:`pos` (times stay absolute seconds) are sliced; edges
    with both ends inside the crop are kept and re-indexed together with
    :obj:`edge_weight` / :obj:`edge_type`; :obj:`clicks` inside are shifted,
    the others dropped with their :obj:`click_labels`. Video labels and
    ground truth (seconds) are unchanged.

    Args:
        length (int): Snippets kept.
        generator (torch.Generator, optional): Random source. (default: :obj:`None`)
    """

    def __init__(self, length: int, generator: torch.Generator | None = None) -> None:
        if length < 1:
            raise ValueError(f"RandomSnippetCrop: 'length' must be >= 1, got {length}")
        self.length = int(length)
        self.generator = generator

    def forward(self, data: Data) -> Data:
        t = data.num_nodes
        if t <= self.length:
            return data
        start = int(torch.randint(0, t - self.length + 1, (1,), generator=self.generator))
        end = start + self.length
        data = data.clone()
        data.x = data.x[start:end]
        if "pos" in data and data.pos is not None:
            data.pos = data.pos[start:end]
        if "edge_index" in data and data.edge_index is not None:
            ei = data.edge_index
            keep = (ei >= start).all(0) & (ei < end).all(0)
            n_edges = ei.size(1)
            for key in ("edge_weight", "edge_type", "edge_attr"):
                if key in data and data[key] is not None and data[key].size(0) == n_edges:
                    data[key] = data[key][keep]
            data.edge_index = ei[:, keep] - start
        if "clicks" in data and data.clicks is not None:
            inside = (data.clicks >= start) & (data.clicks < end)
            data.clicks = data.clicks[inside] - start
            if "click_labels" in data and data.click_labels is not None:
                data.click_labels = data.click_labels[inside]
        data.num_nodes = self.length
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(length={self.length})"
