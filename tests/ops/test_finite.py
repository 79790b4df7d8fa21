import math

import pytest
import torch

from tagraph.ops import all_finite


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("huge", [False, True])
def test_all_finite_equals_elementwise_test(bad, huge):
    x = torch.randn(50, 7)
    if huge:  # finite entries whose sum overflows
        x[:3] = 3e38
        assert not torch.isfinite(x.sum())
    if bad is not None:
        x[17, 3] = bad
    assert all_finite(x) == bool(torch.isfinite(x).all())
    assert all_finite(x) == (bad is None)


def test_empty_and_double():
    assert all_finite(torch.zeros(0, 4))
    assert not all_finite(torch.tensor([1.0, math.nan], dtype=torch.float64))
