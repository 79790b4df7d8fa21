"""Ground-truth boxes as extra training nodes (``proposal_graph(add_gt=True)``)."""

import pytest
import torch

from tagraph.data import drop_gt_nodes, proposal_graph


def _video(seed, n=150, t=240):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(t, 12, generator=g)
    times = (torch.arange(t) + 0.5) * 0.5
    dur = t * 0.5
    s = torch.rand(n, generator=g) * (dur - 2)
    length = 0.5 + torch.rand(n, generator=g) * 12
    seg = torch.stack([s, (s + length).clamp(max=dur)], 1)
    gt = torch.tensor([[5.0, 14.0], [30.0, 31.5], [60.0, 95.0], [61.0, 94.0]])
    labels = torch.tensor([0, 2, 1, 1])
    # jittered copies of the ground truth so that contextual edges exist
    jit = gt.repeat(4, 1) + 0.3 * torch.randn(16, 2, generator=g)
    seg = torch.cat([seg, jit.sort(1).values.clamp(0, dur)])
    return feats, times, seg, gt, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gt_nodes_are_appended_foreground_receivers(seed):
    feats, times, seg, gt, labels = _video(seed)
    n = seg.size(0)
    g = proposal_graph(feats, times, seg, gt_segments=gt, gt_labels=labels, add_gt=True)
    assert g.num_nodes == n + gt.size(0)
    assert g.is_gt.tolist() == [False] * n + [True] * gt.size(0)
    assert torch.equal(g.segments[n:], gt)
    # targets of a GT node: itself (tIoU 1, foreground of its own class)
    assert torch.allclose(g.iou[n:], torch.ones(gt.size(0)))
    assert torch.equal(g.y[n:], labels + 1)
    assert torch.allclose(g.reg_target[n:], torch.zeros(gt.size(0), 2), atol=1e-6)
    # GT nodes receive edges from proposals only and send none
    src, dst = g.edge_index
    assert not bool(g.is_gt[src].any())
    assert bool(g.is_gt[dst].any())
    # a GT node's in-edges are those of the graph over all nodes, from proposals
    full = proposal_graph(feats, times, torch.cat([seg, gt]))
    fs, fd = full.edge_index
    ref = (fd >= n) & (fs < n)
    assert sorted(zip(src[dst >= n].tolist(), dst[dst >= n].tolist())) == sorted(
        zip(fs[ref].tolist(), fd[ref].tolist()))


@pytest.mark.parametrize("seed", [0, 3])
def test_drop_gt_nodes_recovers_the_plain_graph(seed):
    feats, times, seg, gt, labels = _video(seed)
    plain = proposal_graph(feats, times, seg, gt_segments=gt, gt_labels=labels)
    with_gt = proposal_graph(feats, times, seg, gt_segments=gt, gt_labels=labels, add_gt=True)
    back = drop_gt_nodes(with_gt)
    assert set(back.keys()) == set(plain.keys())
    for key in plain.keys():
        assert torch.equal(back[key], plain[key]), key
    assert drop_gt_nodes(plain) is plain


def test_add_gt_needs_ground_truth_and_handles_empty():
    feats, times, seg, gt, labels = _video(0)
    with pytest.raises(ValueError, match="add_gt"):
        proposal_graph(feats, times, seg, add_gt=True, video_id="v1")
    g = proposal_graph(feats, times, seg, gt_segments=torch.zeros(0, 2),
                       gt_labels=torch.zeros(0, dtype=torch.long), add_gt=True)
    assert g.num_nodes == seg.size(0) and not bool(g.is_gt.any())
    # no proposals: the graph is made of the ground truth alone, without edges
    g = proposal_graph(feats, times, torch.zeros(0, 2), gt_segments=gt, gt_labels=labels,
                       add_gt=True)
    assert g.num_nodes == gt.size(0) and g.edge_index.size(1) == 0
