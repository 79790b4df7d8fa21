"""``tagraph evaluate`` on suspicious inputs: one error line and exit status 2 for inputs that
used to give silent wrong results; ``WARNING:`` lines on stderr where a wrong number is likely;
the classes of the evaluated subset on the console. (File-format warnings, ``FormatWarning``,
are ``WARNING:`` lines too.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagraph.cli import main

GT = {"database": {
    f"vid{i}": {"subset": "test", "duration": 100.0, "annotations": [
        {"label": "A" if i % 2 else "B", "segment": [10.0 + i, 20.0 + i]}]}
    for i in range(4)}}


def _results(rows) -> dict:
    res: dict = {}
    for vid, label, score, s, e in rows:
        res.setdefault(vid, []).append({"label": label, "score": score, "segment": [s, e]})
    return {"version": "VERSION 1.3", "results": res, "external_data": {}}


ROWS = [(f"vid{i}", "A" if i % 2 else "B", 0.9, 10.0 + i, 20.0 + i) for i in range(4)]


def _files(tmp_path: Path, gt=GT, pred=None, pred_text: str | None = None) -> tuple[str, str]:
    g, p = tmp_path / "gt.json", tmp_path / "pred.json"
    g.write_text(json.dumps(gt))
    p.write_text(pred_text if pred_text is not None else json.dumps(_results(pred or ROWS)))
    return str(g), str(p)


def _evaluate(capsys, gt, pred, *extra) -> tuple[int, str, list[str]]:
    rc = main(["evaluate", "--gt", gt, "--pred", pred, "--tiou", "0.5", *extra])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, cap.out, cap.err.strip().splitlines()


def test_clean_inputs_print_classes_and_no_warning(tmp_path, capsys):
    gt, pred = _files(tmp_path)
    rc, out, err = _evaluate(capsys, gt, pred, "--subset", "test")
    assert rc == 0 and err == []
    assert "2 classes (ground-truth instances): B 2, A 2" in out
    assert "4 prediction videos, 4 of them in the evaluated ground truth" in out


def _dup_video(tmp_path):
    text = json.dumps(_results(ROWS))
    text = text.replace('"vid1": [', '"vid0": [{"label": "B", "score": 0.1, "segment": '
                        '[50.0, 60.0]}], "vid1": [')
    return _files(tmp_path, pred_text=text), "pred", "video 'vid0'", "duplicate video id"


def _dup_gt_video(tmp_path):
    gt, pred = _files(tmp_path)
    text = Path(gt).read_text().replace('"vid1": {', '"vid0": {"subset": "test", '
                                        '"annotations": []}, "vid1": {')
    Path(gt).write_text(text)
    return (gt, pred), "gt", "video 'vid0'", "duplicate video id in 'database'"


def _bool_score(tmp_path):
    rows = [*ROWS, ("vid2", "B", True, 30.0, 40.0)]
    return _files(tmp_path, pred=rows), "pred", "video 'vid2' results[1]", "score"


def _negative_segment(tmp_path):
    rows = [*ROWS, ("vid3", "A", 0.5, -10.0, -5.0)]
    return (_files(tmp_path, pred=rows), "pred", "video 'vid3' results[1]",
            "segment: [-10.0, -5.0] lies entirely before 0 s")


def _negative_gt_segment(tmp_path):
    gt = json.loads(json.dumps(GT))
    gt["database"]["vid1"]["annotations"][0]["segment"] = [-10.0, -5.0]
    return (_files(tmp_path, gt=gt), "gt", "video 'vid1'.annotations[0]",
            "segment: [-10.0, -5.0] lies entirely before 0 s")


def _nan_score(tmp_path):
    text = json.dumps(_results(ROWS)).replace("0.9", "NaN", 1)
    return _files(tmp_path, pred_text=text), "pred", "video 'vid0' results[0]", "score"


@pytest.mark.parametrize("case", [_dup_video, _dup_gt_video, _bool_score, _negative_segment,
                                  _negative_gt_segment, _nan_score])
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, case):
    (gt, pred), which, video, field = case(tmp_path)
    rc, out, err = _evaluate(capsys, gt, pred, "--subset", "test")
    assert rc == 2 and out == ""
    (line,) = err
    assert line.startswith(f"tagraph evaluate: error: {gt if which == 'gt' else pred}: ")
    assert video in line and field in line


def test_missing_subset_error_names_the_file(tmp_path, capsys):
    gt, pred = _files(tmp_path)
    rc, _, err = _evaluate(capsys, gt, pred, "--subset", "validation")
    assert rc == 2
    assert err == [f"tagraph evaluate: error: {gt}: no video in subset 'validation' "
                   "(subsets: 'test' (4 videos))"]


def test_warnings_are_warning_lines(tmp_path, capsys):
    gt = json.loads(json.dumps(GT))
    gt["database"]["vid9"] = {"subset": "validation", "duration": 50.0, "annotations": [
        {"label": "A", "segment": [1.0, 2.0]}]}
    rows = [(f"v_vid{i}", "A", 0.5, 300.0, 600.0) for i in range(3)]
    gt_path, pred = _files(tmp_path, gt=gt, pred=rows)
    rc, out, err = _evaluate(capsys, gt_path, pred)
    assert rc == 0 and "mAP (%)" in out
    assert all(line.startswith("WARNING: ") for line in err)
    text = "\n".join(err)
    assert "several subsets ('test' (4 videos), 'validation' (1 video))" in text
    assert (f"3 of 3 prediction videos (3 predictions) are not in the ground truth {gt_path}, "
            "e.g. 'v_vid0', 'v_vid1', 'v_vid2' (none of them matches: the mAP is 0)") in text
    assert "hint: the predictions use a 'v_' prefix that the ground truth does not" in text
    assert "5 of the 5 videos with ground truth" in text and "have no prediction" in text
    # --json: stdout stays one JSON object, the warnings still go to stderr
    rc, out, err = _evaluate(capsys, gt_path, pred, "--json")
    assert rc == 0 and json.loads(out)["mAP"] == [0.0] and len(err) == 3


def test_frames_instead_of_seconds_warns(tmp_path, capsys):
    rows = [(v, lab, sc, 30 * s, 30 * e) for v, lab, sc, s, e in ROWS]
    gt, pred = _files(tmp_path, pred=rows)
    rc, _, err = _evaluate(capsys, gt, pred, "--subset", "test")
    assert rc == 0
    (line,) = err
    assert line.startswith(f"WARNING: {pred}: 100% of the predictions (4 of 4) end more than")
    assert line.endswith("frames instead of seconds?")


def test_no_predictions_warns(tmp_path, capsys):
    gt, pred = _files(tmp_path, pred_text=json.dumps(_results([])))
    rc, out, err = _evaluate(capsys, gt, pred, "--subset", "test")
    assert rc == 0 and "0 prediction videos" in out
    assert err == [f"WARNING: {pred}: no predictions at all: the mAP is 0 (4 videos with "
                   f"ground truth in subset 'test' of {gt})"]


def test_label_typo_is_listed_and_warned(tmp_path, capsys):
    gt = json.loads(json.dumps(GT))
    for i in range(4, 8):
        gt["database"][f"vid{i}"] = {"subset": "test", "duration": 100.0, "annotations": [
            {"label": "A", "segment": [10.0, 20.0]}]}
    gt["database"]["vid3"]["annotations"][0]["label"] = "a"
    gt_path, pred = _files(tmp_path, gt=gt)
    rc, out, err = _evaluate(capsys, gt_path, pred, "--subset", "test")
    assert rc == 0
    assert "3 classes (ground-truth instances): B 2, A 5, a 1" in out
    (typo,) = [line for line in err if "looks like a typo" in line]
    assert typo == (f"WARNING: {gt_path}: video 'vid3': label 'a' (1 instance) looks like a "
                    "typo of 'A' (5 instances); it is evaluated as a class of its own")
