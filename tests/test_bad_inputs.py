"""The bad-input suite (issue #15, with #14's config / run-folder / evaluate cases): every bad
input, driven through the command line, ends in ONE clear line -- exit status 2 and
``tagraph CMD: error: ...`` naming the file, the video and the field or config key -- or, where
the input is valid but the number is probably wrong, exit status 0 and a named ``WARNING:``
line. Never a Python traceback, never a silent wrong result.

Each case builds its inputs in ``tmp_path`` (the tiny THUMOS-layout dataset folder and the
1-epoch ECM run are built once per module) and returns the command line and the strings
stderr must hold."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from tagraph.cli import main
from tests.engine.layout_helpers import synthetic, write_layout


# ----------------------------------------------------------------------------- fixtures
@dataclass
class World:
    """What the module-scoped fixture built: the dataset folder, a second one whose
    features have another dimension, and a finished 1-epoch run."""

    data: Path
    data64: Path
    run: Path
    gen: object = None


TRAIN_SETS = ["train.epochs=1", "model.hidden_channels=16", "train.batch_size=4"]


def data_sets(folder: Path, *extra: str) -> list[str]:
    sets = [f"data.root={json.dumps(str(folder))}", "data.features=features",
            "data.feature_stride=16", *extra]
    return sum((["--set", s] for s in sets), [])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("bad_inputs")
    files = synthetic(root / "gen", stride=16)
    data = write_layout(files, root / "data")
    files64 = synthetic(root / "gen64", stride=16, feature_dim=64)
    data64 = write_layout(files64, root / "data64")
    run = root / "run"
    rc = main(["train", "--config", "ecm/thumos14", "--out", str(run), "--quiet", "--device",
               "cpu", *data_sets(data, *TRAIN_SETS)])
    assert rc == 0
    return World(data, data64, run, files)


@dataclass
class Ctx:
    tmp: Path
    world: World
    monkeypatch: pytest.MonkeyPatch
    after: list[Callable[[], None]] = field(default_factory=list)

    def copy_data(self) -> Path:
        dst = self.tmp / "data"
        shutil.copytree(self.world.data, dst)
        return dst

    def copy_run(self) -> Path:
        dst = self.tmp / "run"
        shutil.copytree(self.world.run, dst)
        return dst


# ----------------------------------------------------------------------------- JSON inputs
GT = {"database": {
    f"vid{i}": {"subset": "test", "duration": 100.0, "annotations": [
        {"label": "Jump" if i % 2 else "Run", "segment": [10.0 + i, 20.0 + i]},
        {"label": "Jump" if i % 2 else "Run", "segment": [40.0 + i, 50.0 + i]}]}
    for i in range(4)}}
ROWS = [(f"vid{i}", "Jump" if i % 2 else "Run", 0.9, 10.0 + i, 20.0 + i) for i in range(4)]


def results(rows=ROWS) -> dict:
    res: dict = {}
    for vid, label, score, s, e in rows:
        res.setdefault(vid, []).append({"label": label, "score": score, "segment": [s, e]})
    return {"version": "VERSION 1.3", "results": res, "external_data": {}}


def gt_copy() -> dict:
    return json.loads(json.dumps(GT))


def write(path: Path, obj) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def evaluate(c: Ctx, gt=None, pred=None, *extra: str) -> tuple[list[str], Path, Path]:
    g = write(c.tmp / "gt.json", GT if gt is None else gt)
    p = write(c.tmp / "pred.json", results() if pred is None else pred)
    return ["evaluate", "--gt", str(g), "--pred", str(p), "--tiou", "0.5", *extra], g, p


# ----------------------------------------------------------------------------- the cases
@dataclass
class Case:
    name: str
    build: Callable[[Ctx], tuple[list[str], list[str]]]
    rc: int = 2
    warning: bool = False
    multiline: bool = False  # an error line followed by help lines (where to get the data)


CASES: list[Case] = []


def case(rc: int = 2, warning: bool = False, multiline: bool = False):
    def deco(fn):
        CASES.append(Case(fn.__name__, fn, rc, warning, multiline))
        return fn
    return deco


# --- evaluate: ground truth / results JSON -------------------------------------------------
@case()
def gt_duplicate_video(c):
    text = json.dumps(GT).replace('"vid1": {', '"vid0": {"subset": "test", "duration": 9.0, '
                                  '"annotations": []}, "vid1": {')
    argv, g, _ = evaluate(c, gt=text)
    return argv, [str(g), "'vid0'", "duplicate"]


@case()
def results_duplicate_video(c):
    text = json.dumps(results()).replace('"vid1": [', '"vid0": [], "vid1": [')
    argv, _, p = evaluate(c, pred=text)
    return argv, [str(p), "'vid0'", "duplicate"]


@case()
def results_score_true(c):
    argv, _, p = evaluate(c, pred=results([("vid0", "Run", True, 10.0, 20.0)]))
    return argv, [str(p), "'vid0'", ".score"]


@case()
def results_score_string(c):
    argv, _, p = evaluate(c, pred=results([("vid0", "Run", "0.5", 10.0, 20.0)]))
    return argv, [str(p), "'vid0'", ".score"]


@case()
def results_score_nan(c):
    text = json.dumps(results([("vid0", "Run", float("nan"), 10.0, 20.0)]))
    argv, _, p = evaluate(c, pred=text)
    return argv, [str(p), "'vid0'", ".score"]


@case()
def results_negative_segment(c):
    argv, _, p = evaluate(c, pred=results([("vid2", "Run", 0.5, -10.0, -5.0)]))
    return argv, [str(p), "'vid2'", ".segment"]


@case()
def results_inverted_segment(c):
    argv, _, p = evaluate(c, pred=results([("vid2", "Run", 0.5, 20.0, 10.0)]))
    return argv, [str(p), "'vid2'", ".segment"]


@case()
def results_segment_not_a_pair(c):
    argv, _, p = evaluate(c, pred=results([("vid2", "Run", 0.5, 10.0, 20.0)]))
    obj = json.loads(p.read_text())
    obj["results"]["vid2"][0]["segment"] = [10.0]
    write(p, obj)
    return argv, [str(p), "'vid2'", ".segment"]


@case()
def results_label_missing(c):
    argv, _, p = evaluate(c)
    obj = json.loads(p.read_text())
    del obj["results"]["vid3"][0]["label"]
    write(p, obj)
    return argv, [str(p), "'vid3'", "'label'"]


@case()
def results_not_json(c):
    argv, _, p = evaluate(c, pred='{"results": {"vid0": [')
    return argv, [str(p)]


@case()
def results_without_results_key(c):
    argv, _, p = evaluate(c, pred={"version": "x"})
    return argv, [str(p), "'results'"]


@case()
def results_missing_file(c):
    argv, _, p = evaluate(c)
    p.unlink()
    return argv, [str(p)]


@case()
def gt_missing_file(c):
    argv, g, _ = evaluate(c)
    g.unlink()
    return argv, [str(g)]


@case()
def gt_without_database(c):
    argv, g, _ = evaluate(c, gt={"taxonomy": []})
    return argv, [str(g), "'database'"]


@case()
def gt_negative_segment(c):
    gt = gt_copy()
    gt["database"]["vid1"]["annotations"][0]["segment"] = [-10.0, -5.0]
    argv, g, _ = evaluate(c, gt=gt)
    return argv, [str(g), "'vid1'", ".segment"]


@case()
def gt_segment_nan(c):
    gt = gt_copy()
    gt["database"]["vid1"]["annotations"][0]["segment"] = [float("nan"), 5.0]
    argv, g, _ = evaluate(c, gt=json.dumps(gt))
    return argv, [str(g), "'vid1'", ".segment"]


@case()
def gt_label_not_a_string(c):
    gt = gt_copy()
    gt["database"]["vid2"]["annotations"][0]["label"] = 7
    argv, g, _ = evaluate(c, gt=gt)
    return argv, [str(g), "'vid2'", ".label"]


@case()
def gt_annotations_not_a_list(c):
    gt = gt_copy()
    gt["database"]["vid2"]["annotations"] = {"label": "Run"}
    argv, g, _ = evaluate(c, gt=gt)
    return argv, [str(g), "'vid2'", ".annotations"]


@case()
def gt_duration_negative(c):
    gt = gt_copy()
    gt["database"]["vid2"]["duration"] = -3.0
    argv, g, _ = evaluate(c, gt=gt)
    return argv, [str(g), "'vid2'", ".duration"]


@case()
def gt_subset_missing(c):
    argv, g, _ = evaluate(c, None, None, "--subset", "validation")
    return argv, [str(g), "'validation'"]


@case(rc=0, warning=True)
def predictions_on_videos_absent_from_gt(c):
    argv, g, _ = evaluate(c, pred=results(ROWS + [("ghost7", "Run", 0.8, 1.0, 2.0)]))
    return argv, [str(g), "'ghost7'"]


@case(rc=0, warning=True)
def v_prefix_on_prediction_ids(c):
    argv, g, _ = evaluate(c, pred=results([(f"v_{v}", lab, s, a, b)
                                           for v, lab, s, a, b in ROWS]))
    return argv, [str(g), "'v_vid0'", "'v_' prefix"]


@case(rc=0, warning=True)
def segments_in_frames(c):
    argv, _, p = evaluate(c, pred=results([(v, lab, s, 300.0 * a, 300.0 * b)
                                           for v, lab, s, a, b in ROWS]))
    return argv, [str(p), "frames"]


@case(rc=0, warning=True)
def gt_several_subsets_and_no_subset(c):
    gt = gt_copy()
    gt["database"]["vid3"]["subset"] = "validation"
    argv, g, _ = evaluate(c, gt=gt)
    return argv, [str(g), "several subsets", "'validation'", "--subset"]


@case(rc=0, warning=True)
def gt_label_typo(c):
    gt = gt_copy()
    gt["database"]["vid2"]["annotations"][1]["label"] = "run"
    argv, g, _ = evaluate(c, gt=gt)
    return argv, [str(g), "'run'", "'Run'"]


@case()
def results_label_unknown_to_gt(c):
    argv, _, p = evaluate(c, pred=results(ROWS + [("vid0", "Runn", 0.8, 10.0, 20.0)]))
    return argv, [str(p), "'Runn'"]


@case(rc=0, warning=True)
def results_empty(c):
    argv, _, p = evaluate(c, pred={"version": "x", "results": {}})
    return argv, [str(p), "no prediction"]


@case()
def ambiguous_file_bad_line(c):
    amb = write(c.tmp / "amb.txt", "vid0 10 20\nvid1 twelve 30\n")
    argv, _, _ = evaluate(c, None, None, "--ambiguous", str(amb))
    return argv, [str(amb), "2"]


@case()
def tiou_out_of_range(c):
    argv, _, _ = evaluate(c)
    argv[argv.index("--tiou") + 1] = "1.5"
    return argv, ["--tiou", "1.5"]


@case()
def analyze_duplicate_video(c):
    argv, _, p = evaluate(c, pred=json.dumps(results()).replace('"vid1": [', '"vid0": [], '
                                                                '"vid1": ['))
    return ["analyze", "--gt", argv[2], "--pred", str(p)], [str(p), "'vid0'", "duplicate"]


@case(rc=0, warning=True)
def analyze_v_prefix(c):
    argv, g, _ = evaluate(c, pred=results([(f"v_{v}", lab, s, a, b)
                                           for v, lab, s, a, b in ROWS]))
    return ["analyze", "--gt", str(g), "--pred", argv[4]], [str(g), "'v_' prefix"]


@case()
def report_score_true(c):
    argv, g, p = evaluate(c, pred=results([("vid0", "Run", True, 10.0, 20.0)]))
    return (["report", "--gt", str(g), "--pred", str(p), "--out", str(c.tmp / "r.html")],
            [str(p), "'vid0'", ".score"])


@case()
def plot_results_negative_segment(c):
    argv, g, p = evaluate(c, pred=results([("vid0", "Run", 0.5, -10.0, -5.0)]))
    return (["plot", "--results", str(p), "--gt", str(g), "--video", "vid0", "--out",
             str(c.tmp / "t.png")], [str(p), "'vid0'", ".segment"])


# --- configs ----------------------------------------------------------------------------------
def config_file(c: Ctx, body: str, name: str = "cfg.toml") -> Path:
    return write(c.tmp / name, 'base = "ecm/synthetic"\n' + body)


def train(c: Ctx, config: str | Path, *extra: str) -> list[str]:
    return ["train", "--config", str(config), "--out", str(c.tmp / "out"), "--quiet",
            "--device", "cpu", *extra]


def _config_case(body: str, needles: list[str]):
    def build(c):
        f = config_file(c, body)
        return train(c, f), [str(f), *needles]
    return build


for _name, _body, _needles in [
    ("config_hidden_channels_0", "[model]\nhidden_channels = 0\n", ["model.hidden_channels"]),
    ("config_hidden_channels_string", '[model]\nhidden_channels = "32"\n',
     ["model.hidden_channels"]),
    ("config_epochs_float", "[train]\nepochs = 2.7\n", ["train.epochs", "2.7"]),
    ("config_epochs_0", "[train]\nepochs = 0\n", ["train.epochs"]),
    ("config_lr_string", '[optim]\nlr = "fast"\n', ["optim.lr", "fast"]),
    ("config_lr_inf", "[optim]\nlr = inf\n", ["optim.lr"]),
    ("config_val_fraction", "[data]\nval_fraction = 1.5\n", ["data.val_fraction"]),
    ("config_tiou", "[eval]\ntiou = [0.5, 1.5]\n", ["eval.tiou", "(1.5 is not)"]),
    ("config_unknown_key", "[data]\ncrop_snipets = 64\n",
     ["data.crop_snipets", "did you mean 'data.crop_snippets'"]),
    ("config_unknown_key_learning_rate", "[optim]\nlearning_rate = 0.1\n",
     ["learning_rate", "optim.lr"]),
    ("config_unknown_table", "[modle]\nhidden_channels = 16\n", ["modle"]),
    ("config_toml_syntax", "[model\nhidden_channels = 16\n", ["line"]),
    ("config_unknown_method", 'method = "ecmm"\n', ["method", "ecmm"]),
    ("config_unknown_base", "", []),
]:
    CASES.append(Case(_name, _config_case(_body, _needles)))


def _unknown_base(c):
    f = write(c.tmp / "cfg.toml", 'base = "ecm/synthetc"\n')
    return train(c, f), [str(f), "ecm/synthetc"]


CASES[-1] = Case("config_unknown_base", _unknown_base)


@case()
def config_base_loop(c):
    a, b = c.tmp / "a.toml", c.tmp / "b.toml"
    write(a, f'base = "{b}"\n')
    write(b, f'base = "{a}"\n')
    return train(c, a), [str(a), "base"]


@case()
def config_missing_file(c):
    f = c.tmp / "nope.toml"
    return train(c, f), [str(f)]


@case()
def set_unknown_key_did_you_mean(c):
    return train(c, "ecm/synthetic", "--set", "data.crop_snipets=64"), [
        "data.crop_snipets", "did you mean 'data.crop_snippets'"]


@case()
def set_without_equals(c):
    return train(c, "ecm/synthetic", "--set", "optim.lr"), ["optim.lr"]


@case()
def set_bad_value(c):
    return train(c, "ecm/synthetic", "--set", "model.hidden_channels=-4"), [
        "model.hidden_channels", "-4"]


@case()
def set_model_key_of_another_method(c):
    return train(c, "ecm/synthetic", "--set", "model.regularize=true"), ["model.regularize"]


# --- data folders and training ----------------------------------------------------------------
def train_data(c: Ctx, folder: Path, *extra: str, config: str = "ecm/thumos14") -> list[str]:
    return train(c, config, *data_sets(folder, *TRAIN_SETS, *extra))


def _no_run_written(c: Ctx) -> None:
    out = c.tmp / "out"
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


def one_video(folder: Path, subset: str = "test") -> str:
    return sorted(p.stem for p in (folder / "features").glob(f"*_{subset}_*.npy"))[0]


@case(multiline=True)
def dataset_folder_missing(c):
    c.after.append(lambda: _no_run_written(c))
    missing = c.tmp / "no_such_folder"
    return train_data(c, missing), [str(missing)]


@case(multiline=True)
def dataset_annotations_missing(c):
    d = c.copy_data()
    f = d / "annotations" / "thumos14.json"
    f.unlink()
    return train_data(c, d), [str(f)]


@case()
def dataset_annotations_not_json(c):
    d = c.copy_data()
    f = d / "annotations" / "thumos14.json"
    f.write_text(f.read_text()[:200])
    return train_data(c, d), [str(f)]


@case()
def dataset_test_subset_missing(c):
    d = c.copy_data()
    return train_data(c, d, "data.test_subset=testing"), [
        str(d / "annotations" / "thumos14.json"), "testing", "data.test_subset"]


@case()
def features_string_dtype(c):
    d = c.copy_data()
    vid = one_video(d)
    f = d / "features" / f"{vid}.npy"
    np.save(f, np.array([["a"] * 32] * 10))
    c.after.append(lambda: _no_run_written(c))
    return train_data(c, d), [str(f), vid]


@case()
def features_other_dimension(c):
    d = c.copy_data()
    vid = one_video(d)
    f = d / "features" / f"{vid}.npy"
    np.save(f, np.zeros((40, 48), np.float32))
    c.after.append(lambda: _no_run_written(c))
    return train_data(c, d), [str(f), vid, "D=48", "D=32"]


@case()
def features_zero_snippets(c):
    d = c.copy_data()
    vid = one_video(d)
    f = d / "features" / f"{vid}.npy"
    np.save(f, np.zeros((0, 32), np.float32))
    c.after.append(lambda: _no_run_written(c))
    c.after.append(lambda: (c.tmp / "out" / "last.pt").exists() and pytest.fail("last.pt"))
    return train_data(c, d), [str(f), vid]


@case()
def features_nan(c):
    d = c.copy_data()
    vid = one_video(d, "validation")
    f = d / "features" / f"{vid}.npy"
    x = np.load(f)
    x[3, 5] = np.nan
    np.save(f, x)
    c.after.append(lambda: _no_run_written(c))
    return train_data(c, d), [str(f), vid]


@case()
def features_file_missing(c):
    d = c.copy_data()
    vid = one_video(d)
    (d / "features" / f"{vid}.npy").unlink()
    c.after.append(lambda: _no_run_written(c))
    return train_data(c, d), [vid, "features"]


@case()
def features_truncated_npy(c):
    d = c.copy_data()
    vid = one_video(d)
    f = d / "features" / f"{vid}.npy"
    f.write_bytes(f.read_bytes()[:150])
    return train_data(c, d), [str(f)]


def _click_file(c: Ctx, clicks) -> tuple[Path, str]:
    d = c.copy_data()
    f = sorted((d / "clicks").glob("*_validation_*.json"))[0]
    f.write_text(json.dumps({"background_clicks": clicks}))
    return d, f


@case()
def click_after_the_video(c):
    d, f = _click_file(c, [9999.0])
    return train_data(c, d, "data.clicks=clicks", config="backtal/thumos14"), [
        str(f), f.stem, "'clicks'", "9999"]


@case()
def click_before_the_video(c):
    d, f = _click_file(c, [-50.0])
    return train_data(c, d, "data.clicks=clicks", config="backtal/thumos14"), [
        str(f), f.stem, "'clicks'", "-50"]


@case()
def click_file_not_json(c):
    d = c.copy_data()
    f = sorted((d / "clicks").glob("*_validation_*.json"))[0]
    f.write_text("{background_clicks: [1, 2")
    return train_data(c, d, "data.clicks=clicks", config="backtal/thumos14"), [str(f)]


@case()
def click_not_a_number(c):
    d, f = _click_file(c, ["12s"])
    return train_data(c, d, "data.clicks=clicks", config="backtal/thumos14"), [
        str(f), f.stem, "clicks"]


def _proposal_case(c: Ctx, edit: Callable[[list[str]], None]):
    d = c.copy_data()
    f = d / "proposals" / "Test_proposal_list.txt"
    lines = f.read_text().splitlines()
    edit(lines)
    f.write_text("\n".join(lines) + "\n")
    sets = ["data.proposals_train=proposals/Validation_proposal_list.txt",
            "data.proposals_test=proposals/Test_proposal_list.txt"]
    return train_data(c, d, *sets, config="pgcn/thumos14"), f


def _first_proposal_line(lines: list[str]) -> int:
    # '# idx', video, frames, 1, n_gt, gt lines..., n_props, proposal lines
    n_gt = int(lines[4])
    return 5 + n_gt + 1


@case()
def ssn_count_line_too_high(c):
    def edit(lines):
        i = _first_proposal_line(lines) - 1
        lines[i] = str(int(lines[i]) + 5000)
    argv, f = _proposal_case(c, edit)
    return argv, [str(f), "synthetic_test_"]


@case(rc=0, warning=True)
def ssn_zero_length_proposal(c):
    # kept (SSN lists rounded to frames hold them), with a warning naming file and line
    def edit(lines):
        i = _first_proposal_line(lines)
        p = lines[i].split()
        p[4] = p[3]
        lines[i] = " ".join(p)
    argv, f = _proposal_case(c, edit)
    sets = [x for i, x in enumerate(argv) if x == "--set" or i and argv[i - 1] == "--set"]
    argv = ["data", "check", "--config", argv[argv.index("--config") + 1], *sets]
    return argv, [f"{f}:8", "synthetic_test_", "'proposals'", "zero-length"]


@case()
def ssn_out_of_range_proposal(c):
    def edit(lines):
        i = _first_proposal_line(lines)
        p = lines[i].split()
        p[4] = "999999"
        lines[i] = " ".join(p)
    argv, f = _proposal_case(c, edit)
    return argv, [f"{f}:8", "synthetic_test_", "'proposals'"]


@case()
def ssn_not_a_number(c):
    def edit(lines):
        lines[_first_proposal_line(lines)] = "4 0.5 zero 10 20"
    argv, f = _proposal_case(c, edit)
    return argv, [f"{f}:8", "synthetic_test_", "'proposals'"]


@case()
def lr_1e6_non_finite_loss(c):
    return train_data(c, c.world.data, "optim.lr=1e6", "train.batch_size=1",
                      "train.epochs=3"), ["non-finite loss", "optim.lr"]


@case()
def train_feature_stride_too_small(c):
    argv = train_data(c, c.world.data) + ["--no-test"]
    argv[argv.index("data.feature_stride=16")] = "data.feature_stride=4"
    return argv, [str(c.world.data / "features"), "video 'synthetic_", "'features'",
                  "data.feature_stride"]


@case(rc=0, warning=True)
def train_feature_stride_too_large(c):
    argv = train_data(c, c.world.data) + ["--no-test"]
    argv[argv.index("data.feature_stride=16")] = "data.feature_stride=32"
    return argv, ["data.feature_stride", "stride of 16"]


@case(rc=0, warning=True)
def train_gt_segment_outside_the_video(c):
    d = c.copy_data()
    f = d / "annotations" / "thumos14.json"
    gt = json.loads(f.read_text())
    vid = next(v for v, a in gt["database"].items() if a["annotations"])
    gt["database"][vid]["annotations"][0]["segment"][1] = gt["database"][vid]["duration"] + 50
    f.write_text(json.dumps(gt))
    return train_data(c, d) + ["--no-test"], [str(f), "outside"]


# --- run folders ------------------------------------------------------------------------------
@case()
def resume_without_last_pt(c):
    return train_data(c, c.world.data) + ["--resume"], [str(c.tmp / "out" / "last.pt")]


@case()
def out_not_empty(c):
    out = c.tmp / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def untouched():
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    c.after.append(untouched)
    return train_data(c, c.world.data), [str(out), "--resume", "--overwrite"]


@case()
def out_is_a_file(c):
    out = c.tmp / "out"
    out.write_text("x")
    return train_data(c, c.world.data), [str(out)]


@case()
def resume_and_overwrite(c):
    return train_data(c, c.world.data) + ["--resume", "--overwrite"], ["--resume",
                                                                       "--overwrite"]


def _resume_with(c: Ctx, spoil: Callable[[Path], None]):
    run = c.copy_run()
    spoil(run / "last.pt")
    return (["train", "--config", str(run / "config.toml"), "--out", str(run), "--resume",
             "--quiet", "--device", "cpu", "--set", "train.epochs=2"],
            [str(run / "last.pt")])


# --- checkpoints ------------------------------------------------------------------------------
def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:300])


def _random_bytes(p: Path) -> None:
    p.write_bytes(np.random.default_rng(0).bytes(4000))


def _foreign(p: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(3)}}, p)


SPOILERS = {"truncated": (_truncate, "truncated or corrupt"),
            "random_bytes": (_random_bytes, "not a"),
            "foreign": (_foreign, "not a tagraph checkpoint")}


def _bad_checkpoint_case(command: str, kind: str):
    spoil, text = SPOILERS[kind]

    def build(c):
        if command == "resume":
            argv, needles = _resume_with(c, spoil)
            return argv, needles + [text]
        ckpt = c.tmp / "best.pt"
        shutil.copy(c.world.run / "best.pt", ckpt)
        spoil(ckpt)
        argv = {"predict": ["predict", "--checkpoint", str(ckpt), "--out",
                            str(c.tmp / "r.json"), "--quiet", "--device", "cpu"],
                "evaluate": ["evaluate", "--checkpoint", str(ckpt), "--device", "cpu"],
                "plot": ["plot", "--results", str(c.world.run / "results_test.json"),
                         "--video", "x", "--checkpoint", str(ckpt), "--out",
                         str(c.tmp / "p.png")]}[command]
        return argv, [str(ckpt), text]
    return build


for _cmd in ("predict", "evaluate", "plot", "resume"):
    for _kind in SPOILERS:
        CASES.append(Case(f"checkpoint_{_kind}_{_cmd}", _bad_checkpoint_case(_cmd, _kind)))


@case()
def checkpoint_missing(c):
    ckpt = c.tmp / "nope.pt"
    return ["predict", "--checkpoint", str(ckpt), "--out", str(c.tmp / "r.json")], [str(ckpt)]


@case()
def checkpoint_of_another_method(c):
    ckpt = c.world.run / "best.pt"
    return (["predict", "--checkpoint", str(ckpt), "--out", str(c.tmp / "r.json"), "--quiet",
             "--device", "cpu", "--set", 'method="mil"'], [str(ckpt), "'ecm'", "'mil'"])


@case()
def checkpoint_of_another_feature_dimension(c):
    ckpt = c.world.run / "best.pt"
    return (["predict", "--checkpoint", str(ckpt), "--out", str(c.tmp / "r.json"), "--quiet",
             "--device", "cpu", *data_sets(c.world.data64)], [str(ckpt), "32", "64"])


@case()
def checkpoint_with_nan_weights_save_side_nan(c):
    ckpt = c.tmp / "best.pt"
    obj = torch.load(c.world.run / "best.pt", weights_only=True)
    obj["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                    for k, v in obj["model"].items()}
    torch.save(obj, ckpt)
    out = c.tmp / "r.json"
    c.after.append(lambda: out.exists() and pytest.fail(f"{out} was written"))
    return (["predict", "--checkpoint", str(ckpt), "--out", str(out), "--quiet", "--device",
             "cpu"], [str(ckpt), "non-finite", "synthetic_test_"])


@case()
def plot_video_not_in_dataset(c):
    return (["plot", "--results", str(c.world.run / "results_test.json"), "--video",
             "no_such_video", "--checkpoint", str(c.world.run / "best.pt"), "--out",
             str(c.tmp / "p.png")], ["'no_such_video'", str(c.world.run / "best.pt")])


# --- a full disk ------------------------------------------------------------------------------
def _disk_full(c: Ctx, name: str) -> None:
    real = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)

    c.monkeypatch.setattr(os, "replace", replace)


@case()
def disk_full_predict(c):
    out = c.tmp / "r.json"
    _disk_full(c, "r.json")
    return (["predict", "--checkpoint", str(c.world.run / "best.pt"), "--out", str(out),
             "--quiet", "--device", "cpu"], [str(out), "No space left on device"])


@case()
def disk_full_train_config(c):
    _disk_full(c, "config.toml")
    return train_data(c, c.world.data), [str(c.tmp / "out" / "config.toml"),
                                         "No space left on device"]


@case()
def disk_full_train_last_pt(c):
    _disk_full(c, "last.pt")
    return train_data(c, c.world.data), [str(c.tmp / "out" / "last.pt"),
                                         "No space left on device"]


@case()
def disk_full_report(c):
    _disk_full(c, "r.html")
    argv, g, p = evaluate(c)
    out = c.tmp / "r.html"
    return (["report", "--gt", str(g), "--pred", str(p), "--out", str(out)],
            [str(out), "No space left on device"])


@case()
def disk_full_data_write_json(c):
    out = c.tmp / "a" / "analysis.json"
    out.parent.mkdir()
    _disk_full(c, "analysis.json")
    argv, g, p = evaluate(c)
    return (["analyze", "--gt", str(g), "--pred", str(p), "--out", str(out.parent)],
            [str(out), "No space left on device"])


# --- regressions: good inputs stay good -------------------------------------------------------
@case(rc=0)
def clean_evaluate(c):
    argv, _, _ = evaluate(c)
    return argv, []


@case(rc=0)
def clean_predict(c):
    return (["predict", "--checkpoint", str(c.world.run / "best.pt"), "--out",
             str(c.tmp / "r.json"), "--quiet", "--device", "cpu"], [])


# ----------------------------------------------------------------------------- the test
def test_cases_are_many_and_unique():
    names = [k.name for k in CASES]
    assert len(names) == len(set(names)) and len(names) >= 60


@pytest.mark.parametrize("case", CASES, ids=[k.name for k in CASES])
def test_bad_input(case: Case, world, tmp_path, monkeypatch, capsys):
    c = Ctx(tmp_path, world, monkeypatch)
    argv, needles = case.build(c)
    rc = main(argv)
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert "Traceback" not in text, text
    err = cap.err.strip()
    assert rc == case.rc, (rc, err)
    if case.rc == 2:
        command = "data check" if argv[0] == "data" else argv[0]
        assert err.startswith(f"tagraph {command}: error: "), err
        first, *rest = err.splitlines()
        if case.multiline:  # the first line says it all; help lines follow
            err = first
        assert not rest or case.multiline, err
    elif case.warning:
        warns = [line for line in err.splitlines() if line.startswith("WARNING: ")]
        assert warns, err
        err = "\n".join(warns)
    else:
        assert "WARNING" not in err and "error" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    for check in c.after:
        check()
