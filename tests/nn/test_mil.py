import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.nn.mil import (
    check_finite_cas,
    labeled_video_mask,
    normalized_ce_loss,
    segment_mean_pool,
    topk_mean_pool,
)


def _loop_topk(x, lengths, ratio):
    out, start = [], 0
    for t in lengths:
        k = max(1, t // ratio)
        seg = x[start : start + t]
        out.append(seg.topk(k, dim=0).values.mean(0))
        start += t
    return torch.stack(out)


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    ratio=st.sampled_from([1, 3, 8]),
    seed=st.integers(0, 999),
)
def test_topk_mean_pool_variable_t(lengths, ratio, seed):
    torch.manual_seed(seed)
    x = torch.randn(sum(lengths), 4, dtype=torch.float64, requires_grad=True)
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    out = topk_mean_pool(x, batch, ratio=ratio)
    ref = _loop_topk(x, lengths, ratio)
    assert torch.allclose(out, ref)
    g = torch.randn_like(out)
    (ga,) = torch.autograd.grad(out, x, g)
    (gb,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(ga, gb)


def test_topk_short_videos_and_fixed_k():
    x = torch.tensor([[1.0], [3.0], [2.0], [5.0]])
    batch = torch.tensor([0, 0, 0, 1])
    # T=3 and T=1 with ratio 8: k = 1 each
    assert torch.allclose(topk_mean_pool(x, batch), torch.tensor([[3.0], [5.0]]))
    # fixed k larger than a video: clipped to T
    assert torch.allclose(topk_mean_pool(x, batch, k=2), torch.tensor([[2.5], [5.0]]))
    with pytest.raises(ValueError, match="no snippets"):
        topk_mean_pool(x, batch, num_graphs=3)
    assert torch.allclose(segment_mean_pool(x, batch), torch.tensor([[2.0], [5.0]]))


def test_losses_and_checks():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    ls = torch.log_softmax(logits, -1)
    ref = -(ls[0, 0] + 0.5 * (ls[1, 1] + ls[1, 2])) / 2
    assert torch.allclose(normalized_ce_loss(logits, y), ref)
    with pytest.warns(UserWarning, match="skipping 1 of 2 videos.*vid_b"):
        mask = labeled_video_mask(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), ["vid_a", "vid_b"])
    assert mask.tolist() == [True, False]
    cas = torch.zeros(5, 2)
    cas[3, 1] = float("nan")
    with pytest.raises(ValueError, match="'v1'"):
        check_finite_cas(cas, torch.tensor([0, 0, 1, 1, 1]), ["v0", "v1"])
