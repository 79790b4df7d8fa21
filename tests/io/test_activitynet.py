import copy
import json
import math

import numpy as np
import pytest

from tagraph.io import (
    Detections,
    FormatWarning,
    VideoAnnotation,
    load_annotations,
    load_results,
    save_annotations,
    save_results,
)

GT = {
    "version": "test",
    "database": {
        "v1": {
            "subset": "Test",
            "duration": 20.0,
            "fps": 30.0,
            "annotations": [
                {"label": "Jump", "segment": [1.0, 3.5]},
                {"label": "Run", "segment": [4.0, 9.25]},
            ],
        },
        "v2": {"subset": "Validation", "duration": 10.0, "annotations": []},
        "v3": {"subset": "test", "annotations": [{"label": "Run", "segment": [0.0, 2.0]}]},
    },
}

RESULTS = {
    "version": "VERSION 1.3",
    "results": {
        "v1": [
            {"label": "Jump", "score": 0.9, "segment": [1.0, 3.0]},
            {"label": "Run", "score": 0.4, "segment": [4.5, 9.0]},
        ],
        "v9": [{"label": "Run", "score": 0.1, "segment": [0, 1]}],
    },
    "external_data": {"used": False, "details": ""},
}


def test_load_annotations_dict_and_subset():
    anns = load_annotations(GT)
    assert list(anns) == ["v1", "v2", "v3"]
    v1 = anns["v1"]
    assert v1.subset == "Test" and v1.duration == 20.0 and v1.fps == 30.0
    assert v1.labels == ["Jump", "Run"]
    assert v1.segments.dtype == np.float64
    np.testing.assert_array_equal(v1.segments, [[1.0, 3.5], [4.0, 9.25]])
    assert anns["v3"].fps is None and anns["v3"].duration is None
    # subset names compare case-insensitively
    assert list(load_annotations(GT, subset="TEST")) == ["v1", "v3"]
    assert list(load_annotations(GT, subset="validation")) == ["v2"]
    # already loaded annotations pass through
    assert list(load_annotations(anns, subset="test")) == ["v1", "v3"]


def test_annotations_roundtrip(tmp_path):
    path = tmp_path / "gt.json"
    anns = load_annotations(GT)
    save_annotations(path, anns, version="x")
    back = load_annotations(path)
    assert list(back) == list(anns)
    for vid in anns:
        a, b = anns[vid], back[vid]
        assert (a.subset, a.duration, a.fps, a.labels) == (b.subset, b.duration, b.fps, b.labels)
        np.testing.assert_array_equal(a.segments, b.segments)
    assert json.loads(path.read_text())["version"] == "x"


def _bad_gt(mutate):
    gt = copy.deepcopy(GT)
    mutate(gt)
    return gt


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda g: g.pop("database"), "missing top-level field 'database'"),
        (lambda g: g["database"]["v1"].pop("annotations"), "video 'v1': missing field 'annotat"),
        (
            lambda g: g["database"]["v1"]["annotations"][1].pop("label"),
            r"video 'v1'.annotations\[1\]: missing field 'label'",
        ),
        (
            lambda g: g["database"]["v1"]["annotations"][0].pop("segment"),
            r"video 'v1'.annotations\[0\]: missing field 'segment'",
        ),
        (
            lambda g: g["database"]["v1"]["annotations"][1].update(segment=[5.0, 2.0]),
            r"video 'v1'.annotations\[1\].segment: start 5.0 > end 2.0",
        ),
        (
            lambda g: g["database"]["v1"]["annotations"][1].update(segment=[math.nan, 2.0]),
            r"video 'v1'.annotations\[1\].segment: .*finite",
        ),
        (
            lambda g: g["database"]["v1"]["annotations"][1].update(segment=["a", 2.0]),
            r"video 'v1'.annotations\[1\].segment: .*numbers",
        ),
        (
            lambda g: g["database"]["v1"]["annotations"][1].update(segment=[1.0]),
            r"video 'v1'.annotations\[1\].segment: expected \[start, end\]",
        ),
        (lambda g: g["database"]["v1"].update(duration="long"), r"video 'v1'.duration"),
        (lambda g: g["database"]["v1"].update(subset=3), r"video 'v1'.subset"),
        (
            lambda g: g["database"]["v3"]["annotations"][0].update(label=7),
            r"video 'v3'.annotations\[0\].label",
        ),
    ],
)
def test_load_annotations_errors(mutate, match):
    with pytest.raises(ValueError, match=match):
        load_annotations(_bad_gt(mutate))


def test_load_annotations_errors_name_file(tmp_path):
    path = tmp_path / "gt.json"
    gt = _bad_gt(lambda g: g["database"]["v2"].update(annotations={"x": 1}))
    path.write_text(json.dumps(gt))
    with pytest.raises(ValueError, match=rf"{path}: video 'v2'.annotations: expected a list"):
        load_annotations(path)


def test_load_annotations_truncated_json(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(GT)[:-20])
    with pytest.raises(ValueError, match=rf"{path}: invalid or truncated JSON"):
        load_annotations(path)


def test_load_annotations_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_annotations(tmp_path / "nope.json")


def test_load_annotations_subset_errors():
    with pytest.raises(ValueError, match=r"no video in subset 'train'.*'Test'"):
        load_annotations(GT, subset="train")
    gt = _bad_gt(lambda g: g["database"]["v2"].pop("subset"))
    assert len(load_annotations(gt)) == 3  # fine without a subset filter
    with pytest.raises(ValueError, match="video 'v2': missing field 'subset'"):
        load_annotations(gt, subset="test")


def test_segment_beyond_duration_warns():
    gt = _bad_gt(lambda g: g["database"]["v1"]["annotations"][1].update(segment=[15, 25.0]))
    with pytest.warns(FormatWarning, match=r"1 ground-truth segment.*video 'v1'"):
        anns = load_annotations(gt)
    np.testing.assert_array_equal(anns["v1"].segments[1], [15.0, 25.0])


def test_video_annotation_checks_lengths():
    with pytest.raises(ValueError, match="2 segments but 1 labels"):
        VideoAnnotation("v", segments=[[0, 1], [2, 3]], labels=["a"])


def test_load_results_dict():
    det = load_results(RESULTS)
    assert len(det) == 3
    assert det.video_id.tolist() == ["v1", "v1", "v9"]
    assert det.label.tolist() == ["Jump", "Run", "Run"]
    assert det.score.dtype == np.float64 and det.segment.shape == (3, 2)
    np.testing.assert_array_equal(det.segment[2], [0.0, 1.0])


def test_results_roundtrip(tmp_path):
    path = tmp_path / "res.json"
    det = load_results(RESULTS)
    save_results(path, det, external_data={"used": True, "details": "x"})
    raw = json.loads(path.read_text())
    assert raw["version"] == "VERSION 1.3" and raw["external_data"]["used"] is True
    back = load_results(path)
    assert back.to_records() == det.to_records()


def test_detections_helpers():
    recs = [("a", "x", 0.5, 1.0, 2.0), ("b", "y", 0.25, 0.0, 3.0)]
    det = Detections.from_records(recs)
    assert len(det) == 2 and det.to_records() == recs
    both = Detections.concat([det, Detections.empty(), det[np.array([1])]])
    assert both.to_records() == recs + recs[1:]
    assert len(Detections.from_records([])) == 0
    assert det[0].to_records() == recs[:1]
    assert "2 detections, 2 videos" in repr(det)
    with pytest.raises(ValueError, match="same length"):
        Detections(["a"], ["x", "y"], [1.0], [[0, 1]])


def _bad_res(mutate):
    res = copy.deepcopy(RESULTS)
    mutate(res)
    return res


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda r: r.pop("results"), "missing top-level field 'results'"),
        (
            lambda r: r["results"]["v9"][0].update(score=math.nan),
            r"video 'v9' results\[0\].score: must be finite",
        ),
        (
            lambda r: r["results"]["v1"][1].update(score="high"),
            r"video 'v1' results\[1\].score: expected a number",
        ),
        (
            lambda r: r["results"]["v1"][1].update(segment=[9.0, 4.0]),
            r"video 'v1' results\[1\].segment: start 9.0 > end 4.0",
        ),
        (
            lambda r: r["results"]["v1"][0].update(segment=[1.0, math.inf]),
            r"video 'v1' results\[0\].segment: start and end must be finite",
        ),
        (
            lambda r: r["results"]["v1"][0].update(segment=[1.0, "2"]),
            r"video 'v1' results\[0\].segment: start and end must be numbers",
        ),
        (
            lambda r: r["results"]["v1"][0].update(segment=[1.0]),
            r"video 'v1' results\[0\].segment: expected \[start, end\]",
        ),
        (
            lambda r: r["results"]["v1"][1].pop("label"),
            r"video 'v1' results\[1\]: missing field 'label'",
        ),
        (
            lambda r: r["results"]["v1"][1].update(label=None),
            r"video 'v1' results\[1\].label: expected a string",
        ),
        (lambda r: r["results"].update(v1={"a": 1}), r"video 'v1': expected a list"),
        (lambda r: r["results"]["v1"].append(3), r"video 'v1' results\[2\]: expected an object"),
    ],
)
def test_load_results_errors(mutate, match):
    with pytest.raises(ValueError, match=match):
        load_results(_bad_res(mutate))


def test_load_results_taxonomy():
    load_results(RESULTS, taxonomy=["Jump", "Run"])
    with pytest.raises(ValueError, match=r"video 'v1' results\[1\].label: label 'Run' is not in"):
        load_results(RESULTS, taxonomy=["Jump"])


def test_load_results_missing_version_warns():
    res = _bad_res(lambda r: (r.pop("version"), r.pop("external_data")))
    with pytest.warns(FormatWarning, match="version"):
        assert len(load_results(res)) == 3


def test_load_results_validates_detections():
    det = Detections.from_records([("a", "x", 0.5, 2.0, 1.0)])
    with pytest.raises(ValueError, match="video 'a' row 0: segment: start 2.0 > end 1.0"):
        load_results(det)


def test_load_results_bad_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{\"results\": {\"v1\": [")
    with pytest.raises(ValueError, match=rf"{path}: invalid or truncated JSON"):
        load_results(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=rf"{path}: expected a JSON object"):
        load_results(path)
