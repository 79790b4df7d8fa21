import torch
from torch_geometric.data import Batch, Data


def snippet_video(t, c=4, d=16, vid="v", labels=(0,), seed=0, spacing=0.5):
    g = torch.Generator().manual_seed(seed)
    y = torch.zeros(1, c)
    y[0, list(labels)] = 1.0
    return Data(x=torch.randn(t, d, generator=g), pos=(torch.arange(t) + 0.5) * spacing, y=y,
                video_id=vid, duration=t * spacing)


def snippet_batch(lengths=(20, 9, 33), c=4, d=16):
    return Batch.from_data_list([
        snippet_video(t, c, d, vid=f"vid{i}", labels=(i % c,), seed=i)
        for i, t in enumerate(lengths)
    ])
