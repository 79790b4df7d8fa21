import torch
from torch_geometric.data import Data

from tagraph.nn.temporal_conv import temporal_edges
from tagraph.transforms import RandomSnippetCrop


def test_random_crop_keeps_consistent_graph():
    t = 30
    ei, et = temporal_edges(torch.tensor([0, t]), (-1, 1))
    sem = torch.stack([torch.arange(t), (torch.arange(t) + 7) % t])
    ei = torch.cat([ei, sem], 1)
    et = torch.cat([et, torch.full((t,), 2)])
    data = Data(x=torch.arange(t, dtype=torch.float32)[:, None], pos=torch.arange(t) * 0.5,
                edge_index=ei, edge_type=et, edge_weight=torch.arange(ei.size(1)).float(),
                clicks=torch.tensor([2, 15, 29]), click_labels=torch.tensor([4, 4, 1]),
                y=torch.ones(1, 3), num_nodes=t)
    crop = RandomSnippetCrop(10, generator=torch.Generator().manual_seed(3))
    out = crop(data)
    start = int(out.x[0, 0])
    assert out.num_nodes == 10 and torch.equal(out.x[:, 0], torch.arange(start, start + 10.0))
    assert torch.equal(out.pos, data.pos[start:start + 10])
    # every kept edge maps back to an original edge with the same type and weight
    orig = {(int(s), int(d)): (int(ty), float(w)) for s, d, ty, w in
            zip(ei[0], ei[1], et, data.edge_weight)}
    for (s, d), ty, w in zip(out.edge_index.T.tolist(), out.edge_type.tolist(),
                             out.edge_weight.tolist()):
        assert orig[(s + start, d + start)] == (ty, w)
    assert int(((ei >= start) & (ei < start + 10)).all(0).sum()) == out.edge_index.size(1)
    assert ((out.clicks >= 0) & (out.clicks < 10)).all()
    assert out.click_labels.numel() == out.clicks.numel()
    assert torch.equal(out.y, data.y)
    short = Data(x=torch.zeros(5, 1), pos=torch.zeros(5))
    assert crop(short).x.size(0) == 5
    assert repr(crop) == "RandomSnippetCrop(length=10)"
