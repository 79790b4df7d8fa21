import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.data import (
    ProposalList,
    read_bsn_csv,
    read_bsn_folder,
    read_ssn_proposals,
    write_bsn_csv,
    write_ssn_proposals,
)

SSN = """# 0
/data/frames/video_validation_0000051
300
1
2
3 30 60
12 150 210
3
3 0.8516 0.9634 28 62
0 0 0 0 15
12 0.3100 1.0000 160 170
# 1
video_validation_0000052
120
1
0
0
"""


def test_read_handwritten_list(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text(SSN)
    lists = read_ssn_proposals(p, fps=30.0, num_classes=20)
    assert list(lists) == ["video_validation_0000051", "video_validation_0000052"]
    a = lists["video_validation_0000051"]
    assert a.num_frames == 300 and len(a) == 3
    np.testing.assert_allclose(a.gt_segments, [[1.0, 2.0], [5.0, 7.0]])
    np.testing.assert_array_equal(a.gt_labels, [2, 11])  # 0-based
    np.testing.assert_array_equal(a.labels, [3, 0, 12])  # 1-based, 0 = background
    np.testing.assert_allclose(a.best_iou, [0.8516, 0, 0.31])
    np.testing.assert_allclose(a.segments[0], [28 / 30, 62 / 30])
    b = lists["video_validation_0000052"]  # no GT, no proposals: valid
    assert len(b) == 0 and len(b.gt_segments) == 0
    only = read_ssn_proposals(p, {"video_validation_0000052": 30.0},
                              keep={"video_validation_0000052"})
    assert list(only) == ["video_validation_0000052"]


def _random_list(rng, vid, fps=30.0):
    dur = rng.uniform(20, 100)
    gt = np.sort(rng.uniform(0, dur, (rng.integers(0, 5), 2)), axis=1)
    props = np.sort(rng.uniform(0, dur, (rng.integers(0, 40), 2)), axis=1)
    frames = int(round(dur * fps))
    gt, props = np.rint(gt * fps) / fps, np.rint(props * fps) / fps
    return ProposalList.from_segments(vid, props, gt, rng.integers(0, 20, len(gt)), fps, frames)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_ssn_round_trip(tmp_path_factory, seed):
    rng = np.random.default_rng(seed)
    lists = [_random_list(rng, f"v{i}") for i in range(3)]
    p = tmp_path_factory.mktemp("ssn") / "list.txt"
    write_ssn_proposals(p, lists)
    back = read_ssn_proposals(p, fps=30.0)
    assert list(back) == [p_.video_id for p_ in lists]
    for a in lists:
        b = back[a.video_id]
        np.testing.assert_allclose(b.segments, a.segments, atol=1e-9)
        np.testing.assert_allclose(b.gt_segments, a.gt_segments, atol=1e-9)
        np.testing.assert_array_equal(b.gt_labels, a.gt_labels)
        np.testing.assert_array_equal(b.labels, a.labels)
        np.testing.assert_allclose(b.best_iou, a.best_iou, atol=1e-4)
        np.testing.assert_allclose(b.overlap_self, a.overlap_self, atol=1e-4)


def test_from_segments_matches_loop():
    rng = np.random.default_rng(1)
    gt = np.array([[1.0, 3.0], [5.0, 9.0], [20.0, 21.0]])
    gl = np.array([4, 7, 1])
    props = np.sort(rng.uniform(0, 25, (60, 2)), axis=1)
    p = ProposalList.from_segments("v", props, gt, gl, 30.0, 750)
    for i, (s, e) in enumerate(props):
        inter = np.clip(np.minimum(e, gt[:, 1]) - np.maximum(s, gt[:, 0]), 0, None)
        iou = inter / ((e - s) + (gt[:, 1] - gt[:, 0]) - inter)
        ov = inter / (e - s)
        assert p.best_iou[i] == pytest.approx(iou.max())
        assert p.overlap_self[i] == pytest.approx(ov.max())
        if iou.max() > 0:
            assert p.labels[i] == gl[iou.argmax()] + 1
        else:
            assert p.labels[i] == 0


@pytest.mark.parametrize("text,match", [
    (SSN.replace("3 30 60\n", ""), "expected a block header|numbers per line|expected a count"),
    (SSN[: SSN.index("12 0.3100")], "truncated"),
    (SSN.replace("3 30 60", "3 60 30"), "inverted"),
    (SSN.replace("12 0.3100 1.0000 160 170", "12 0.3100 1.0000 160 900"),
     "outside the video"),
    (SSN.replace("3 0.8516", "33 0.8516"), r"labels must lie in \[0, 20\]"),
    (SSN.replace("3 30 60", "0 30 60"), "1-based"),
    (SSN.replace("0 0 0 0 15", "0 0 0 x 15"), "non-numeric"),
    ("garbage\n", "block header"),
])
def test_bad_lists(tmp_path, text, match):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_ssn_proposals(p, fps=30.0, num_classes=20)


def test_missing_fps_names_video(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text(SSN)
    with pytest.raises(ValueError, match="video_validation_0000051.*fps"):
        read_ssn_proposals(p, fps={})
    with pytest.raises(FileNotFoundError):
        read_ssn_proposals(tmp_path / "nope.txt", fps=30.0)


def test_bsn_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    seg = np.sort(rng.uniform(0, 50, (30, 2)), axis=1)
    score = rng.random(30)
    extra = {"xmin_score": rng.random(30), "xmax_score": rng.random(30)}
    write_bsn_csv(tmp_path / "v1.csv", seg, score, 50.0, extra)
    header = (tmp_path / "v1.csv").read_text().splitlines()[0]
    assert header == "xmin,xmax,xmin_score,xmax_score,score"
    s2, sc2 = read_bsn_csv(tmp_path / "v1.csv", 50.0)
    np.testing.assert_allclose(s2, seg, rtol=1e-8)
    np.testing.assert_allclose(sc2, score, rtol=1e-8)
    write_bsn_csv(tmp_path / "v2.csv", np.zeros((0, 2)), np.zeros(0), 10.0)
    both = read_bsn_folder(tmp_path, {"v1": 50.0, "v2": 10.0})
    assert both["v2"][0].shape == (0, 2)


def test_bsn_pandas_index_column(tmp_path):
    (tmp_path / "v.csv").write_text(",xmin,xmax,clr_score,reg_socre,score\n0,0.1,0.5,0.3,0.2,0.9\n")
    seg, score = read_bsn_csv(tmp_path / "v.csv", 10.0)
    np.testing.assert_allclose(seg, [[1.0, 5.0]])
    np.testing.assert_allclose(score, [0.9])


@pytest.mark.parametrize("text,match", [
    ("", "empty file"),
    ("xmin,xmax\n0.1,0.2\n", "missing column 'score'"),
    ("xmin,xmax,score\n0.5,0.2,1\n", "inverted"),
    ("xmin,xmax,score\n0.5,1.7,1\n", "outside"),
    ("xmin,xmax,score\n0.5,nan,1\n", "NaN"),
    ("xmin,xmax,score\n0.5,0.6\n", "columns"),
])
def test_bad_bsn(tmp_path, text, match):
    p = tmp_path / "vid9.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_bsn_csv(p, 10.0)
    with pytest.raises(ValueError, match="vid9"):
        read_bsn_csv(p, 10.0)


# ------------------------------------------------------------------ issue #15 / #14
def _read(tmp_path, text, **kw):
    p = tmp_path / "list.txt"
    p.write_text(text)
    return p, lambda: read_ssn_proposals(p, fps=30.0, num_classes=20, **kw)


def test_proposal_count_too_high_names_video_and_line(tmp_path):
    # the first video announces 5 proposals but has 3; the next block header follows
    p, read = _read(tmp_path, SSN.replace("\n3\n3 0.8516", "\n5\n3 0.8516"))
    with pytest.raises(ValueError) as err:
        read()
    assert str(err.value) == (f"{p}: video 'video_validation_0000051': expected 5 proposals "
                              "lines, the block ends at line 11 (line 12 is '# 1'; is the count "
                              "on line 8 too high?)")
    # the last video of the file: the file ends
    last = SSN.replace("video_validation_0000052\n120\n1\n0\n0\n",
                       "video_validation_0000052\n120\n1\n0\n2\n0 0 0 0 15\n\n")
    p, read = _read(tmp_path, last)
    with pytest.raises(ValueError) as err:
        read()
    assert str(err.value) == (f"{p}: video 'video_validation_0000052': expected 2 proposals "
                              "lines, file ends at line 18 (truncated list, or the count on "
                              "line 17 is too high)")
    assert "non-numeric" not in str(err.value)


def test_ground_truth_count_too_high_hints_at_the_count(tmp_path):
    p, read = _read(tmp_path, SSN.replace("300\n1\n2\n", "300\n1\n3\n"))
    with pytest.raises(ValueError) as err:
        read()
    assert str(err.value) == (f"{p}:8: video 'video_validation_0000051': field 'ground truth': "
                              "expected 3 numbers per line, got 1 (is the count on line 5 too "
                              "high?)")


@pytest.mark.parametrize("old,new,line,what", [
    ("12 0.3100 1.0000 160 170", "12 0.3100 1.0000 160 900", 11,
     "segment [160.0, 900.0] outside the video's 300 frames"),
    ("3 0.8516 0.9634 28 62", "3 0.8516 0.9634 -5 62", 9,
     "segment [-5.0, 62.0] outside the video's 300 frames"),
    ("0 0 0 0 15", "0 0 0 20 15", 10, "inverted segment [20.0, 15.0]"),
])
def test_bad_proposal_names_file_and_line(tmp_path, old, new, line, what):
    p, read = _read(tmp_path, SSN.replace(old, new))
    with pytest.raises(ValueError) as err:
        read()
    idx = line - 9
    assert str(err.value) == (f"{p}:{line}: video 'video_validation_0000051': field "
                              f"'proposals'[{idx}]: {what}" + (" (frames)" if "outside" not in
                                                               what else ""))


def test_ground_truth_past_the_last_frame_is_clipped_with_one_warning(tmp_path):
    # issue #14: THUMOS14's lists hold 30 GT segments ending after the last frame
    text = SSN.replace("12 150 210", "12 150 900") + """# 2
video_validation_0000053
100
1
2
5 90 140
5 120 160
0
"""
    p, read = _read(tmp_path, text)
    with pytest.warns(UserWarning) as rec:
        lists = read()
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert msg.startswith(f"{p}: 3 ground-truth segment(s) outside their video's frames were "
                          "clipped")
    assert f"e.g. {p}:7: video 'video_validation_0000051': ground truth [150.0, 900.0]" in msg
    a = lists["video_validation_0000051"]
    np.testing.assert_allclose(a.gt_segments, [[1.0, 2.0], [5.0, 10.0]])  # 900 -> 300 frames
    c = lists["video_validation_0000053"]
    np.testing.assert_allclose(c.gt_segments, [[3.0, 100 / 30]])  # [120, 160]: nothing left
    np.testing.assert_array_equal(c.gt_labels, [4])


def test_real_thumos14_style_list_does_not_abort(tmp_path):
    # the shape of the real problem: a frame count smaller than the annotated end
    text = "# 0\nvideo_test_0000004\n835\n1\n1\n7 800 873\n1\n7 0.9 1.0 790 835\n"
    _, read = _read(tmp_path, text)
    with pytest.warns(UserWarning, match="1 ground-truth segment"):
        lists = read()
    np.testing.assert_allclose(lists["video_test_0000004"].gt_segments * 30, [[800, 835]])


def test_zero_length_proposals_are_kept_with_one_warning(tmp_path):
    # SSN lists rounded to frames hold them: kept (tIoU 0), named with file and line
    p, read = _read(tmp_path, SSN.replace("0 0 0 0 15", "0 0 0 15 15"))
    with pytest.warns(UserWarning, match=rf"{p}:10: video 'video_validation_0000051': field "
                      r"'proposals'\[1\] \[15.0, 15.0\]"):
        out = read()
    assert len(out["video_validation_0000051"].segments) == 3
