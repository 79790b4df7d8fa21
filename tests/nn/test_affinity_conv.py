import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.nn import AffinityConv


def temporal_edges(lengths, offsets=(-1, 1)):
    """Temporal edges (src = t + k, dst = t) of a batch of videos, edge_type = offset index."""
    srcs, dsts, types = [], [], []
    start = 0
    for t in lengths:
        idx = torch.arange(t)
        for i, k in enumerate(offsets):
            valid = (idx + k >= 0) & (idx + k < t)
            dst = idx[valid]
            srcs.append(dst + k + start)
            dsts.append(dst + start)
            types.append(torch.full_like(dst, i))
        start += t
    return torch.stack([torch.cat(srcs), torch.cat(dsts)]), torch.cat(types)


def conv_weight(conv):
    """The layer's weights in ``nn.Conv1d.weight`` layout [out, in, 3] (offsets -1, 0, 1)."""
    return torch.stack([conv.kernel_weight(k).t() for k in (-1, 0, 1)], dim=-1)


def loop_reference(conv, x, e):
    """out_t = sum_k cos(e_t, e_{t+k}) W_k x_{t+k}, explicit loops over t and k (one video)."""
    t_len = x.size(0)
    out = torch.zeros(t_len, conv.out_channels, dtype=x.dtype)
    for t in range(t_len):
        for k in conv.all_offsets:
            if 0 <= t + k < t_len:
                cos = F.cosine_similarity(e[t], e[t + k], dim=0, eps=1e-12)
                out[t] += cos * (x[t + k] @ conv.kernel_weight(k))
    if conv.bias is not None:
        out += conv.bias
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.booleans())
def test_affinity_conv_matches_loop(t_len, bias):
    torch.manual_seed(t_len)
    conv = AffinityConv(5, 4, bias=bias).double()
    x = torch.randn(t_len, 5, dtype=torch.float64)
    e = torch.randn(t_len, 3, dtype=torch.float64)
    edge_index, edge_type = temporal_edges([t_len])
    out = conv(x, e, edge_index, edge_type)
    assert out.shape == (t_len, 4)
    torch.testing.assert_close(out, loop_reference(conv, x, e))


def test_affinity_conv_batch_equals_per_video():
    torch.manual_seed(0)
    lengths = [7, 1, 4, 12]
    conv = AffinityConv(6, 3).double()
    x = torch.randn(sum(lengths), 6, dtype=torch.float64)
    e = torch.randn(sum(lengths), 8, dtype=torch.float64)
    edge_index, edge_type = temporal_edges(lengths)
    out = conv(x, e, edge_index, edge_type)
    ref, start = [], 0
    for t in lengths:
        ei, et = temporal_edges([t])
        ref.append(conv(x[start:start + t], e[start:start + t], ei, et))
        start += t
    torch.testing.assert_close(out, torch.cat(ref))


def test_affinity_conv_constant_embedding_is_conv1d():
    # With all affinities equal to 1 the layer is a kernel-3 convolution with padding 1.
    torch.manual_seed(1)
    conv = AffinityConv(4, 5, bias=True).double()
    x = torch.randn(9, 4, dtype=torch.float64)
    e = torch.ones(9, 2, dtype=torch.float64)
    edge_index, edge_type = temporal_edges([9])
    weight = conv_weight(conv)  # [out, in, k]
    ref = F.conv1d(x.t().unsqueeze(0), weight, conv.bias, padding=1)[0].t()
    torch.testing.assert_close(conv(x, e, edge_index, edge_type), ref)


def test_affinity_conv_ignores_other_edge_types_and_follows_offset_order():
    torch.manual_seed(2)
    x = torch.randn(6, 3, dtype=torch.float64)
    e = torch.randn(6, 4, dtype=torch.float64)
    edge_index, edge_type = temporal_edges([6])
    conv = AffinityConv(3, 2).double()
    out = conv(x, e, edge_index, edge_type)
    # A semantic edge (type 2) is ignored.
    extra = torch.tensor([[0], [5]])
    out2 = conv(x, e, torch.cat([edge_index, extra], 1), torch.cat([edge_type, torch.tensor([2])]))
    torch.testing.assert_close(out, out2)
    # A graph built with temporal_offsets=(1, -1) gives the same result when declared.
    ei_rev, et_rev = temporal_edges([6], offsets=(1, -1))
    conv_rev = AffinityConv(3, 2, offsets=(1, 0, -1)).double()
    with torch.no_grad():
        for k in (-1, 0, 1):
            conv_rev.kernel_weight(k).copy_(conv.kernel_weight(k))
    torch.testing.assert_close(conv_rev(x, e, ei_rev, et_rev), out)


def unfold_reference(x, e, weight, channel_major_tile):
    """Official BackTAL-style computation: Unfold + similarity tile + matmul (one video).

    x: [T, C]; e: [T, D]; weight: [out, C, 3] (conv layout). With ``channel_major_tile=True``
    the similarity of offset k multiplies unfold row c * 3 + k (correct); with ``False`` it
    multiplies rows k * C + c as the official ``AttentionConv1d`` does (the bug).
    """
    t_len, c = x.shape
    inp = x.t().reshape(1, c, t_len, 1)
    unf = torch.nn.Unfold(kernel_size=(3, 1), padding=(1, 0))(inp)  # [1, C*3, T], row c*3+k
    e_n = F.normalize(e, dim=1)
    e_l = torch.zeros_like(e_n)
    e_l[1:] = e_n[:-1]
    e_r = torch.zeros_like(e_n)
    e_r[:-1] = e_n[1:]
    sim = torch.stack([(e_n * e_l).sum(1), (e_n * e_n).sum(1), (e_n * e_r).sum(1)])  # [3, T]
    if channel_major_tile:
        tile = sim.repeat(c, 1)  # row c*3+k -> sim[k]
    else:
        tile = sim.repeat_interleave(c, dim=0)  # row k*C+c -> sim[k]  (official)
    out = weight.reshape(weight.size(0), -1) @ (unf[0] * tile)
    return out.t()


def test_official_unfold_layout_differs():
    torch.manual_seed(3)
    t_len, c = 10, 6
    conv = AffinityConv(c, 4).double()
    x = torch.randn(t_len, c, dtype=torch.float64)
    e = torch.randn(t_len, 5, dtype=torch.float64)
    edge_index, edge_type = temporal_edges([t_len])
    out = conv(x, e, edge_index, edge_type)
    weight = conv_weight(conv)  # [out, in, k] like nn.Conv1d.weight
    # The unfold formulation with a channel-major tile is the intended computation ...
    torch.testing.assert_close(unfold_reference(x, e, weight, True), out)
    # ... the official offset-major tile scales thirds of the channels instead: different.
    buggy = unfold_reference(x, e, weight, False)
    assert not torch.allclose(buggy, out, atol=1e-3)


def test_affinity_conv_repr_reset_and_grad():
    conv = AffinityConv(8, 4)
    assert repr(conv) == "AffinityConv(8, 4, offsets=(-1, 0, 1))"
    assert conv.bias is None and conv.weight.shape == (3, 8, 4)
    conv.reset_parameters()
    x = torch.randn(5, 8, requires_grad=True)
    e = torch.randn(5, 3, requires_grad=True)
    edge_index, edge_type = temporal_edges([5])
    conv(x, e, edge_index, edge_type).sum().backward()
    assert x.grad is not None and e.grad is not None and conv.weight.grad is not None
    with pytest.raises(ValueError, match="same number of nodes"):
        conv(x, e[:3], edge_index, edge_type)


def test_affinity_conv_on_snippet_graph_with_knn_edges():
    from tagraph.data import snippet_graph

    torch.manual_seed(4)
    x = torch.randn(12, 6)
    pos = torch.arange(12) * 0.5 + 0.25
    g_knn = snippet_graph(x, pos, knn=3)
    g_tmp = snippet_graph(x, pos)
    assert int(g_knn.edge_type.max()) == 2
    conv = AffinityConv(6, 4)
    e = torch.randn(12, 3)
    torch.testing.assert_close(conv(x, e, g_knn.edge_index, g_knn.edge_type),
                               conv(x, e, g_tmp.edge_index, g_tmp.edge_type))
    with torch.no_grad():
        ref = loop_reference(conv, x, e)
    torch.testing.assert_close(conv(x, e, g_tmp.edge_index, g_tmp.edge_type), ref,
                               rtol=1e-4, atol=1e-5)
