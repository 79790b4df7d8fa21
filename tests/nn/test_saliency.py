import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.nn import SalientSnippets
from tagraph.nn.temporal_conv import temporal_edges


def ptr_of(lengths):
    return torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])


def loop_reference(x, ratio=0.5):
    """One video: d_t = sum |x_t - x_{t-1}| for t >= 1; top floor(ratio T) - 1 and predecessors."""
    t_len = x.size(0)
    d = [float("-inf")] + [float((x[t] - x[t - 1]).abs().sum()) for t in range(1, t_len)]
    k = max(int(t_len * ratio) - 1, 0)
    order = sorted(range(t_len), key=lambda t: (-d[t], t))[:k]
    salient = torch.zeros(t_len, dtype=torch.bool)
    for t in order:
        salient[t] = True
        salient[t - 1] = True  # t >= 1 always: d_0 = -inf is never chosen while k <= T - 1
    return salient


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 15), min_size=1, max_size=5), st.integers(0, 10_000))
def test_saliency_batch_equals_per_video_and_loop(lengths, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(lengths), 4, generator=gen, dtype=torch.float64)
    ptr = ptr_of(lengths)
    edge_index, edge_type = temporal_edges(ptr)
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    sel = SalientSnippets()
    out = sel(x, edge_index, edge_type, batch)
    per_video = []
    for i, t in enumerate(lengths):
        xi = x[ptr[i]:ptr[i + 1]]
        ei, et = temporal_edges(torch.tensor([0, t]))
        one = sel(xi, ei, et)
        assert torch.equal(one, loop_reference(xi))
        per_video.append(one)
    assert torch.equal(out, torch.cat(per_video))
    # exactly k change points per video, each with its predecessor
    counts = torch.zeros(len(lengths), dtype=torch.long).index_add_(0, batch, out.long())
    for i, t in enumerate(lengths):
        k = max(t // 2 - 1, 0)
        assert k <= counts[i] <= 2 * k


def test_saliency_no_wrap_around_at_first_snippet():
    # The largest change is at t = 1 of the second video; its predecessor is that video's
    # t = 0, never the previous video's last snippet nor its own last snippet.
    x = torch.zeros(10, 2)
    x[6] = 100.0  # video 2 = nodes 5..9, local t = 1
    ptr = torch.tensor([0, 5, 10])
    edge_index, edge_type = temporal_edges(ptr)
    batch = torch.tensor([0] * 5 + [1] * 5)
    out = SalientSnippets()(x, edge_index, edge_type, batch)
    assert out[5] and out[6]
    assert not out[4] and not out[9]
    # A batch whose edge list also holds offset +1 edges (type 1) gives the same answer.
    ei2, et2 = temporal_edges(ptr, offsets=(1, -1))
    assert torch.equal(SalientSnippets(prev_type=1)(x, ei2, et2, batch), out)
    assert repr(SalientSnippets()) == "SalientSnippets(ratio=0.5)"
