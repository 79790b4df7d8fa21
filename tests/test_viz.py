import importlib
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tagraph.io import Detections, VideoAnnotation, save_annotations, save_results
from tagraph.viz import (
    MAX_LANES,
    MISSING_MATPLOTLIB,
    _lanes,
    _top_k_per_class,
    plot_map_vs_tiou,
    plot_timeline,
    plot_video,
    save_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["Diving", "HighJump", "LongJump", "Shotput"]


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


def _timeline_axes(fig):
    # The timeline is the axes whose y tick labels are class names (the first one added).
    return fig.axes[0]


def _bars(ax):
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _example():
    gt_seg = np.array([[2.0, 6.0], [10.0, 14.0], [20.0, 25.0]])
    gt_lab = np.array([0, 2, 0])
    pr_seg = np.array([[2.5, 6.5], [1.0, 5.0], [11.0, 13.0], [30.0, 35.0], [19.0, 24.0]])
    pr_lab = np.array([0, 0, 2, 3, 0])
    pr_score = np.array([0.9, 0.4, 0.7, 0.2, 0.6])
    return gt_seg, gt_lab, pr_seg, pr_lab, pr_score


def test_timeline_artists(mpl):
    gt_seg, gt_lab, pr_seg, pr_lab, pr_score = _example()
    fig = plot_timeline(gt_seg, gt_lab, pr_seg, pr_lab, pr_score, duration=40.0,
                        class_names=NAMES, title="my video")
    ax = _timeline_axes(fig)
    assert len(_bars(ax)) == len(gt_seg) + len(pr_seg)
    assert ax.get_xlim() == (0.0, 40.0)
    # GT classes first (in class_names order), then prediction-only classes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Diving", "LongJump", "Shotput"]
    assert ax.get_title(loc="left") == "my video"
    assert ax.get_xlabel() == "time (s)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "ground truth" and legend[1].startswith("predictions")
    assert any(a.get_ylabel() == "score" for a in fig.axes)  # colour bar


def test_timeline_bar_geometry(mpl):
    gt_seg, gt_lab, pr_seg, pr_lab, pr_score = _example()
    fig = plot_timeline(gt_seg, gt_lab, pr_seg, pr_lab, pr_score, duration=40.0,
                        class_names=NAMES)
    bars = _bars(_timeline_axes(fig))
    spans = sorted((round(b.get_x(), 6), round(b.get_x() + b.get_width(), 6)) for b in bars)
    expected = sorted(tuple(s) for s in np.concatenate([gt_seg, pr_seg]).round(6).tolist())
    assert spans == expected
    # bars stay inside their class row: row r spans [r - 0.5, r + 0.5]
    for b in bars:
        r = round(b.get_y() + b.get_height() / 2)
        assert r - 0.5 <= b.get_y() and b.get_y() + b.get_height() <= r + 0.5
    # overlapping predictions of one class (Diving: [2.5, 6.5] and [1, 5]) get distinct lanes
    preds = [b for b in bars if b.get_x() in (2.5, 1.0)]
    (a0, a1), (b0, b1) = [(b.get_y(), b.get_y() + b.get_height()) for b in preds]
    assert a1 <= b0 or b1 <= a0


def test_timeline_colour_follows_score(mpl):
    import matplotlib

    seg = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    fig = plot_timeline(pred_segments=seg, pred_labels=["A", "A", "A"],
                        pred_scores=[0.1, 0.9, 0.5], duration=6.0)
    bars = sorted(_bars(_timeline_axes(fig)), key=lambda b: b.get_x())
    cmap = matplotlib.colormaps["viridis"]
    # the colour map spans the scores' own range: lowest -> 0, highest -> 1
    np.testing.assert_allclose(bars[0].get_facecolor(), cmap(0.0), atol=1e-2)
    np.testing.assert_allclose(bars[1].get_facecolor(), cmap(1.0), atol=1e-2)
    np.testing.assert_allclose(bars[2].get_facecolor(), cmap(0.5), atol=1e-2)


def _colour_bar(fig):
    bars = [a for a in fig.axes if a.get_ylabel() == "score"]
    assert len(bars) == 1
    return bars[0]


def test_timeline_low_scores_use_the_whole_colour_map(mpl):
    """Scores all within 0.1-0.3: the colour bar spans 0.1-0.3 (readable), the legend says so,
    and the lowest and highest bars take the two ends of the colour map."""
    import matplotlib

    rng = np.random.default_rng(0)
    scores = np.r_[0.1, 0.3, rng.uniform(0.1, 0.3, 8)]
    starts = np.arange(10) * 5.0
    fig = plot_timeline([[1.0, 4.0]], ["A"], np.stack([starts, starts + 3], 1), ["A"] * 10,
                        scores, duration=60.0)
    cb = _colour_bar(fig)
    lo, hi = cb.get_ylim()
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.3)
    ticks = [t for t in cb.get_yticks() if lo - 1e-9 <= t <= hi + 1e-9]
    assert len(ticks) >= 3  # several labelled values inside the narrow range
    legend = [t.get_text() for t in _timeline_axes(fig).get_legend().get_texts()]
    assert any("0.1 to 0.3" in t for t in legend)
    bars = [b for b in _bars(_timeline_axes(fig)) if b.get_facecolor()[:3] != (
        matplotlib.colors.to_rgb("#d62728"))]
    by_x = {round(b.get_x(), 6): b for b in bars}
    cmap = matplotlib.colormaps["viridis"]
    np.testing.assert_allclose(by_x[0.0].get_facecolor(), cmap(0.0), atol=1e-2)
    np.testing.assert_allclose(by_x[5.0].get_facecolor(), cmap(1.0), atol=1e-2)
    # one score only: a small window around it, no division by zero
    fig = plot_timeline(pred_segments=[[0.0, 1.0]], pred_labels=["A"], pred_scores=[0.2],
                        duration=2.0)
    lo, hi = _colour_bar(fig).get_ylim()
    assert lo < 0.2 < hi and hi - lo == pytest.approx(0.1)


def test_timeline_top_k(mpl):
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 50, 12)
    seg = np.stack([starts, starts + 3], 1)
    lab = ["A"] * 8 + ["B"] * 4
    score = rng.uniform(size=12)
    fig = plot_timeline(None, None, seg, lab, score, duration=60.0, top_k=3)
    bars = _bars(_timeline_axes(fig))
    assert len(bars) == 6
    shown = sorted(round(b.get_x(), 6) for b in bars)
    best = np.concatenate([np.argsort(-score[:8])[:3], 8 + np.argsort(-score[8:])[:3]])
    assert shown == sorted(starts[best].round(6).tolist())


def _top_k_loop(labels, scores, k):
    keep = []
    for c in set(labels.tolist()):
        idx = [i for i in range(len(labels)) if labels[i] == c]
        idx.sort(key=lambda i: -scores[i])
        keep += idx[:k]
    return sorted(keep)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=40), st.integers(1, 6), st.integers(0, 99))
def test_top_k_per_class_matches_loop(labels, k, seed):
    labels = np.array(labels, dtype=str)
    scores = np.random.default_rng(seed).permutation(len(labels)).astype(float)  # no ties
    assert _top_k_per_class(labels, scores, k).tolist() == _top_k_loop(labels, scores, k)


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0.1, 10)), min_size=1, max_size=15),
       st.integers(0, 99))
def test_lanes_do_not_overlap(intervals, seed):
    seg = np.array([(s, s + w) for s, w in intervals])
    scores = np.random.default_rng(seed).permutation(len(seg)).astype(float)
    lane = _lanes(seg, scores)
    assert lane.min() == 0 and lane.max() < MAX_LANES
    assert lane[np.argmax(scores)] == 0  # the best prediction sits next to the ground truth
    for i in range(len(seg)):
        for j in range(i):
            if lane[i] == lane[j] and lane[i] < MAX_LANES - 1:  # the last lane takes overflow
                assert not _overlap(seg[i], seg[j])
    if lane.max() < MAX_LANES - 1:  # no overflow: the lanes are a valid packing
        assert all(not _overlap(seg[i], seg[j]) for i in range(len(seg)) for j in range(i)
                   if lane[i] == lane[j])


def test_timeline_many_overlapping_predictions_share_lanes(mpl):
    seg = np.tile([[5.0, 10.0]], (7, 1))
    fig = plot_timeline(pred_segments=seg, pred_labels=[1] * 7, pred_scores=np.linspace(0, 1, 7),
                        duration=20.0)
    bars = _bars(_timeline_axes(fig))
    assert len(bars) == 7
    assert len({round(b.get_y(), 6) for b in bars}) == MAX_LANES
    assert [t.get_text() for t in _timeline_axes(fig).get_yticklabels()] == ["class 1"]


def test_timeline_max_classes(mpl):
    seg = np.array([[0.0, 1.0]] * 5)
    fig = plot_timeline(seg[:1], ["gt"], seg, ["gt", "p1", "p2", "p3", "p4"],
                        [0.5, 0.1, 0.9, 0.3, 0.8], duration=2.0, max_classes=3)
    ax = _timeline_axes(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["gt", "p2", "p4"]
    assert len(_bars(ax)) == 1 + 3
    assert any("+2 classes" in t.get_text() for t in ax.get_legend().get_texts())


def test_timeline_io_types_and_tensors(mpl):
    ann = VideoAnnotation("v1", "test", 30.0, 25.0, [[1.0, 4.0], [8.0, 9.5]], ["A", "B"])
    det = Detections(["v1"] * 3, ["A", "B", "C"], [0.8, 0.5, 0.3],
                     [[1.2, 4.1], [7.0, 9.0], [20.0, 22.0]])
    fig = plot_timeline(ann, pred_segments=det)
    ax = _timeline_axes(fig)
    assert len(_bars(ax)) == 5
    assert ax.get_xlim() == (0.0, 30.0)  # duration of the annotation
    assert ax.get_title(loc="left") == "v1"

    fig2 = plot_timeline(torch.tensor(ann.segments), torch.tensor([0, 1]),
                         torch.tensor(det.segment), torch.tensor([0, 1, 2]),
                         torch.tensor(det.score), class_names=["A", "B", "C"], duration=30.0)
    ax2 = _timeline_axes(fig2)
    assert len(_bars(ax2)) == 5
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["A", "B", "C"]

    two = Detections(["v1", "v2"], ["A", "A"], [0.5, 0.5], [[0, 1], [0, 1]])
    with pytest.raises(ValueError, match="2 videos"):
        plot_timeline(ann, pred_segments=two)


def test_timeline_duration_default_and_bad_input(mpl):
    fig = plot_timeline([[1.0, 7.5]], ["A"], [[2.0, 9.0]], ["A"], [0.3])
    assert _timeline_axes(fig).get_xlim() == (0.0, 9.0)
    with pytest.raises(ValueError, match="gt_labels"):
        plot_timeline([[1.0, 2.0]], ["A", "B"])
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        plot_timeline([1.0, 2.0, 3.0], ["A"])
    with pytest.raises(ValueError, match="out of range"):
        plot_timeline([[1.0, 2.0]], [7], class_names=NAMES)
    fig = plot_timeline(duration=5.0)  # nothing to show is still a figure
    assert len(_bars(_timeline_axes(fig))) == 0


def _cas_axes(fig):
    panels = [a for a in fig.axes if a.get_visible() and a.get_ylabel().startswith("CAS")]
    assert len(panels) == 1
    return panels[0]


def test_timeline_cas_panel(mpl):
    gt_seg, gt_lab, pr_seg, pr_lab, pr_score = _example()
    T = 80
    cas = torch.rand(T, len(NAMES))
    fig = plot_timeline(gt_seg, gt_lab, pr_seg, pr_lab, pr_score, duration=40.0,
                        class_names=NAMES, cas=cas)
    cax = _cas_axes(fig)
    assert cax.get_xlim() == (0.0, 40.0)
    assert cax.get_xlabel() == "time (s)"
    assert cax.get_ylabel() == "CAS (min-max\nper class)"  # a labelled y axis
    # default: the ground-truth classes (solid), then the prediction-only class (dashed),
    # labelled, on evenly spaced snippet centres, each min-max normalised
    lines = cax.get_lines()
    assert [ln.get_label().split("\n")[0] for ln in lines] == [
        "Diving (GT)", "LongJump (GT)", "Shotput (predicted)"]
    assert [ln.get_linestyle() for ln in lines] == ["-", "-", "--"]
    np.testing.assert_allclose(lines[0].get_xdata(), (np.arange(T) + 0.5) * 40.0 / T)
    raw = cas[:, 2].numpy().astype(np.float64)
    np.testing.assert_allclose(lines[1].get_ydata(),
                               (raw - raw.min()) / (raw.max() - raw.min()), rtol=1e-6)
    assert f"raw {raw.min():.3g} to {raw.max():.3g}" in lines[1].get_label()
    # timeline and CAS panel share the time axis and have the same width
    ax = _timeline_axes(fig)
    fig.canvas.draw()
    a, c = ax.get_position(), cax.get_position()
    assert a.x0 == pytest.approx(c.x0) and a.x1 == pytest.approx(c.x1)
    cax.set_xlim(5.0, 10.0)
    assert ax.get_xlim() == (5.0, 10.0)

    # explicit classes (names or columns) and times, raw values
    times = np.linspace(0.25, 39.75, T)
    fig = plot_timeline(gt_seg, gt_lab, duration=40.0, class_names=NAMES, cas=cas,
                        cas_times=times, cas_classes=["Shotput", 1, "Diving"],
                        cas_normalize="none")
    cax = _cas_axes(fig)
    assert cax.get_ylabel() == "CAS"
    assert [ln.get_label() for ln in cax.get_lines()] == ["Shotput", "HighJump", "Diving (GT)"]
    np.testing.assert_allclose(cax.get_lines()[0].get_xdata(), times)
    np.testing.assert_allclose(cax.get_lines()[0].get_ydata(), cas[:, 3].numpy(), rtol=1e-6)
    # the model's own top classes (e.g. from its video-level scores) after the GT classes
    fig = plot_timeline(gt_seg, gt_lab, duration=40.0, class_names=NAMES, cas=cas,
                        cas_predicted=["Diving", 3])
    assert [ln.get_label().split("\n")[0] for ln in _cas_axes(fig).get_lines()] == [
        "Diving (GT)", "LongJump (GT)", "Shotput (predicted)"]
    with pytest.raises(ValueError, match="unknown class"):
        plot_timeline(gt_seg, gt_lab, class_names=NAMES, cas=cas, cas_classes=["Nope"])
    with pytest.raises(ValueError, match="out of range"):
        plot_timeline(gt_seg, gt_lab, class_names=NAMES, cas=cas, cas_predicted=[9])
    with pytest.raises(ValueError, match="cas_times"):
        plot_timeline(gt_seg, gt_lab, class_names=NAMES, cas=cas, cas_times=times[:5])
    with pytest.raises(ValueError, match="cas_normalize"):
        plot_timeline(gt_seg, gt_lab, class_names=NAMES, cas=cas, cas_normalize="max")


def test_timeline_cas_outlier_class_does_not_flatten_the_others(mpl):
    """One class with activations 1000x the others: every curve still spans the panel."""
    gt_seg, gt_lab, *_ = _example()
    T = 60
    rng = np.random.default_rng(1)
    cas = rng.uniform(0.0, 0.05, (T, len(NAMES)))
    cas[:, 2] *= 1000.0  # LongJump: the outlier
    fig = plot_timeline(gt_seg, gt_lab, duration=40.0, class_names=NAMES, cas=cas)
    cax = _cas_axes(fig)
    lo, hi = cax.get_ylim()
    assert hi <= 1.1 and lo >= -0.1  # not set by the outlier's range (up to ~50)
    for line in cax.get_lines():
        y = np.asarray(line.get_ydata())
        assert y.min() == pytest.approx(0.0) and y.max() == pytest.approx(1.0)
        assert y.max() - y.min() > 0.5 * (hi - lo)  # each curve uses most of the height
    longjump = [ln for ln in cax.get_lines() if ln.get_label().startswith("LongJump")][0]
    raw = cas[:, 2]
    assert f"raw {raw.min():.3g} to {raw.max():.3g}" in longjump.get_label()


def test_timeline_ground_truth_in_legends(mpl):
    gt_seg, gt_lab, pr_seg, pr_lab, pr_score = _example()
    cas = np.random.default_rng(0).random((40, 4))
    fig = plot_timeline(gt_seg, gt_lab, pr_seg, pr_lab, pr_score, duration=40.0,
                        class_names=NAMES, cas=cas)
    timeline = [t.get_text() for t in _timeline_axes(fig).get_legend().get_texts()]
    assert timeline[0] == "ground truth"
    panel = [t.get_text() for t in _cas_axes(fig).get_legend().get_texts()]
    assert any(t.startswith("ground truth") for t in panel)  # the shaded GT spans
    assert any(t.startswith("Diving (GT)") for t in panel)


def test_timeline_without_cas_has_no_panel(mpl):
    fig = plot_timeline(*_example(), duration=40.0, class_names=NAMES)
    assert not any(a.get_ylabel().startswith("CAS") for a in fig.axes)
    assert len(fig.axes) == 2  # timeline and colour bar


def test_timeline_into_user_axes(mpl):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6))
    ax = fig.add_subplot(2, 1, 1)
    out = plot_timeline(*_example(), duration=40.0, class_names=NAMES, ax=ax,
                        cas=np.random.default_rng(0).random((20, 4)))
    assert out is fig
    assert len(_bars(ax)) == 8


def test_no_pyplot_and_backend_untouched(mpl):
    import matplotlib

    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    fig = plot_timeline(*_example(), duration=40.0, class_names=NAMES)
    plot_map_vs_tiou({"tiou": [0.5], "mAP": [0.3]})
    assert matplotlib.get_backend() == backend
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    assert isinstance(fig.canvas, FigureCanvasAgg)


def test_plot_video_from_files(mpl, tmp_path):
    anns = {
        "v1": VideoAnnotation("v1", "test", 30.0, 25.0, [[1.0, 4.0], [8.0, 9.5]], ["A", "B"]),
        "v2": VideoAnnotation("v2", "test", 50.0, 25.0, [[3.0, 5.0]], ["A"]),
    }
    det = Detections(["v1", "v2", "v1", "v3"], ["A", "A", "B", "B"], [0.8, 0.5, 0.3, 0.9],
                     [[1.2, 4.1], [7.0, 9.0], [20.0, 22.0], [1.0, 2.0]])
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    save_annotations(gt_path, anns)
    save_results(res_path, det)
    for gt, res in ((gt_path, res_path), (str(gt_path), str(res_path)), (anns, det)):
        fig = plot_video(gt, res, "v1")
        ax = _timeline_axes(fig)
        assert len(_bars(ax)) == 2 + 2
        assert ax.get_xlim() == (0.0, 30.0)
        assert ax.get_title(loc="left") == "v1"
    fig = plot_video(anns["v2"], None, "v2", title="custom")
    assert len(_bars(_timeline_axes(fig))) == 1
    assert len(fig.axes) == 1  # ground truth only: no colour bar, no prediction legend entry
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["ground truth"]
    assert _timeline_axes(fig).get_title(loc="left") == "custom"
    fig = plot_video(gt_path, res_path, "v3")  # predictions only
    assert len(_bars(_timeline_axes(fig))) == 1
    with pytest.raises(ValueError, match=r"video 'nope'.*gt\.json"):
        plot_video(gt_path, res_path, "nope")
    with pytest.raises(ValueError, match="'v1', not 'v2'"):
        plot_video(anns["v1"], det, "v2")


def test_map_vs_tiou_one_line_per_method(mpl):
    tiou = [0.3, 0.4, 0.5, 0.6, 0.7]
    a = {"tiou": tiou, "mAP": [0.6, 0.5, 0.4, 0.3, 0.2]}
    b = SimpleNamespace(tiou_thresholds=np.array(tiou), mAP=np.array([0.5, 0.4, 0.3, 0.2, 0.1]))
    fig = plot_map_vs_tiou({"P-GCN": a, "MLP": b}, title="THUMOS14")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_xdata(), tiou)
    np.testing.assert_allclose(lines[0].get_ydata(), [60, 50, 40, 30, 20])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["P-GCN (avg 40.0)", "MLP (avg 30.0)"]
    assert ax.get_xlabel() == "tIoU threshold" and ax.get_ylabel() == "mAP (%)"
    assert len(plot_map_vs_tiou(a).axes[0].get_lines()) == 1  # a single result
    with pytest.raises(ValueError, match="'bad'.*'tiou' and 'mAP'"):
        plot_map_vs_tiou({"bad": {"tiou": tiou}})
    with pytest.raises(TypeError, match="'x'"):
        plot_map_vs_tiou({"x": 3})


def test_map_vs_tiou_with_evaluator_result(mpl):
    from tagraph.evaluation import detection_map

    anns = {"v": VideoAnnotation("v", "test", 20.0, 25.0, [[1.0, 5.0], [9.0, 12.0]], ["A", "B"])}
    det = Detections(["v", "v"], ["A", "B"], [0.9, 0.8], [[1.0, 4.0], [9.5, 12.0]])
    res = detection_map(anns, det, tiou_thresholds=[0.3, 0.5, 0.7])
    for r in (res, res.to_dict()):
        line = plot_map_vs_tiou({"m": r}).axes[0].get_lines()[0]
        np.testing.assert_allclose(line.get_ydata(), 100 * res.mAP)


def test_save_figure_png(mpl, tmp_path):
    cas = np.random.default_rng(0).random((30, 4))
    fig = plot_timeline(*_example(), duration=40.0, class_names=NAMES, cas=cas)
    path = tmp_path / "t.png"
    path.write_bytes(b"old")
    save_figure(fig, path, dpi=50)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    width_50 = int.from_bytes(data[16:20], "big")  # IHDR width
    save_figure(fig, path, dpi=100)
    assert int.from_bytes(path.read_bytes()[16:20], "big") > 1.5 * width_50
    assert sorted(os.listdir(tmp_path)) == ["t.png"]  # no temporary file left
    save_figure(plot_map_vs_tiou({"tiou": [0.5], "mAP": [0.3]}), tmp_path / "m.pdf")
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match="unsupported format"):
        save_figure(fig, tmp_path / "t.jpg2")
    with pytest.raises(FileNotFoundError):
        save_figure(fig, tmp_path / "missing" / "t.png")


def test_missing_matplotlib_message(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` -> ImportError
    assert MISSING_MATPLOTLIB == "tagraph.viz needs matplotlib: pip install 'tagraph[plot]'"
    monkeypatch.delitem(sys.modules, "tagraph.viz")
    viz = importlib.import_module("tagraph.viz")  # importing works without matplotlib
    with pytest.raises(ImportError, match=r"pip install 'tagraph\[plot\]'") as info:
        viz.save_figure(None, "x.png")
    assert isinstance(info.value.__cause__, ImportError)
    for call in (lambda: plot_timeline(*_example()),
                 lambda: plot_map_vs_tiou({"tiou": [0.5], "mAP": [0.3]}),
                 lambda: plot_video(None, None, "v")):
        with pytest.raises(ImportError, match=r"needs matplotlib: pip install 'tagraph\[plot\]'"):
            call()


def _thumos_json():
    here = Path(__file__).resolve().parents[1]
    for root in (here / ".." / "shared" / "data", Path("/work/shared/data")):
        path = root / "thumos14" / "thumos14.json"
        if path.is_file():
            return path
    pytest.skip("THUMOS14 annotations not found")


def test_plot_real_thumos_video(mpl, tmp_path):
    from tagraph.io import FormatWarning, load_annotations

    with pytest.warns(FormatWarning):
        anns = load_annotations(_thumos_json(), subset="test")
    vid = sorted(anns)[0]
    fig = plot_video(anns, None, vid)
    ax = _timeline_axes(fig)
    assert len(_bars(ax)) == len(anns[vid])
    assert ax.get_xlim() == (0.0, anns[vid].duration)
    save_figure(fig, tmp_path / "v.png")
    assert (tmp_path / "v.png").read_bytes()[:8] == PNG_MAGIC
