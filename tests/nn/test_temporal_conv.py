import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.nn.temporal_conv import TemporalConv, temporal_edges


def _padded_conv1d(conv: TemporalConv, xs, offsets, kernel):
    # Reference: torch conv1d on a zero-padded batch, one video at a time padded
    # to the longest, then unpadded.
    pad = kernel // 2
    w = torch.zeros(conv.out_channels, conv.in_channels, kernel, dtype=xs[0].dtype)
    for o in list(offsets) + [0]:
        w[:, :, o + pad] = conv.kernel_weight(o).T
    t_max = max(x.size(0) for x in xs)
    batch = torch.zeros(len(xs), conv.in_channels, t_max, dtype=xs[0].dtype)
    for i, x in enumerate(xs):
        batch[i, :, : x.size(0)] = x.T
    # Zero padding beyond each video's end equals a video boundary only if the
    # padding is at least `pad` wide: pad every video on both sides.
    out = F.conv1d(F.pad(batch, (pad, pad)), w, conv.bias, padding=0)
    return torch.cat([out[i, :, : x.size(0)].T for i, x in enumerate(xs)])


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    radius=st.integers(1, 2),
    seed=st.integers(0, 1000),
)
def test_temporal_conv_equals_conv1d(lengths, radius, seed):
    torch.manual_seed(seed)
    offsets = [o for o in range(-radius, radius + 1) if o != 0]
    conv = TemporalConv(3, 4, offsets=offsets).double()
    xs = [torch.randn(t, 3, dtype=torch.float64, requires_grad=True) for t in lengths]
    ptr = torch.tensor([0] + lengths).cumsum(0)
    edge_index, edge_type = temporal_edges(ptr, offsets)
    out = conv(torch.cat(xs), edge_index, edge_type)
    ref = _padded_conv1d(conv, xs, offsets, 2 * radius + 1)
    assert torch.allclose(out, ref, atol=1e-10)
    # and the same gradients for the inputs, weights and bias
    g = torch.randn_like(out)
    inputs = [*xs, conv.weight, conv.bias]
    got = torch.autograd.grad(out, inputs, g)
    want = torch.autograd.grad(ref, inputs, g)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-10)


def test_temporal_edges_convention():
    ei, et = temporal_edges(torch.tensor([0, 3, 5]), (-1, 1))
    pairs = {(int(s), int(d), int(t)) for s, d, t in zip(ei[0], ei[1], et)}
    # offset -1 (type 0): t receives from t-1; offset +1 (type 1): from t+1
    assert pairs == {(0, 1, 0), (1, 2, 0), (3, 4, 0), (1, 0, 1), (2, 1, 1), (4, 3, 1)}


def test_semantic_edges_ignored_and_edge_weight():
    torch.manual_seed(0)
    conv = TemporalConv(2, 3, offsets=(-1, 1))
    x = torch.randn(4, 2)
    ei, et = temporal_edges(torch.tensor([0, 4]))
    base = conv(x, ei, et)
    sem = torch.tensor([[0, 3], [3, 0]])
    out = conv(x, torch.cat([ei, sem], 1), torch.cat([et, torch.full((2,), 2)]))
    assert torch.allclose(out, base)
    w = torch.rand(ei.size(1))
    out_w = conv(x, ei, et, w)
    ref = x @ conv.kernel_weight(0) + conv.bias
    for (s, d), t, wi in zip(ei.T.tolist(), et.tolist(), w):
        ref[d] += wi * (x[s] @ conv.weight[t])
    assert torch.allclose(out_w, ref, atol=1e-6)


def test_no_self_loop_and_repr():
    conv = TemporalConv(2, 3, offsets=(-1, 1), self_loop=False, bias=False)
    assert repr(conv) == "TemporalConv(2, 3, offsets=(-1, 1), self_loop=False)"
    with pytest.raises(ValueError):
        TemporalConv(2, 3, offsets=(0, 1))
    x = torch.randn(1, 2)
    ei, et = temporal_edges(torch.tensor([0, 1]))
    assert torch.allclose(conv(x, ei, et), torch.zeros(1, 3))
