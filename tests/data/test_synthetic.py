import filecmp
import json

import numpy as np
import pytest
import torch

from tagraph.data import SyntheticTAL, TALDataset, generate_synthetic_tal, read_ssn_proposals
from tagraph.data.clicks import merge_segments, read_clicks
from tagraph.data.synthetic import _ar1, synthetic_config
from tagraph.io import load_annotations
from tagraph.ops import segment_iou

TINY = dict(num_train=6, num_test=4, feature_dim=16, duration_median=40.0, duration_sigma=0.3,
            duration_min=15.0, duration_max=80.0)


def test_deterministic_from_seed(tmp_path):
    a = generate_synthetic_tal(tmp_path / "a", TINY, seed=3)
    b = generate_synthetic_tal(tmp_path / "b", TINY, seed=3)
    c = generate_synthetic_tal(tmp_path / "c", TINY, seed=4)
    names = sorted(p.name for p in a.feature_dir.iterdir())
    assert len(names) == 10
    for n in names:
        assert np.array_equal(np.load(a.feature_dir / n), np.load(b.feature_dir / n))
    assert filecmp.cmp(a.annotation_file, b.annotation_file, shallow=False)
    for s in ("Validation", "Test"):
        assert filecmp.cmp(a.proposal_files[s], b.proposal_files[s], shallow=False)
    assert not filecmp.cmp(a.annotation_file, c.annotation_file, shallow=False)


def test_generation_is_cached_and_keyed_by_params(tmp_path):
    a = generate_synthetic_tal(tmp_path, TINY, seed=0)
    mtime = a.annotation_file.stat().st_mtime_ns
    again = generate_synthetic_tal(tmp_path, TINY, seed=0)
    assert again.folder == a.folder and a.annotation_file.stat().st_mtime_ns == mtime
    other = generate_synthetic_tal(tmp_path, {**TINY, "feature_dim": 8}, seed=0)
    assert other.folder != a.folder
    assert np.load(next(other.feature_dir.iterdir())).shape[1] == 8
    assert not list(tmp_path.glob(".synthetic-*"))  # no temporary folder left behind


def test_config_errors():
    with pytest.raises(ValueError, match="size"):
        synthetic_config("huge")
    with pytest.raises(ValueError, match="unknown"):
        synthetic_config({"num_videos": 3})
    with pytest.raises(ValueError, match="even"):
        synthetic_config({"feature_dim": 7})


def test_ar1_matches_loop():
    rng = np.random.default_rng(0)
    e = rng.standard_normal((50, 3))
    first = np.zeros(50, bool)
    first[[0, 17, 18, 40]] = True
    z = _ar1(e.copy(), first, 0.8)
    ref = np.empty_like(e)
    for t in range(50):
        ref[t] = e[t] if first[t] else 0.8 * ref[t - 1] + np.sqrt(1 - 0.64) * e[t]
    np.testing.assert_allclose(z, ref, atol=1e-12)


def test_files_follow_the_real_layout(tmp_path):
    f = generate_synthetic_tal(tmp_path, TINY, seed=0)
    ann = load_annotations(f.annotation_file)
    assert {a.subset for a in ann.values()} == {"Validation", "Test"}
    cfg = f.config
    for vid, a in ann.items():
        x = np.load(f.feature_dir / f"{vid}.npy")
        assert x.dtype == np.float32 and x.shape[1] == 16 and np.isfinite(x).all()
        T = int((a.duration * a.fps - cfg["window"]) // cfg["stride"]) + 1
        assert x.shape[0] == T
        assert np.all(a.segments[:, 0] >= 0) and np.all(a.segments[:, 1] <= a.duration)
        assert np.all(a.segments[:, 1] > a.segments[:, 0])
    fps = {v: a.fps for v, a in ann.items()}
    lists = read_ssn_proposals(f.proposal_files["Test"], fps, 20)
    assert set(lists) == {v for v, a in ann.items() if a.subset == "Test"}
    for vid, p in lists.items():
        np.testing.assert_allclose(p.gt_segments, ann[vid].segments, atol=1 / 30 + 1e-9)
    assert json.loads(f.clicks_file.read_text())


def test_statistics_mid_size(tmp_path):
    """THUMOS14-like statistics at a mid size (120 videos)."""
    f = generate_synthetic_tal(tmp_path, {"num_train": 60, "num_test": 60, "feature_dim": 4},
                               seed=1)
    ann = load_annotations(f.annotation_file)
    n = np.array([len(a) for a in ann.values()])
    lengths = np.concatenate([a.segments[:, 1] - a.segments[:, 0] for a in ann.values()])
    dur = np.array([a.duration for a in ann.values()])
    covered = sum(float(np.diff(merge_segments(a.segments), axis=1).sum())
                  for a in ann.values())
    assert 10 <= n.mean() <= 22 and 5 <= np.median(n) <= 12 and n.max() >= 50
    assert 3.2 <= lengths.mean() <= 5.0 and 2.4 <= np.median(lengths) <= 3.6
    assert lengths.min() >= 0.2 - 1e-9 and lengths.max() >= 20
    assert 0.22 <= covered / dur.sum() <= 0.36
    assert 150 <= dur.mean() <= 280
    labels = {lab for a in ann.values() for lab in a.labels}
    assert len(labels) >= 15
    # proposals: hundreds per video, imperfect but useful recall
    fps = {v: a.fps for v, a in ann.items()}
    lists = read_ssn_proposals(f.proposal_files["Validation"], fps)
    per_video = np.array([len(p) for p in lists.values()])
    assert 100 <= np.median(per_video) <= 1500
    rec = []
    for p in lists.values():
        if len(p.gt_segments):
            iou = segment_iou(torch.from_numpy(p.gt_segments), torch.from_numpy(p.segments))
            rec.append((iou.max(1).values >= 0.5).double().numpy())
    recall = np.concatenate(rec).mean()
    assert 0.7 <= recall <= 0.99


def _snippets(ds):
    X, Y = [], []
    for d in ds:
        y = torch.zeros(d.num_nodes)
        for s, e in d.gt_segments.tolist():
            y[(d.pos >= s) & (d.pos <= e)] = 1
        X.append(d.x)
        Y.append(y)
    return torch.cat(X), torch.cat(Y)


def _auc(score, y):
    order = score.argsort()
    ranks = torch.empty(len(score))
    ranks[order] = torch.arange(len(score), dtype=torch.float)
    pos = y > 0
    return float((ranks[pos].mean() - (pos.sum() - 1) / 2) / (~pos).sum())


def test_learnable_but_not_separable(tmp_path):
    """A linear snippet probe learns actionness (AUC well above chance) but does
    not separate it; no single feature dimension separates it either."""
    torch.manual_seed(0)
    train = SyntheticTAL(tmp_path, size="small", subset="train", graph=None)
    test = SyntheticTAL(tmp_path, size="small", subset="test", graph=None)
    Xtr, Ytr = _snippets(train)
    Xte, Yte = _snippets(test)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    w = torch.zeros(Xtr.size(1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(200):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Xtr @ w + b, Ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    auc = _auc((Xte @ w).detach(), Yte)
    assert 0.7 < auc < 0.97
    single = max(max(_auc(Xte[:, d], Yte), 1 - _auc(Xte[:, d], Yte)) for d in range(Xte.size(1)))
    assert single < auc and single < 0.9


def test_dataset_reads_synthetic(tmp_path):
    ds = SyntheticTAL(tmp_path, size="small", subset="test", graph=None, modality="rgb",
                      clicks="file")
    assert len(ds) == 16 and ds.num_classes == 20
    d = ds[0]
    assert d.x.shape[1] == 32 and d.clicks.numel() > 0
    assert (d.click_labels == 20).any()  # background clicks
    generic = TALDataset(tmp_path / "generic", ds.files.annotation_file, ds.files.feature_dir,
                         subset="Test", graph=None, modality="rgb",
                         classes=ds.files.classes_file, stride=16, window=16)
    assert torch.equal(generic[0].x, d.x) and torch.equal(generic[0].pos, d.pos)
    assert repr(ds).startswith("SyntheticTAL(16, size='small', seed=0, subset='Test'")
    with pytest.raises(ValueError, match="subset"):
        SyntheticTAL(tmp_path, size="small", subset="valid")


def test_proposal_graphs_of_synthetic(tmp_path):
    ds = SyntheticTAL(tmp_path, size="small", subset="train", graph="proposal")
    assert len(ds) == 24
    d = ds[0]
    assert d.x.shape[1] == 64 and d.x_ext.shape[1] == 192 and d.edge_index.size(1) > 0
    y = torch.cat([g.y for g in ds])
    assert 0 < float((y > 0).float().mean()) < 0.5  # foreground and background proposals
    assert int(y.max()) <= ds.num_classes


@pytest.mark.parametrize("kind", ["relu", "softplus"])
def test_nonnegative_and_scaled_features(tmp_path, kind):
    # The geometry knobs act on the stored features only: same annotations, and
    # relu / softplus / scale are exact transforms of the signed features.
    base = generate_synthetic_tal(tmp_path / "a", TINY, seed=1)
    geo = generate_synthetic_tal(tmp_path / "b", {**TINY, "nonnegative": kind,
                                                  "feature_scale": 2.5}, seed=1)
    assert filecmp.cmp(base.annotation_file, geo.annotation_file, shallow=False)
    name = sorted(p.name for p in base.feature_dir.iterdir())[0]
    x = np.load(base.feature_dir / name).astype(np.float64)
    y = np.load(geo.feature_dir / name).astype(np.float64)
    ref = np.maximum(x, 0) if kind == "relu" else np.logaddexp(0, x)
    assert (y >= 0).all()
    np.testing.assert_allclose(y, 2.5 * ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="nonnegative"):
        synthetic_config({"nonnegative": "abs"})
    with pytest.raises(ValueError, match="feature_scale"):
        synthetic_config({"feature_scale": 0.0})


def test_named_variants_are_valid_configs():
    from tagraph.data.synthetic import SYNTHETIC_SIZES, SYNTHETIC_VARIANTS

    assert len(SYNTHETIC_VARIANTS) >= 5
    dims, signs, strides = set(), set(), set()
    for v in SYNTHETIC_VARIANTS.values():
        cfg = synthetic_config({**SYNTHETIC_SIZES["small"], **v})
        dims.add(cfg["feature_dim"])
        signs.add(cfg["nonnegative"])
        strides.add(cfg["stride"])
    assert {512, 1024, 2048} <= dims and {"none", "relu", "softplus"} <= signs
    assert {4, 16} <= strides


def _timings_file(path):
    # THUMOS14-like timings: two frame rates, nested instances (CliffDiving inside Diving,
    # co-occurring in two videos), an Ambiguous segment, a one-class video.
    def inst(label, s, e):
        return {"label": label, "segment": [s, e]}

    db = {
        "v_a": {"subset": "Validation", "duration": 40.0, "fps": 30.0, "annotations": [
            inst("Diving", 5.0, 15.0), inst("CliffDiving", 8.0, 11.0), inst("Ambiguous", 20, 22),
            inst("Diving", 30.0, 34.0)]},
        "v_b": {"subset": "Validation", "duration": 33.3, "fps": 25.0, "annotations": [
            inst("CliffDiving", 2.0, 6.0), inst("Diving", 12.0, 20.0)]},
        "v_c": {"subset": "Test", "duration": 51.7, "fps": 29.97, "annotations": [
            inst("Shotput", 10.0, 14.0), inst("Shotput", 40.0, 52.0)]},
        "v_d": {"subset": "Test", "duration": 24.0, "fps": 30.0, "annotations": [
            inst("HighJump", 1.0, 9.0), inst("Diving", 15.0, 18.0)]},
    }
    path.write_text(json.dumps({"version": "test", "database": db}))
    return path


def test_features_for_given_timings(tmp_path):
    from tagraph.data.synthetic import _scene_groups, generate_synthetic_features
    from tagraph.data.video import num_snippets_for

    ann_file = _timings_file(tmp_path / "gt.json")
    size = {**TINY, "stride": 16, "window": 16, "nonnegative": "softplus"}
    f = generate_synthetic_features(ann_file, tmp_path / "data", size, seed=1)
    assert f.annotation_file == ann_file.resolve()
    assert not (f.folder / "annotations.json").exists()  # read, never copied
    assert f.classes == ["CliffDiving", "Diving", "HighJump", "Shotput"]  # no Ambiguous
    gt = load_annotations(ann_file)
    for vid, a in gt.items():
        x = np.load(f.feature_dir / f"{vid}.npy")
        assert x.shape == (num_snippets_for(a.duration, a.fps, 16, 16), 16)
        assert x.dtype == np.float32 and np.isfinite(x).all() and (x > 0).all()
    cfg = json.loads((f.folder / "config.json").read_text())["config"]
    # the pair shares two videos: one scene group; default group_sizes (20 classes) do not
    # fit 4 classes, so every other class is a group of its own
    assert cfg["num_classes"] == 4 and cfg["group_sizes"] == [2, 1, 1] == f.config["group_sizes"]
    clicks = read_clicks(f.clicks_file, f.classes)
    assert set(clicks) == set(gt)
    for vid, (times, labels) in clicks.items():  # background clicks outside every instance
        assert len(times) and (labels == 4).all()
        seg = gt[vid].segments
        assert not ((times[:, None] > seg[:, 0]) & (times[:, None] < seg[:, 1])).any()
    props = read_ssn_proposals(f.proposal_files["Test"], {v: a.fps for v, a in gt.items()}, 4)
    assert set(props) == {"v_c", "v_d"}
    # deterministic, cached, keyed by the file
    again = generate_synthetic_features(ann_file, tmp_path / "data", size, seed=1)
    assert again.folder == f.folder
    other = generate_synthetic_features(ann_file, tmp_path / "other", size, seed=1, force=True)
    for vid in gt:
        assert np.array_equal(np.load(f.feature_dir / f"{vid}.npy"),
                              np.load(other.feature_dir / f"{vid}.npy"))
    text = ann_file.read_text().replace("51.7", "51.9")
    ann_file.write_text(text)
    assert generate_synthetic_features(ann_file, tmp_path / "data", size, seed=1).folder \
        != f.folder
    # classes sharing two videos share a scene group; the rest fill group_sizes
    labels = [np.array([1, 0, 1]), np.array([0, 1]), np.array([3, 3]), np.array([2, 1])]
    g = _scene_groups(labels, 4, (2, 1, 1), np.random.default_rng(0))
    assert g[0] == g[1] and np.bincount(g).tolist() == [2, 1, 1]
    g = _scene_groups(labels, 4, (1, 1, 1, 1), np.random.default_rng(0))  # pair does not fit
    assert g[0] == g[1] and len(set(g.tolist())) == 3


def test_features_for_given_timings_errors(tmp_path):
    from tagraph.data.synthetic import generate_synthetic_features

    db = {"v_x": {"subset": "Test", "duration": 30.0,
                  "annotations": [{"label": "A", "segment": [1.0, 2.0]}]}}
    (tmp_path / "gt.json").write_text(json.dumps({"database": db}))
    with pytest.raises(ValueError, match=r"gt.json: video 'v_x': field 'fps'"):
        generate_synthetic_features(tmp_path / "gt.json", tmp_path / "d", TINY)
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_features_for_given_timings_show_the_actions(tmp_path):
    """The class motion follows the file's timings: projected on the generator's own motion
    direction of an instance's class, the Flow half is higher inside the instance than on
    the video's background, and inside the nested CliffDiving higher for CliffDiving than
    for the Diving around it."""
    from tagraph.data.synthetic import _annotations_from_file, _bases, generate_synthetic_features

    ann_file = _timings_file(tmp_path / "gt.json")
    size = {**TINY, "feature_dim": 64, "noise_scale": 0.3}
    f = generate_synthetic_features(ann_file, tmp_path, size, seed=0)
    gt = load_annotations(ann_file)
    ann = _annotations_from_file(gt, f.classes, f.config, np.random.default_rng([0, 0]))
    _, BF = _bases(f.config, ann, np.random.default_rng([0, 1]))
    index = {c: i for i, c in enumerate(f.classes)}
    gaps = []
    for vid, a in gt.items():
        x = np.load(f.feature_dir / f"{vid}.npy")[:, 32:]
        t = (np.arange(len(x)) * 16 + 8) / a.fps
        inside = (t[:, None] > a.segments[:, 0] - 1) & (t[:, None] < a.segments[:, 1] + 3)
        bg = ~inside.any(1)
        for (s, e), lab in zip(a.segments, a.labels):
            if lab == "Ambiguous" or (vid == "v_a" and lab == "Diving" and s == 5.0):
                continue
            body = (t > s + 0.5) & (t < e - 0.5)
            proj = x @ BF[index[lab]]
            gaps.append(proj[body].mean() - proj[bg].mean())
    assert min(gaps) > 0.1 and np.mean(gaps) > 0.3
    x = np.load(f.feature_dir / "v_a.npy")[:, 32:]
    t = (np.arange(len(x)) * 16 + 8) / 30.0
    inner = (t > 8.5) & (t < 10.5)
    cliff, diving = x @ BF[index["CliffDiving"]], x @ BF[index["Diving"]]
    assert cliff[inner].mean() > diving[inner].mean()


def test_features_for_thumos14_timings_read_as_a_user_folder(tmp_path):
    """The real THUMOS14 timings (``../shared``; skipped when absent) through the THUMOS14
    reader with a shipped config and the README's keys."""
    from tagraph.data.synthetic import generate_synthetic_features
    from tagraph.engine.config import apply_overrides, load_config
    from tagraph.engine.runner import load_data
    from tests.data.helpers import shared_data

    shared = shared_data()
    if shared is None or not (shared / "thumos14" / "thumos14.json").is_file():
        pytest.skip("THUMOS14 annotations not in ../shared")
    ann_file = shared / "thumos14" / "thumos14.json"
    with pytest.warns(Warning):  # 30 segments reach past their video's end (kept)
        f = generate_synthetic_features(ann_file, tmp_path, {"feature_dim": 8}, seed=0)
    assert f.config["group_sizes"] == [4, 4, 3, 3, 2, 2, 1, 1]  # THUMOS14's pairs fit
    run = apply_overrides(load_config("backtal/thumos14"), [
        f"data.root={f.folder}", f"data.annotations={ann_file}", "data.features=features",
        "data.feature_stride=16", "data.clicks=clicks.json", "data.max_snippets=0"])
    with pytest.warns(Warning):
        data = load_data(run)
    assert len(data.train) + len(data.val) == 200 and len(data.test) == 212
    assert data.in_channels == 8 and len(data.classes) == 20
    assert all(int(g.gt_segments.size(0)) > 0 for g in data.test)
    assert sum(len(data.gt[g.video_id].segments) for g in data.test) == 3358
