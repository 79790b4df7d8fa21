import math

import torch
import torch.nn.functional as F

from tagraph.nn.click_losses import (
    affinity_embedding_loss,
    click_ce_loss,
    foreground_sparsity_loss,
    score_separation_loss,
)


def test_click_ce_by_hand():
    cas = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    # clicks: node 0 -> class 0, node 2 -> background (C = 2); node 1 unclicked
    loss = click_ce_loss(cas, torch.tensor([0, 2]), torch.tensor([0, 2]))
    l0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    l2 = -math.log(math.exp(3) / (1 + math.exp(1) + math.exp(3)))
    assert abs(loss.item() - (l0 + l2) / 2) < 1e-6
    assert click_ce_loss(cas, torch.tensor([], dtype=torch.long),
                         torch.tensor([], dtype=torch.long)).item() == 0.0


def test_score_separation_by_hand():
    # 2 videos, C = 2. Video 0: labels {0, 1}, bg clicks at nodes 1, 2. Video 1: no clicks.
    cas = torch.tensor([[5.0, 0.0, 0.0], [1.0, 2.0, 0.0], [3.0, 0.0, 0.0],
                        [0.0, 0.0, 0.0]])
    video = torch.tensor([[4.0, 1.0, 0.0], [0.0, 9.0, 0.0]])
    y = torch.tensor([[1, 1], [0, 1]])
    loss = score_separation_loss(cas, video, y, torch.tensor([1, 2]), torch.tensor([0, 0]))
    # class 0: bg mean 2, fg 4 ; class 1: bg mean 1, fg 1
    expected = 0.5 * (-math.log(1 / (1 + math.exp(2 - 4))) - math.log(0.5))
    assert abs(loss.item() - expected) < 1e-6
    empty = torch.tensor([], dtype=torch.long)
    assert score_separation_loss(cas, video, y, empty, empty).item() == 0.0


def loop_embedding_loss(e, cas, y, lengths, bg_mask, ratio=8, smin=0.5, dmax=0.1):
    """Per video, per class, as BackTAL's description (sets, hardest pairs, hinges)."""
    total, n, start = 0.0, 0, 0
    for i, t in enumerate(lengths):
        ei, ci, bi = e[start:start + t], cas[start:start + t], bg_mask[start:start + t]
        start += t
        k = max(t // ratio, 1)
        fg_idx = set()
        for c in y[i].nonzero().flatten().tolist():
            order = sorted(range(t), key=lambda s, c=c: (-float(ci[s, c]), s))[:k]
            fg_idx.update(order)
        bg_idx = bi.nonzero().flatten().tolist()
        if not fg_idx or not bg_idx:
            continue
        fe = F.normalize(ei[sorted(fg_idx)], dim=1)
        be = F.normalize(ei[bg_idx], dim=1)
        ff, bb, fb = fe @ fe.t(), be @ be.t(), fe @ be.t()
        loss = (F.relu(smin - ff.min(1).values).mean() + F.relu(smin - bb.min(1).values).mean()
                + F.relu(fb.max(1).values - dmax).mean() + F.relu(fb.max(0).values - dmax).mean())
        total, n = total + loss, n + 1
    return total / max(n, 1)


def test_affinity_embedding_loss_matches_loop():
    torch.manual_seed(0)
    lengths = [16, 9, 24, 5]
    n = sum(lengths)
    e = torch.randn(n, 4, dtype=torch.float64)
    cas = torch.randn(n, 4, dtype=torch.float64)  # C = 3 (+ background column)
    y = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    bg_mask = torch.rand(n) < 0.3
    bg_mask[40:45] = False  # last video: no click -> excluded
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor(lengths))
    loss = affinity_embedding_loss(e, cas, y, batch, bg_mask)
    ref = loop_embedding_loss(e, cas, y, lengths, bg_mask)
    torch.testing.assert_close(loss, ref)
    e.requires_grad_(True)
    affinity_embedding_loss(e, cas, y, batch, bg_mask).backward()
    assert e.grad is not None and torch.isfinite(e.grad).all()


def test_affinity_embedding_loss_by_hand():
    # One video, T = 8 -> k = 1: foreground = argmax snippet (t = 3); bg clicks at 0 and 6.
    e = torch.zeros(8, 2)
    e[:, 0] = 1.0
    e[3] = torch.tensor([0.0, 1.0])  # orthogonal to all others
    e[6] = torch.tensor([1.0, 1.0])  # cos 1/sqrt(2) to bg click 0
    cas = torch.zeros(8, 2)
    cas[3, 0] = 5.0
    bg = torch.zeros(8, dtype=torch.bool)
    bg[[0, 6]] = True
    batch = torch.zeros(8, dtype=torch.long)
    loss = affinity_embedding_loss(e, cas, torch.tensor([[1]]), batch, bg)
    c = 1 / math.sqrt(2)
    # fg-fg: single element, cos 1 -> 0; bg-bg: hardest cos c -> relu(0.5 - c) = 0;
    # fg->bg: max cos(fg, bg) = c (with t = 6) -> c - 0.1; bg->fg: [0 - 0.1]+ = 0 and c - 0.1.
    expected = (c - 0.1) + 0.5 * (c - 0.1)
    assert abs(loss.item() - expected) < 1e-6


def test_foreground_sparsity():
    a = torch.tensor([0.5, 0.25, 1.0, 0.0, 0.5])
    batch = torch.tensor([0, 0, 1, 1, 1])
    assert foreground_sparsity_loss(a, batch).item() == (0.75 + 1.5) / 2
