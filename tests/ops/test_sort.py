import pytest
import torch

from tagraph.ops import sortable_int, stable_argsort


def special_values(n, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-30, -1e-30, 3e38, -3e38,
                         float("inf"), float("-inf"), float("nan"), -float("nan")],
                        dtype=torch.float64)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    x = torch.where(torch.rand(n, generator=g) < 0.3, pool[torch.randint(0, pool.numel(), (n,),
                                                                       generator=g)], x)
    x = torch.where(torch.rand(n, generator=g) < 0.3, x.round(), x)  # many exact ties
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n", [0, 1, 100, 5000])  # below and above the integer-key cutoff
@pytest.mark.parametrize("descending", [False, True])
def test_stable_argsort_equals_torch_stable_sort(dtype, n, descending):
    x = special_values(n, dtype, n)
    expected = torch.sort(x, stable=True, descending=descending).indices
    assert torch.equal(stable_argsort(x, descending=descending), expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_sortable_int_preserves_order_and_equality(dtype):
    x = special_values(3000, dtype, 7)
    x = x[~x.isnan()]
    k = sortable_int(x)
    a, b = x[:, None], x[None, :]
    assert torch.equal(k[:, None] < k[None, :], a < b)
    assert torch.equal(k[:, None] == k[None, :], a == b)  # -0.0 == 0.0 included


def test_integer_keys_and_strided_input():
    x = torch.randint(-5, 5, (4000,))
    assert torch.equal(stable_argsort(x), torch.sort(x, stable=True).indices)
    y = torch.randn(8000, dtype=torch.float32)[::2]
    assert torch.equal(stable_argsort(y, True), torch.sort(y, stable=True, descending=True).indices)
    with pytest.raises(ValueError, match="1-D"):
        stable_argsort(torch.zeros(2, 2))


@pytest.mark.parametrize("dtype", [torch.int64, torch.float64, torch.float32])
def test_unique_rows_matches_torch_unique_dim(dtype):
    from tagraph.ops import unique_rows

    g = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 4, (500, 3), generator=g).to(dtype)
    if dtype.is_floating_point:
        rows = rows * 0.25 - 0.5
        rows[::7, 1] = -0.0  # equal to +0.0
        rows[::11, 1] = 0.0
    first = unique_rows(rows)
    ref, inv = torch.unique(rows, dim=0, return_inverse=True)
    assert torch.equal(rows[first], ref)
    # the first occurrence of each distinct row
    pos = torch.arange(rows.size(0))
    ref_first = torch.full((ref.size(0),), rows.size(0)).scatter_reduce(0, inv, pos, "amin")
    assert torch.equal(first, ref_first)
    assert unique_rows(rows[:0]).numel() == 0
    with pytest.raises(ValueError, match="2-D"):
        unique_rows(rows[:, 0])
