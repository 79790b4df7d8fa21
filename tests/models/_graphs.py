"""Tiny hand-made snippet graphs for model tests."""

import torch
from torch_geometric.data import Batch, Data

from tagraph.nn.temporal_conv import temporal_edges


def snippet_graph(t, d, y, vid, clicks=(), click_labels=(), seed=0):
    gen = torch.Generator().manual_seed(seed)
    ei, et = temporal_edges(torch.tensor([0, t]))
    return Data(
        x=torch.randn(t, d, generator=gen), edge_index=ei, edge_type=et,
        y=torch.tensor([y], dtype=torch.float), pos=(torch.arange(t) * 16 + 8) / 25.0,
        clicks=torch.tensor(list(clicks), dtype=torch.long),
        click_labels=torch.tensor(list(click_labels), dtype=torch.long),
        video_id=vid, duration=torch.tensor([t * 16 / 25.0]),
    )


def batch_of(*graphs):
    return Batch.from_data_list(list(graphs))
