import math

import pytest
import torch
import torch.nn.functional as F

from tagraph.nn import (
    CosineClassifier,
    DiscriminationMemory,
    InformationInteraction,
    memory_momentum,
)


@pytest.mark.parametrize("scaled", [False, True])
def test_information_interaction_matches_per_video_dense(scaled):
    torch.manual_seed(0)
    lengths = [5, 3, 7]
    d = 8
    x = torch.randn(sum(lengths), d, dtype=torch.float64)
    salient = torch.rand(sum(lengths)) > 0.5
    salient[5:8] = True  # video 2: everything salient -> empty non-salient set
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(lengths))
    unit = InformationInteraction(d, reduction=4, scaled=scaled).double()
    alpha = d ** -0.5 if scaled else 1.0
    out = unit(x, salient, batch)
    start = 0
    for t in lengths:
        xi, si = x[start:start + t], salient[start:start + t]
        parts = []
        for mlp, m in ((unit.mlp_salient, si), (unit.mlp_other, ~si)):
            f = xi[m]
            f = f + F.softmax(mlp(f), dim=-1) * f
            parts.append(torch.softmax(alpha * (xi @ f.t()), -1) @ f if m.any()
                         else torch.zeros_like(xi))
        ref = 0.88 * parts[0] + 0.12 * parts[1]
        torch.testing.assert_close(out[start:start + t], ref)
        start += t
    assert repr(unit) == f"InformationInteraction(8, reduction=4, mix=0.12, scaled={scaled})"
    assert repr(InformationInteraction(8, window=3)).endswith("scaled=False, window=3)")


def test_cosine_classifier_matches_per_video_reference():
    torch.manual_seed(1)
    lengths = [4, 6]
    x = torch.randn(10, 5, dtype=torch.float64)
    batch = torch.tensor([0] * 4 + [1] * 6)
    head = CosineClassifier(5, num_classes=3).double()
    out = head(x, batch)
    n = lambda v: v / (v.norm(dim=-1, keepdim=True) + 1e-9)  # noqa: E731
    w = n(head.centers)
    torch.testing.assert_close(out.frame_logits, 20 * n(x) @ w.t())
    att = torch.sigmoid(20 * (n(x) @ n(head.fg_center).t())[:, 0])
    torch.testing.assert_close(out.attention, att)
    start = 0
    for i, t in enumerate(lengths):
        xi = x[start:start + t]
        a = out.attention[start:start + t]
        a = a / (a.sum() + 1e-5)
        torch.testing.assert_close(out.video_ca_logits[i], 20 * n(a @ xi) @ w.t())
        b = torch.sigmoid(out.frame_logits[start:start + t])
        b = b / (b.sum(0, keepdim=True) + 1e-5)
        feat = b.t() @ xi  # [C + 1, D]
        torch.testing.assert_close(out.video_cw_logits[i], 20 * (n(feat) * w).sum(-1))
        start += t
    assert out.frame_logits.shape == (10, 4)
    torch.testing.assert_close(head.fg_center.detach(), -head.centers[-1:].detach())
    # class_wise=False skips the class-wise video logits and changes nothing else
    for h in (head, CosineClassifier(5, num_classes=3, normalize=False).double()):
        full, part = h(x, batch), h(x, batch, class_wise=False)
        assert part.video_cw_logits is None and full.video_cw_logits is not None
        for f in ("frame_logits", "attention", "video_ca_logits"):
            torch.testing.assert_close(getattr(part, f), getattr(full, f))


def test_linear_head_matches_per_video_reference():
    # normalize=False: the same pooling, with linear logits w^T x + b (no scale).
    torch.manual_seed(2)
    lengths = [4, 6]
    x = torch.randn(10, 5, dtype=torch.float64)
    batch = torch.tensor([0] * 4 + [1] * 6)
    head = CosineClassifier(5, num_classes=3, normalize=False).double()
    with torch.no_grad():
        head.bias.normal_()
        head.fg_bias.normal_()
    out = head(x, batch)
    w, b = head.centers, head.bias
    torch.testing.assert_close(out.frame_logits, x @ w.t() + b)
    torch.testing.assert_close(head.frame_logits(x), out.frame_logits)
    torch.testing.assert_close(out.attention,
                               torch.sigmoid(x @ head.fg_center[0] + head.fg_bias))
    start = 0
    for i, t in enumerate(lengths):
        xi = x[start:start + t]
        a = out.attention[start:start + t]
        a = a / (a.sum() + 1e-5)
        torch.testing.assert_close(out.video_ca_logits[i], (a @ xi) @ w.t() + b)
        p = torch.sigmoid(out.frame_logits[start:start + t])
        p = p / (p.sum(0, keepdim=True) + 1e-5)
        torch.testing.assert_close(out.video_cw_logits[i], ((p.t() @ xi) * w).sum(-1) + b)
        start += t
    # Unlike the cosine head, the logits scale with the features.
    torch.testing.assert_close(head(2 * x, batch).frame_logits - b, 2 * (out.frame_logits - b))
    assert repr(head) == "CosineClassifier(5, num_classes=3, scale=20.0, normalize=False)"
    cos = CosineClassifier(5, num_classes=3)
    assert cos.bias is None and repr(cos) == "CosineClassifier(5, num_classes=3, scale=20.0)"


def test_memory_momentum_values():
    assert memory_momentum(0, 10) == pytest.approx(0.5 * math.log(2.0))
    assert memory_momentum(10, 10) == pytest.approx(0.5 * math.log(math.e + 1.0))


def test_memory_update_rule_by_hand():
    mem = DiscriminationMemory(num_classes=2, channels=1, size=2, warmup_epochs=1, max_epochs=4)
    # Batch of 2 videos: video 0 labelled class 0, video 1 labelled class 1.
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.7], [0.6, 0.3]])
    batch = torch.tensor([0, 0, 1, 1])
    y = torch.tensor([[1, 0], [0, 1]])
    mem.update(x, scores, batch, y, epoch=1)  # warm-up: replace
    # class 0 candidates: features 1 (0.9), 2 (0.2); class 1: 3 (0.7), 4 (0.3)
    torch.testing.assert_close(mem.features[:, :, 0], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    torch.testing.assert_close(mem.scores, torch.tensor([[0.9, 0.2], [0.7, 0.3]]))
    # After warm-up: momentum m = 0.5 log(e^{t/T} + 1) per slot of the re-ranked top-2.
    x2 = torch.tensor([[10.0], [20.0]])
    s2 = torch.tensor([[0.5, 0.0], [0.95, 0.0]])
    mem.update(x2, s2, torch.tensor([0, 0]), torch.tensor([[1, 0]]), epoch=2)
    m = 0.5 * math.log(math.exp(2 / 4) + 1)
    # class 0 ranking: 20 (0.95), 1 (0.9), 10 (0.5), 2 (0.2) -> new top-2 = [20, 1]
    expected0 = [m * 1.0 + (1 - m) * 20.0, m * 2.0 + (1 - m) * 1.0]
    torch.testing.assert_close(mem.features[0, :, 0], torch.tensor(expected0))
    torch.testing.assert_close(mem.scores[0], torch.tensor([0.95, 0.9]))
    # class 1 was not in the batch: untouched
    torch.testing.assert_close(mem.features[1, :, 0], torch.tensor([3.0, 4.0]))


def test_memory_partial_fill_and_read():
    mem = DiscriminationMemory(num_classes=3, channels=2, size=3)
    mem.update(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.1, 0.1]]),
               torch.tensor([0]), torch.tensor([[1, 0, 0]]), epoch=0)
    assert mem.filled.tolist() == [[True, False, False], [False] * 3, [False] * 3]
    q = torch.randn(5, 2)
    batch = torch.tensor([0, 0, 1, 1, 1])
    y = torch.tensor([[1, 0, 0], [0, 1, 0]])
    out, has = mem.read(q, batch, y)
    assert has.tolist() == [True, False]
    torch.testing.assert_close(out[:2], torch.tensor([[1.0, 0.0]] * 2))  # the only slot
    assert torch.all(out[2:] == 0)
