import math

import torch
import torch.nn.functional as F

from tagraph.nn.issf_losses import attention_contrast_loss, soft_label_ce_loss
from tagraph.nn.mil import normalized_ce_loss


def test_attention_contrast_by_hand():
    # video 0: T = 8 -> k = 1 ; video 1: T = 16 -> k = 2
    a0 = torch.tensor([0.1, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3])
    a1 = torch.linspace(0, 1, 16)
    batch = torch.tensor([0] * 8 + [1] * 16)
    loss = attention_contrast_loss(torch.cat([a0, a1]), batch)
    v0 = 0.1 - 0.9
    v1 = (a1[0] + a1[1]) / 2 - (a1[-1] + a1[-2]) / 2
    assert abs(loss.item() - (v0 + v1.item()) / 2) < 1e-6


def test_soft_label_ce_by_hand_and_per_video_mean():
    logits = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    pseudo = torch.tensor([[0.0, 0.0], [0.2, 0.0], [0.0, 0.0]])
    batch = torch.tensor([0, 0, 1])
    loss = soft_label_ce_loss(logits, pseudo, batch, temperature=0.2)

    def ce(z, p):
        return -(F.softmax(p / 0.2, -1) * F.log_softmax(z / 0.2, -1)).sum()

    v0 = (ce(logits[0], pseudo[0]) + ce(logits[1], pseudo[1])) / 2
    v1 = ce(logits[2], pseudo[2])
    torch.testing.assert_close(loss, (v0 + v1) / 2)
    # no gradient into the pseudo labels
    p = pseudo.clone().requires_grad_(True)
    z = logits.clone().requires_grad_(True)
    soft_label_ce_loss(z, p, batch).backward()
    assert p.grad is None and z.grad is not None
    # a 0/1 weight zeroes snippets but keeps the mean over all of the video's snippets
    w = torch.tensor([0.0, 1.0, 1.0])
    loss_w = soft_label_ce_loss(logits, pseudo, batch, temperature=0.2, weight=w)
    torch.testing.assert_close(loss_w, (ce(logits[1], pseudo[1]) / 2 + v1) / 2)
    torch.testing.assert_close(
        soft_label_ce_loss(logits, pseudo, batch, temperature=0.2, weight=torch.ones(3)), loss)


def test_normalized_ce_with_background_targets():
    # ISSF: class-agnostic video scores with target [y, 0], class-wise with [y, 1].
    logits = torch.tensor([[2.0, 0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0]])
    fg = normalized_ce_loss(logits, torch.cat([y, torch.zeros(1, 1)], 1))
    bg = normalized_ce_loss(logits, torch.cat([y, torch.ones(1, 1)], 1))
    lse = math.log(math.exp(2) + 1 + math.exp(1))
    assert abs(fg.item() - (lse - 2)) < 1e-6
    assert abs(bg.item() - 0.5 * ((lse - 2) + (lse - 1))) < 1e-6
