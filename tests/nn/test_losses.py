import torch

from tagraph.nn import class_wise_smooth_l1_loss, completeness_hinge_loss


def loop_completeness(logits, labels, pos, ratio):
    pos_l, neg_l = [], []
    for i in range(logits.size(0)):
        s = float(logits[i, labels[i]])
        (pos_l if pos[i] else neg_l).append(max(0.0, 1 - s) if pos[i] else max(0.0, 1 + s))
    neg_l = sorted(neg_l, reverse=True)
    import math
    neg_l = neg_l[: math.ceil(ratio * len(neg_l))]
    return (sum(pos_l) + sum(neg_l)) / (len(pos_l) + len(neg_l))


def test_completeness_matches_loop():
    g = torch.Generator().manual_seed(0)
    for n in (1, 7, 30):
        logits = torch.randn(n, 5, generator=g) * 2
        labels = torch.randint(0, 5, (n,), generator=g)
        pos = torch.rand(n, generator=g) < 0.3
        for ratio in (1 / 6, 0.5, 1.0):
            got = completeness_hinge_loss(logits, labels, pos, ratio)
            torch.testing.assert_close(got, torch.tensor(loop_completeness(logits, labels, pos,
                                                                            ratio)))
    empty = completeness_hinge_loss(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long),
                                    torch.zeros(0, dtype=torch.bool))
    assert float(empty) == 0.0


def test_class_wise_smooth_l1():
    pred = torch.randn(4, 3, 2, requires_grad=True)
    target = torch.randn(4, 2)
    labels = torch.tensor([2, 0, 1, 2])
    loss = class_wise_smooth_l1_loss(pred, target, labels)
    own = torch.stack([pred[i, labels[i]] for i in range(4)])
    torch.testing.assert_close(loss, torch.nn.functional.smooth_l1_loss(own, target))
    loss.backward()
    assert (pred.grad[1, 1:] == 0).all() and (pred.grad[0, :2] == 0).all()
