import numpy as np
import pytest

from tagraph.io import load_ambiguous


def test_load_ambiguous_file(tmp_path):
    path = tmp_path / "Ambiguous_test.txt"
    path.write_text("video_a  0.0 1.4\n\n# comment\nvideo_a 95.7 97.2\nvideo_b\t3 4\n")
    amb = load_ambiguous(path)
    assert list(amb) == ["video_a", "video_b"]
    np.testing.assert_array_equal(amb["video_a"], [[0.0, 1.4], [95.7, 97.2]])
    np.testing.assert_array_equal(amb["video_b"], [[3.0, 4.0]])


@pytest.mark.parametrize(
    "line, match",
    [
        ("video_a 1.0\n", r":1: expected 'VIDEO_ID START END'"),
        ("video_a x 2\n", r":1: video 'video_a': start/end must be numbers"),
        ("video_a 3 2\n", r":1: video 'video_a': start 3.0 > end 2.0"),
        ("video_a nan 2\n", r":1: video 'video_a': start and end must be finite"),
    ],
)
def test_load_ambiguous_errors(tmp_path, line, match):
    path = tmp_path / "amb.txt"
    path.write_text(line)
    with pytest.raises(ValueError, match=match):
        load_ambiguous(path)


def test_load_ambiguous_dict():
    amb = load_ambiguous({"v": [[1, 2]]})
    assert amb["v"].dtype == np.float64
    with pytest.raises(ValueError, match="inverted"):
        load_ambiguous({"v": [[2, 1]]})
