import warnings

import numpy as np
import pytest

from tagraph.data import WTALCThumos14, load_wtalc_annotations, load_wtalc_features
from tagraph.io import load_annotations
from tests.data.helpers import shared_data


def _write_wtalc(folder, videos, classes=("Run", "Jump")):
    """A tiny W-TALC style release (bytes strings, object arrays)."""
    ann = folder / "Thumos14reduced-Annotations"
    ann.mkdir(parents=True)
    np.save(ann / "classlist.npy", np.array([c.encode() for c in classes]))
    np.save(ann / "videoname.npy", np.array([v["id"].encode() for v in videos]))
    np.save(ann / "subset.npy", np.array([v["subset"].encode() for v in videos]))
    np.save(ann / "duration.npy", np.array([[v["duration"]] for v in videos]))
    labels = np.empty(len(videos), dtype=object)
    segments = np.empty(len(videos), dtype=object)
    feats = np.empty(len(videos), dtype=object)
    rng = np.random.default_rng(0)
    for i, v in enumerate(videos):
        labels[i] = [lab.encode() for lab, _ in v["ann"]]
        segments[i] = [list(seg) for _, seg in v["ann"]]
        feats[i] = rng.standard_normal((int(v["duration"] * 25 / 16), 8)).astype(np.float32)
    np.save(ann / "labels.npy", labels, allow_pickle=True)
    np.save(ann / "segments.npy", segments, allow_pickle=True)
    (ann / "Ambiguous_test.txt").write_text("t1  1.0 2.5\nt1 4.0 4.5\n")
    np.save(folder / "Thumos14reduced-I3D-JOINTFeatures.npy", feats, allow_pickle=True)
    return feats


VIDEOS = [
    dict(id="v1", subset="validation", duration=20.0, ann=[("Run", (1.0, 3.0)),
                                                            ("Jump", (8.0, 9.5))]),
    dict(id="v2", subset="validation", duration=10.0, ann=[]),
    dict(id="t1", subset="test", duration=12.0, ann=[("Jump", (5.0, 7.0))]),
]


def test_reader_and_dataset(tmp_path):
    feats = _write_wtalc(tmp_path, VIDEOS)
    a = load_wtalc_annotations(tmp_path / "Thumos14reduced-Annotations")
    assert a.classes == ["Run", "Jump"] and a.video_ids == ["v1", "v2", "t1"]
    np.testing.assert_allclose(a.videos["v1"].segments, [[1, 3], [8, 9.5]])
    assert a.videos["v1"].labels == ["Run", "Jump"] and a.videos["t1"].subset == "test"
    np.testing.assert_allclose(a.ambiguous["t1"], [[1.0, 2.5], [4.0, 4.5]])
    train = WTALCThumos14(tmp_path, subset="train", graph=None)
    assert [d.video_id for d in train] == ["v1", "v2"]
    d = train[0]
    np.testing.assert_array_equal(d.x.numpy(), feats[0])
    np.testing.assert_allclose(d.pos.numpy(), (np.arange(len(feats[0])) * 16 + 8) / 25,
                               rtol=1e-6)
    np.testing.assert_array_equal(d.y.numpy(), [[1, 1]])
    assert d.gt_labels.tolist() == [0, 1] and d.ambiguous_segments.shape == (0, 2)
    test = WTALCThumos14(tmp_path, subset="test", graph=None, modality="flow")
    assert test[0].x.shape[1] == 4
    np.testing.assert_allclose(test[0].ambiguous_segments.numpy(), [[1.0, 2.5], [4.0, 4.5]])
    with pytest.raises(TypeError, match="stride"):
        WTALCThumos14(tmp_path, stride=4)


@pytest.mark.parametrize("edit,match", [
    (lambda ann: np.save(ann / "subset.npy", np.array([b"test"])), "subset.npy: 1 entries"),
    (lambda ann: np.save(ann / "labels.npy", _obj([[b"Swim", b"Run"], [], [b"Jump"]]),
                         allow_pickle=True),
     r"labels.npy: video 'v1': field 'labels\[0\]' 'Swim'"),
    (lambda ann: np.save(ann / "segments.npy", _obj([[[3.0, 1.0], [8, 9]], [], [[5, 7]]]),
                         allow_pickle=True),
     r"segments.npy: video 'v1': field 'segments\[0\]'.*inverted"),
    (lambda ann: np.save(ann / "segments.npy", _obj([[[1.0, 3.0]], [], [[5, 7]]]),
                         allow_pickle=True),
     r"segments.npy: video 'v1': 1 segments but labels.npy has 2"),
    (lambda ann: (ann / "duration.npy").unlink(), "duration.npy: W-TALC annotation file not"),
])
def test_bad_annotations(tmp_path, edit, match):
    _write_wtalc(tmp_path, VIDEOS)
    edit(tmp_path / "Thumos14reduced-Annotations")
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load_wtalc_annotations(tmp_path / "Thumos14reduced-Annotations")


def _obj(items):
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def test_bad_features(tmp_path):
    feats = _write_wtalc(tmp_path, VIDEOS)
    path = tmp_path / "Thumos14reduced-I3D-JOINTFeatures.npy"
    with pytest.raises(ValueError, match="3 feature entries but videoname.npy lists 4"):
        load_wtalc_features(path, 4)
    feats[1] = feats[1].copy()
    feats[1][0, 0] = np.nan
    np.save(path, feats, allow_pickle=True)
    with pytest.raises(ValueError, match=r"video 'v2' \(entry 1\).*NaN/Inf"):
        WTALCThumos14(tmp_path, subset="train", graph=None)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="feature file not found"):
        WTALCThumos14(tmp_path, subset="train", graph=None)


def test_real_annotations_agree_with_the_json():
    shared = shared_data()
    if shared is None:
        pytest.skip("shared THUMOS14 annotations not available")
    a = load_wtalc_annotations(shared / "thumos14" / "Thumos14reduced-Annotations")
    assert len(a.classes) == 20 and len(a.video_ids) == 412
    assert sum(len(v) for v in a.videos.values()) == 6365
    assert {v.subset for v in a.videos.values()} == {"validation", "test"}
    assert len(a.ambiguous) > 0 and all(k.startswith("video_test_") for k in a.ambiguous)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        js = load_annotations(shared / "thumos14" / "thumos14.json")
    assert set(js) == set(a.video_ids)
    for vid in a.video_ids[::37]:  # same instances in both releases
        w, j = a.videos[vid], js[vid]
        key_w = sorted(zip(w.labels, map(tuple, np.round(w.segments, 1))))
        key_j = sorted(zip(j.labels, map(tuple, np.round(j.segments, 1))))
        assert key_w == key_j, vid
    assert sorted(a.classes) == sorted({lab for v in js.values() for lab in v.labels})


def test_real_annotations_through_the_dataset(tmp_path):
    shared = shared_data()
    if shared is None:
        pytest.skip("shared THUMOS14 annotations not available")
    src = shared / "thumos14" / "Thumos14reduced-Annotations"
    a = load_wtalc_annotations(src)
    rng = np.random.default_rng(0)
    feats = np.empty(len(a.video_ids), dtype=object)
    for i, vid in enumerate(a.video_ids):
        feats[i] = rng.standard_normal((int(a.videos[vid].duration * 25 / 16), 4)).astype(
            np.float32)
    np.save(tmp_path / "Thumos14reduced-I3D-JOINTFeatures.npy", feats, allow_pickle=True)
    with pytest.warns(UserWarning, match="outside"):
        ds = WTALCThumos14(tmp_path, subset="test", annotation_dir=src, graph=None,
                           max_snippets=750, clicks="background")
    assert len(ds) == 212 and ds.num_classes == 20
    assert max(d.num_nodes for d in ds) == 750
    amb = sum(int(d.ambiguous_segments.size(0)) for d in ds)
    # Ambiguous_test.txt also lists video_test_0001292, which the reduced set leaves out
    assert amb == sum(len(v) for k, v in a.ambiguous.items() if k in a.videos)
    assert all(bool((d.gt_segments[:, 1] <= d.duration + 1e-3).all()) for d in ds)
