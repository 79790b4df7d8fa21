import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.data import (
    background_gaps,
    clicks_to_snippets,
    merge_segments,
    read_clicks,
    simulate_action_clicks,
    simulate_background_clicks,
    simulate_clicks,
    write_clicks,
)
from tagraph.data.clicks import video_rng


def _gaps_loop(segments, duration):
    """Plain-loop reference: background gaps of a video."""
    covered = []
    for s, e in sorted(map(tuple, segments)):
        s, e = max(0.0, s), min(duration, e)
        if covered and s <= covered[-1][1]:
            covered[-1][1] = max(covered[-1][1], e)
        else:
            covered.append([s, e])
    gaps, t = [], 0.0
    for s, e in covered:
        if s > t:
            gaps.append((t, s))
        t = max(t, e)
    if duration > t:
        gaps.append((t, duration))
    return np.array(gaps).reshape(-1, 2)


segs = st.lists(st.tuples(st.floats(0, 100), st.floats(0, 20)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(segs, st.integers(0, 1000))
def test_background_clicks_one_per_gap(raw, seed):
    duration = 100.0
    segments = np.array([[s, min(s + length, duration)] for s, length in raw]).reshape(-1, 2)
    gaps = background_gaps(segments, duration)
    np.testing.assert_allclose(gaps, _gaps_loop(segments, duration))
    clicks = simulate_background_clicks(segments, duration, np.random.default_rng(seed))
    assert len(clicks) == len(gaps)
    assert np.all((clicks >= gaps[:, 0]) & (clicks <= gaps[:, 1]))
    inside = (clicks[:, None] > segments[None, :, 0]) & (clicks[:, None] < segments[None, :, 1])
    assert not inside.any()


def test_gaps_examples():
    np.testing.assert_allclose(background_gaps(np.array([[2.0, 5.0], [4.0, 8.0]]), 10.0),
                               [[0, 2], [8, 10]])
    # action at the very start and end: no click there
    np.testing.assert_allclose(background_gaps(np.array([[0.0, 3.0], [6.0, 10.0]]), 10.0),
                               [[3, 6]])
    np.testing.assert_allclose(background_gaps(np.zeros((0, 2)), 10.0), [[0, 10]])
    np.testing.assert_allclose(merge_segments(np.array([[5.0, 6.0], [1.0, 2.0], [1.5, 3.0]])),
                               [[1, 3], [5, 6]])


def test_action_clicks_inside_instances():
    seg = np.array([[1.0, 2.0], [5.0, 9.0]])
    t, lab = simulate_action_clicks(seg, np.array([3, 4]), np.random.default_rng(0))
    assert np.all((t >= seg[:, 0]) & (t <= seg[:, 1]))
    np.testing.assert_array_equal(lab, [3, 4])


def test_simulate_clicks_deterministic_and_sorted():
    seg = np.array([[1.0, 2.0], [5.0, 9.0]])
    a = simulate_clicks(seg, np.array([0, 1]), 12.0, 5, video_rng(3, "v"), ("background",
                                                                            "action"))
    b = simulate_clicks(seg, np.array([0, 1]), 12.0, 5, video_rng(3, "v"), ("background",
                                                                            "action"))
    c = simulate_clicks(seg, np.array([0, 1]), 12.0, 5, video_rng(4, "v"), ("background",
                                                                            "action"))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert np.all(np.diff(a[0]) >= 0)
    assert sorted(a[1].tolist()) == [0, 1, 5, 5, 5]
    with pytest.raises(ValueError):
        simulate_clicks(seg, np.array([0, 1]), 12.0, 5, video_rng(0, "v"), ("scene",))


def test_clicks_to_snippets_matches_argmin():
    rng = np.random.default_rng(0)
    pos = np.sort(rng.uniform(0, 50, 40))
    t = rng.uniform(-5, 55, 100)
    ref = np.abs(t[:, None] - pos[None]).argmin(1)
    np.testing.assert_array_equal(clicks_to_snippets(t, pos), ref)


def test_click_file_round_trip(tmp_path):
    classes = ["run", "jump"]
    clicks = {"a": (np.array([1.5, 3.0]), np.array([2, 0])), "b": (np.zeros(0), np.zeros(0))}
    write_clicks(tmp_path / "c.json", clicks, classes)
    back = read_clicks(tmp_path / "c.json", classes)
    np.testing.assert_allclose(back["a"][0], [1.5, 3.0])
    np.testing.assert_array_equal(back["a"][1], [2, 0])
    assert len(back["b"][0]) == 0


@pytest.mark.parametrize("text,match", [
    ('{"a": [{"time": 1, "label": "swim"}]}', r"video 'a': clicks\[0\].label.*swim"),
    ('{"a": [{"time": "x", "label": "run"}]}', r"video 'a': clicks\[0\].time"),
    ('{"a": [{"label": "run"}]}', r"video 'a': clicks\[0\]"),
    ('{"a": 3}', "video 'a': expected a list"),
    ('{"a": [{"time": 1, "lab', "truncated"),
])
def test_bad_click_files(tmp_path, text, match):
    p = tmp_path / "c.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_clicks(p, ["run"])
