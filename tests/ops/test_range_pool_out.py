import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.ops import range_max_pool


def loop_max(x, starts, ends):
    t, d = x.shape
    rows = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        a, b = max(a, 0), min(b, t)
        rows.append(x[a:b].max(0).values if b > a else torch.zeros(d))
    return torch.stack(rows) if rows else torch.zeros(0, d)


@settings(max_examples=50, deadline=None)
@given(t=st.integers(0, 70), d=st.integers(1, 4), n=st.integers(0, 60), seed=st.integers(0, 99))
def test_range_max_pool_matches_loop(t, d, n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, d, generator=g)
    starts = torch.randint(-3, t + 3, (n,), generator=g)
    ends = starts + torch.randint(-2, t + 4, (n,), generator=g)
    assert torch.equal(range_max_pool(x, starts, ends), loop_max(x, starts, ends))


def test_range_max_pool_out_strided_view():
    x = torch.randn(50, 3)
    starts = torch.tensor([0, 5, 10, 49])
    ends = torch.tensor([50, 6, 40, 50])
    buf = torch.full((4, 3, 3), 7.0)
    res = range_max_pool(x, starts, ends, out=buf[:, 1])
    assert res.data_ptr() == buf[:, 1].data_ptr()
    assert torch.equal(buf[:, 1], loop_max(x, starts, ends))
    assert bool((buf[:, 0] == 7).all() and (buf[:, 2] == 7).all())
    with pytest.raises(ValueError, match="'out'"):
        range_max_pool(x, starts, ends, out=torch.empty(3, 3))


@settings(max_examples=30, deadline=None)
@given(t=st.integers(0, 40), n=st.integers(0, 30), seed=st.integers(0, 99))
def test_range_mean_pool_matches_loop_and_out(t, n, seed):
    from tagraph.ops import range_mean_pool

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, 3, generator=g)
    starts = torch.randint(-3, t + 3, (n,), generator=g)
    ends = starts + torch.randint(-2, t + 4, (n,), generator=g)
    ref = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        a, b = max(a, 0), min(b, t)
        ref.append(x[a:b].double().mean(0).float() if b > a else torch.zeros(3))
    ref = torch.stack(ref) if ref else torch.zeros(0, 3)
    torch.testing.assert_close(range_mean_pool(x, starts, ends), ref)
    buf = torch.zeros(n, 2, 3)
    range_mean_pool(x, starts, ends, out=buf[:, 1])
    torch.testing.assert_close(buf[:, 1], ref)
