import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.ops import range_max_pool, range_mean_pool

ranges = st.integers(1, 40).flatmap(
    lambda t: st.tuples(
        st.just(t),
        st.lists(st.tuples(st.integers(-3, t + 3), st.integers(-3, t + 3)), max_size=30),
    )
)


def _loop(x, starts, ends, fn):
    t = x.size(0)
    out = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        s, e = max(0, min(s, t)), max(0, min(e, t))
        out.append(fn(x[s:e]) if e > s else torch.zeros(x.size(1), dtype=x.dtype))
    return torch.stack(out) if out else x.new_zeros(0, x.size(1))


@settings(max_examples=80, deadline=None)
@given(ranges)
def test_range_pool_matches_loop(case):
    t, pairs = case
    gen = torch.Generator().manual_seed(t)
    x = torch.randn(t, 5, generator=gen, dtype=torch.float64)
    starts = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    ends = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    mx = range_max_pool(x, starts, ends)
    assert torch.equal(mx, _loop(x, starts, ends, lambda v: v.max(0).values))
    mean = range_mean_pool(x, starts, ends)
    assert torch.allclose(mean, _loop(x, starts, ends, lambda v: v.mean(0)))


def test_range_pool_hand_computed():
    x = torch.tensor([[1.0], [5.0], [2.0], [4.0]])
    s, e = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 3, 3, 3])
    assert range_max_pool(x, s, e).flatten().tolist() == [5.0, 5.0, 2.0, 0.0]
    assert range_mean_pool(x, s, e).flatten().tolist() == [3.0, 3.5, 2.0, 0.0]


def test_range_mean_pool_float32_long_video_is_precise():
    x = torch.full((200_000, 2), 0.1, dtype=torch.float32)
    out = range_mean_pool(x, torch.tensor([150_000]), torch.tensor([150_010]))
    assert torch.allclose(out, torch.full((1, 2), 0.1), atol=1e-7)


def test_range_max_pool_blocked_in_place_levels(monkeypatch):
    # tiny blocks: the in-place level update takes both its paths (shift >= block,
    # direct; shift < block, through a temporary) over many blocks
    import importlib

    rp = importlib.import_module("tagraph.ops.range_pool")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 4, generator=gen)
    starts = torch.randint(0, 300, (400,), generator=gen)
    ends = starts + torch.randint(1, 300, (400,), generator=gen)
    ref = _loop(x, starts, ends, lambda v: v.max(0).values)
    for elements in (4, 12, 28, 4 * 300):  # blocks of 1, 3, 7 and 300 rows
        monkeypatch.setattr(rp, "_CHUNK_ELEMENTS", elements)
        x0 = x.clone()
        assert torch.equal(range_max_pool(x, starts, ends), ref)
        assert torch.equal(x, x0)  # the input is never written
