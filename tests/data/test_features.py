import numpy as np
import pytest
import torch

from tagraph.data import FeatureFolder, read_feature_file, resample_snippets, select_modality


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((7, 8)).astype(np.float32)


def test_layouts_agree(tmp_path, x):
    joint = tmp_path / "joint"
    joint.mkdir()
    np.save(joint / "v.npy", x)
    pt = tmp_path / "pt"
    pt.mkdir()
    torch.save(torch.from_numpy(x), pt / "v.pt")
    split = tmp_path / "split"
    (split / "rgb").mkdir(parents=True)
    (split / "flow").mkdir()
    np.save(split / "rgb" / "v.npy", x[:, :4])
    np.save(split / "flow" / "v.npy", x[:, 4:])
    suffix = tmp_path / "suffix"
    suffix.mkdir()
    np.save(suffix / "v_rgb.npy", x[:, :4])
    np.save(suffix / "v_flow.npy", x[:, 4:])
    for modality, ref in (("both", x), ("rgb", x[:, :4]), ("flow", x[:, 4:])):
        for folder in (joint, pt, split, suffix):
            got = FeatureFolder(folder, modality).load("v")
            np.testing.assert_array_equal(got.numpy(), ref)
    assert FeatureFolder(split, "rgb").files("v")[1] == [split / "rgb" / "v.npy"]
    assert FeatureFolder(joint).files("v") == ("joint", [joint / "v.npy"])


def test_missing_and_bad_files(tmp_path, x):
    with pytest.raises(FileNotFoundError, match="video 'nope'"):
        FeatureFolder(tmp_path).load("nope")
    (tmp_path / "rgb").mkdir()
    np.save(tmp_path / "rgb" / "w.npy", x[:, :4])
    with pytest.raises(FileNotFoundError, match=r"flow/w.npy: video 'w'"):
        FeatureFolder(tmp_path, "both").load("w")
    assert FeatureFolder(tmp_path, "rgb").load("w").shape == (7, 4)
    (tmp_path / "broken.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=r"broken.npy: video 'broken': cannot read"):
        FeatureFolder(tmp_path).load("broken")
    bad = x.copy()
    bad[2, 0] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    with pytest.raises(ValueError, match=r"inf.npy: video 'inf'.*NaN/Inf"):
        FeatureFolder(tmp_path).load("inf")
    np.save(tmp_path / "odd.npy", x[:, :5])
    with pytest.raises(ValueError, match="odd dimension"):
        FeatureFolder(tmp_path, "rgb").load("odd")
    (tmp_path / "flow").mkdir()
    np.save(tmp_path / "flow" / "w.npy", x[:5, 4:])
    with pytest.raises(ValueError, match="RGB has 7 snippets but Flow 5"):
        FeatureFolder(tmp_path, "both").load("w")
    np.save(tmp_path / "obj.npy", np.array([x, x[:2]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy: video 'obj': cannot read"):
        read_feature_file(tmp_path / "obj.npy", "obj")


def test_select_modality_errors():
    with pytest.raises(ValueError, match="modality"):
        select_modality(torch.zeros(2, 4), "audio")


def test_signature_changes_with_file(tmp_path, x):
    np.save(tmp_path / "v.npy", x)
    folder = FeatureFolder(tmp_path)
    s0 = folder.signature(["v"])
    np.save(tmp_path / "v.npy", np.concatenate([x, x]))
    assert folder.signature(["v"]) != s0


def test_resample_uniform():
    x = torch.arange(20.0).view(10, 2)
    t = torch.arange(10.0) * 0.5
    xs, ts = resample_snippets(x, t, 4, "uniform")
    idx = np.rint(np.linspace(0, 9, 4)).astype(int)
    assert torch.equal(xs, x[idx]) and torch.equal(ts, t[idx])
    xs, ts = resample_snippets(x, t, 20, "uniform")  # shorter videos unchanged
    assert xs is x and ts is t


@pytest.mark.parametrize("num", [1, 3, 10, 25])
def test_resample_interpolate_matches_numpy(num):
    rng = np.random.default_rng(num)
    x = rng.standard_normal((10, 3))
    t = np.cumsum(rng.random(10))
    xs, ts = resample_snippets(torch.from_numpy(x), torch.from_numpy(t), num, "interpolate")
    pos = np.linspace(0, 9, num)
    ref = np.stack([np.interp(pos, np.arange(10), x[:, d]) for d in range(3)], 1)
    np.testing.assert_allclose(xs.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(ts.numpy(), np.interp(pos, np.arange(10), t), atol=1e-12)
    assert xs.shape == (num, 3)


def test_resample_errors():
    with pytest.raises(ValueError):
        resample_snippets(torch.zeros(3, 2), torch.zeros(3), 0)
    with pytest.raises(ValueError):
        resample_snippets(torch.zeros(3, 2), torch.zeros(3), 2, "crop")
