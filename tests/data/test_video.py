import numpy as np
import pytest
import torch

from tagraph.data import Video, num_snippets_for, snippet_times


def test_snippet_times_formula():
    t = snippet_times(5, stride=4, window=16, fps=30.0)
    ref = np.array([(i * 4 + 8) / 30.0 for i in range(5)])
    np.testing.assert_allclose(t, ref)


def test_num_snippets_for():
    # 10 s at 30 fps = 300 frames; windows of 16 every 4 -> floor((300 - 16) / 4) + 1
    assert num_snippets_for(10.0, 30.0, 4, 16) == (300 - 16) // 4 + 1
    assert num_snippets_for(0.1, 30.0, 4, 16) == 1


def test_video_record_and_seconds_to_snippet():
    v = Video("v", 10.0, 25.0, 16, 16, [[1.0, 2.0]], [1], ["a", "b"])
    assert v.label_names == ["b"]
    assert v.num_classes == 2
    times = v.snippet_times(10)
    np.testing.assert_array_equal(v.seconds_to_snippet(times), np.arange(10))


@pytest.mark.parametrize("kwargs,match", [
    (dict(duration=0.0), "duration"),
    (dict(fps=float("nan")), "fps"),
    (dict(segments=[[1, 2]], labels=[]), "labels"),
    (dict(segments=[[1, 2]], labels=[5], classes=["a"]), "labels"),
])
def test_video_validation(kwargs, match):
    base = dict(video_id="v", duration=10.0, fps=25.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Video(**base)


def _video(x, segments=((1.0, 2.0),)):
    return Video("vid7", 10.0, 10.0, 2, 4, np.array(segments), [0] * len(segments), ["a"],
                 loader=lambda: x, source="feat.npy")


def test_load_features_checks():
    x = torch.randn(49, 6)
    assert torch.equal(_video(x).load_features(6), x)
    with pytest.raises(ValueError, match=r"feat.npy: video 'vid7'.*dimension 6, expected 8"):
        _video(x).load_features(8)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN/Inf.*snippet 3"):
        _video(bad).load_features()
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        _video(torch.randn(3, 4, 5)).load_features()
    # 5 snippets cover (4 * 2 + 4) / 10 = 1.2 s, but a segment ends at 9 s
    with pytest.raises(ValueError, match="shorter than the annotations imply"):
        _video(torch.randn(5, 6), segments=((8.0, 9.0),)).load_features()
    # within tolerance: fine
    _video(torch.randn(5, 6), segments=((0.5, 2.0),)).load_features()
