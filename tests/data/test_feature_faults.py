"""Feature files that are not features (issue #15): an array of strings, and one video
whose feature dimension differs from the others; the message names file, video, field."""

from __future__ import annotations

import numpy as np
import pytest

from tagraph.data import TALDataset
from tagraph.data.features import read_feature_file
from tests.data.helpers import make_tiny_dataset


def _ds(tmp_path, **kw):
    return TALDataset(tmp_path / "cache", tmp_path / "raw" / "annotations.json",
                      tmp_path / "raw" / "features", subset="train", graph=None, stride=2,
                      window=4, **kw)


@pytest.mark.parametrize("array,what", [
    (np.array([["a", "b"], ["c", "d"]]), "dtype <U1 (strings)"),
    (np.array([[b"a", b"b"]]), "dtype |S1 (byte strings)"),
    (np.ones((3, 2), dtype=bool), "dtype bool (booleans)"),
    (np.ones((3, 2), dtype=np.complex64), "dtype complex64 (complex numbers)"),
])
def test_non_numeric_feature_file(tmp_path, array, what):
    f = tmp_path / "v.npy"
    np.save(f, array)
    with pytest.raises(ValueError) as err:
        read_feature_file(f, "v")
    assert str(err.value) == (f"{f}: video 'v': field 'features' has {what}, expected a "
                              "float array")


def test_string_feature_file_in_a_dataset(tmp_path):
    make_tiny_dataset(tmp_path / "raw")
    f = tmp_path / "raw" / "features" / "vid_b.npy"
    np.save(f, np.array([["x"] * 6] * 20))
    with pytest.raises(ValueError, match=rf"{f}: video 'vid_b': field 'features' has dtype "
                                         r"<U1 \(strings\)"):
        _ds(tmp_path)
    assert list((tmp_path / "cache" / "processed").iterdir()) == []


def test_one_video_with_another_feature_dimension(tmp_path):
    make_tiny_dataset(tmp_path / "raw")
    f = tmp_path / "raw" / "features" / "vid_b.npy"
    x = np.load(f)
    np.save(f, np.concatenate([x, x], axis=1))  # 12-d, the others 6-d
    a = tmp_path / "raw" / "features" / "vid_a.npy"
    with pytest.raises(ValueError) as err:
        _ds(tmp_path)
    assert str(err.value) == (f"{f}: video 'vid_b': field 'features' has dimension 12, but "
                              f"video 'vid_a' ({a}) has 6; every video needs the same "
                              "feature dimension")
    with pytest.raises(ValueError, match=rf"{f}: video 'vid_b': field 'features' has "
                                         "dimension 12, expected 6"):
        _ds(tmp_path, feature_dim=6)
