import pytest
import torch
from torch_geometric.data import Data

from tagraph.loader import (
    BACKGROUND,
    FOREGROUND,
    INCOMPLETE,
    PGCNTrainLoader,
    proposal_sample_types,
    select_training_proposals,
)


def proposal_graph(seed, n=30, d=4, with_fg=True, with_inc=True):
    g = torch.Generator().manual_seed(seed)
    iou = torch.rand(n, generator=g)
    if not with_fg:
        iou = iou.clamp(max=0.6)
    iou[:2] = 0.0  # two background proposals
    iou[2:10] = 0.1 + 0.15 * torch.rand(8, generator=g)  # eight incomplete candidates
    ov = torch.rand(n, generator=g).clamp(min=0.05)
    y = torch.randint(1, 4, (n,), generator=g)
    if not with_inc:
        y = torch.where(iou < 0.3, 0, y)
    y = torch.where(iou < 0.01, 0, y)
    ei = torch.randint(0, n, (2, 4 * n), generator=g)
    return Data(x=torch.randn(n, d, generator=g), x_ext=torch.randn(n, 3 * d, generator=g),
                edge_index=ei, edge_weight=torch.rand(4 * n, generator=g), y=y, iou=iou,
                overlap_self=ov, reg_target=torch.randn(n, 2, generator=g), num_nodes=n)


def test_sample_types():
    data = Data(iou=torch.tensor([0.8, 0.8, 0.2, 0.2, 0.005, 0.5]),
                overlap_self=torch.tensor([1.0, 1.0, 0.5, 0.005, 0.0, 0.9]),
                y=torch.tensor([2, 0, 1, 1, 0, 1]))
    assert proposal_sample_types(data).tolist() == [FOREGROUND, -1, INCOMPLETE, -1, BACKGROUND,
                                                    -1]


def test_selection_ratio_and_missing_counts():
    types = torch.tensor([0, 1, 1, 1, 2, 2, 1, 1, 2, 0, 0, -1])
    video = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    seeds, missing = select_training_proposals(types, video, (1, 2, 1),
                                               torch.Generator().manual_seed(0))
    got = torch.stack([video[seeds], types[seeds]], 1).tolist()
    per = {(v, t): sum(1 for g in got if g == [v, t]) for v in range(3) for t in range(3)}
    assert per == {(0, 0): 1, (0, 1): 2, (0, 2): 1, (1, 0): 0, (1, 1): 2, (1, 2): 1,
                   (2, 0): 1, (2, 1): 0, (2, 2): 0}
    assert missing == {"foreground": 1, "incomplete": 1, "background": 1}
    assert seeds.unique().numel() == seeds.numel()
    # Uniform over candidates: each of video 0's 3 incompletes picked 2/3 of the time.
    counts = torch.zeros(12)
    g = torch.Generator().manual_seed(1)
    for _ in range(600):
        s, _ = select_training_proposals(types, video, (1, 2, 1), g)
        counts[s] += 1
    torch.testing.assert_close(counts[1:4] / 600, torch.full((3,), 2 / 3), atol=0.07, rtol=0)


def test_pgcn_train_loader_batches_and_warning():
    graphs = [proposal_graph(s) for s in range(5)] + [proposal_graph(9, with_fg=False)]
    loader = PGCNTrainLoader(graphs, [4, 4], batch_size=16, sampler="tagraph")
    with pytest.warns(UserWarning, match="1 without foreground"):
        batches = list(loader)
    assert loader.missing["foreground"] == 1
    n_seeds = sum(b.batch_size for b in batches)
    assert n_seeds == 5 * 8 + 7
    for b in batches:
        st = b.sample_type[: b.batch_size]
        assert (st >= 0).all()
        assert torch.equal(b.video[b.edge_index[0]], b.video[b.edge_index[1]])
    assert "PGCNTrainLoader(videos=6" in repr(loader)
