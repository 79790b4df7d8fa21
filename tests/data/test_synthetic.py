import filecmp
import json

import numpy as np
import pytest
import torch

from tagraph.data import SyntheticTAL, TALDataset, generate_synthetic_tal, read_ssn_proposals
from tagraph.data.clicks import merge_segments
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
