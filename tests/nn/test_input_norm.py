import pytest
import torch

from tagraph.nn.input_norm import InputNorm, feature_moments


def test_feature_moments_match_concatenation():
    torch.manual_seed(0)
    parts = [torch.rand(t, 6) * 3 + 2 for t in (5, 1, 17, 9)]
    mean, var, n = feature_moments(parts)
    full = torch.cat(parts).double()
    assert n == 32
    assert torch.allclose(mean, full.mean(0))
    assert torch.allclose(var, full.var(0, unbiased=False))
    with pytest.raises(ValueError, match="no feature rows"):
        feature_moments([torch.zeros(0, 6)])


@pytest.mark.parametrize("mode", ["center_scale", "standardize"])
def test_offset_and_scale_free(mode):
    # The same features under any offset and positive scale normalise to the same input.
    torch.manual_seed(0)
    x = torch.randn(40, 8) * torch.linspace(0.1, 2.0, 8)
    ref = InputNorm(8, mode).fit([x[:25], x[25:]])(x)
    for a, b in ((10.0, 0.4), (0.1, -3.0), (1.0, 7.0)):
        y = a * x + b
        out = InputNorm(8, mode).fit([y])(y)
        assert torch.allclose(out, ref, atol=1e-4)
    assert torch.allclose(ref.mean(0), torch.zeros(8), atol=1e-5)
    if mode == "standardize":
        assert torch.allclose(ref.std(0, unbiased=False), torch.ones(8), atol=1e-4)
    else:  # one global scale: relative channel variances are kept
        assert torch.allclose(ref.pow(2).mean(), torch.tensor(1.0), atol=1e-4)
        ratio = ref.std(0) / x.std(0)
        assert torch.allclose(ratio, ratio[0].expand(8), rtol=1e-4)


def test_identity_until_fitted_constant_channels_and_state_dict():
    x = torch.rand(10, 4)
    x[:, 2] = 5.0  # a constant channel is only centred
    norm = InputNorm(4, "standardize")
    assert torch.equal(norm(x), x)
    norm.fit([x])
    assert torch.allclose(norm(x)[:, 2], torch.zeros(10))
    assert torch.isfinite(norm(x)).all()
    other = InputNorm(4, "standardize")
    other.load_state_dict(norm.state_dict())
    assert torch.equal(other(x), norm(x))
    # A checkpoint written before the layer existed loads as the identity.
    legacy = InputNorm(4)
    legacy.load_state_dict({})
    assert torch.equal(legacy(x), x)
    with pytest.raises(ValueError, match="mode"):
        InputNorm(4, "zscore")
    with pytest.raises(ValueError, match="channels"):
        norm.set_moments(torch.zeros(3), torch.ones(3))
    assert repr(norm) == "InputNorm(4, mode='standardize')"


def test_mode_none_reads_nothing():
    def boom():
        raise AssertionError("read")
        yield

    norm = InputNorm(0, "none")  # e.g. a WeaklySupervisedTAL subclass without in_channels
    assert norm.fit(boom()) is norm
    x = torch.rand(3, 5)
    assert torch.equal(norm(x), x)
