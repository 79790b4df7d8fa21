import json
import os
import warnings

import numpy as np
import pytest
import torch

from tagraph.data import THUMOS14, write_clicks, write_ssn_proposals
from tagraph.data.proposal_io import ProposalList
from tests.data.helpers import make_tiny_dataset, shared_data, tiny_tal_dataset


def _ds(tmp_path, **kw):
    return tiny_tal_dataset(tmp_path, **kw)


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_dataset(tmp_path / "raw")


def test_sequence_graphs(tmp_path, tiny):
    ds = _ds(tmp_path)
    assert len(ds) == 3 and ds.classes == ["jump", "run"] and ds.num_classes == 2
    d = ds[0]
    x = np.load(tmp_path / "raw" / "features" / "vid_a.npy")
    np.testing.assert_array_equal(d.x.numpy(), x)
    np.testing.assert_allclose(d.pos.numpy(), (np.arange(len(x)) * 2 + 2) / 10.0, rtol=1e-6)
    assert d.video_id == "vid_a" and d.duration == 20.0 and d.fps == 10.0
    np.testing.assert_array_equal(d.y.numpy(), [[1, 1]])
    np.testing.assert_allclose(d.gt_segments.numpy(), [[2, 5], [10, 12.5]])
    np.testing.assert_array_equal(d.gt_labels.numpy(), [1, 0])
    empty = ds[2]  # a video without annotations is valid
    assert empty.gt_segments.shape == (0, 2) and empty.y.sum() == 0
    assert repr(ds) == ("TALDataset(3, subset='train', graph=None, modality='both', "
                        "num_classes=2)")


def test_modality_and_resampling(tmp_path, tiny):
    rgb = _ds(tmp_path, modality="rgb", feature_dim=3)
    assert rgb[0].x.shape[1] == 3
    with pytest.raises(ValueError, match="vid_a.*dimension 3, expected 4"):
        _ds(tmp_path, modality="rgb", feature_dim=4)
    fixed = _ds(tmp_path, max_snippets=16, resample="interpolate")
    assert all(d.num_nodes == 16 for d in fixed)
    capped = _ds(tmp_path, max_snippets=50)
    assert [d.num_nodes for d in capped] == [50, 50, 39]
    assert capped[0].pos[-1] == pytest.approx(_ds(tmp_path)[0].pos[-1])


def test_cache_rebuilds_on_argument_and_file_change(tmp_path, tiny):
    a = _ds(tmp_path)
    b = _ds(tmp_path)  # same arguments: served from cache
    assert b.processed_dir == a.processed_dir
    assert torch.equal(a[0].x, b[0].x)
    c = _ds(tmp_path, modality="flow")
    assert c.processed_dir != a.processed_dir
    d = _ds(tmp_path, max_snippets=10)
    assert d.processed_dir != a.processed_dir
    # a modified feature file (new content, size or mtime) rebuilds
    f = tmp_path / "raw" / "features" / "vid_a.npy"
    new = np.full((60, 6), 7.0, dtype=np.float32)
    np.save(f, new)
    e = _ds(tmp_path)
    assert e.processed_dir != a.processed_dir
    np.testing.assert_array_equal(e[0].x.numpy(), new)
    # touching the annotation file (mtime only) rebuilds too
    ann = tmp_path / "raw" / "annotations.json"
    st = os.stat(ann)
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _ds(tmp_path).processed_dir != e.processed_dir


def test_stale_key_is_never_served(tmp_path, tiny):
    a = _ds(tmp_path)
    key = os.path.join(a.processed_dir, "key.json")
    stored = json.loads(open(key).read())
    stored["modality"] = "rgb"  # simulate a cache written for other arguments
    open(key, "w").write(json.dumps(stored))
    torch.save("garbage", os.path.join(a.processed_dir, "data.pt"))
    b = _ds(tmp_path)  # key mismatch -> rebuilt, not loaded
    assert torch.equal(b[0].x, a[0].x)
    assert json.loads(open(key).read())["modality"] == "both"


def test_simulated_and_file_clicks(tmp_path, tiny):
    ds = _ds(tmp_path, clicks="background", click_seed=1)
    d = ds[0]
    # vid_a: actions [2, 5] and [10, 12.5] in 20 s -> 3 background gaps
    assert d.clicks.numel() == 3 and d.click_labels.tolist() == [2, 2, 2]
    assert torch.equal(_ds(tmp_path, clicks="background", click_seed=1)[0].clicks, d.clicks)
    both = _ds(tmp_path, clicks="both")[0]
    assert sorted(both.click_labels.tolist()) == [0, 1, 2, 2, 2]
    path = tmp_path / "clicks.json"
    write_clicks(path, {"vid_a": (np.array([0.2, 7.0]), np.array([2, 1])),
                        "vid_b": (np.array([5.0]), np.array([2])),
                        "vid_c": (np.zeros(0), np.zeros(0))}, ["jump", "run"])
    f = _ds(tmp_path, clicks=path)[0]
    pos = f.pos.numpy()
    assert f.clicks.tolist() == [int(np.abs(pos - 0.2).argmin()), int(np.abs(pos - 7).argmin())]
    assert f.click_labels.tolist() == [2, 1]
    write_clicks(path, {"vid_a": (np.array([1.0]), np.array([2]))}, ["jump", "run"])
    with pytest.raises(ValueError, match="video 'vid_b': no clicks"):
        _ds(tmp_path, clicks=path)


def test_proposal_graphs_from_every_source(tmp_path, tiny):
    from tagraph.data import proposal_graph, sliding_window_proposals, write_bsn_csv

    with pytest.raises(ValueError, match="needs 'proposals'"):
        _ds(tmp_path, graph="proposal")
    props = {"vid_a": np.array([[1.0, 4.0], [2.0, 5.0], [9.5, 12.0], [14.0, 18.0]]),
             "vid_b": np.array([[0.5, 3.0]]),
             "vid_c": np.zeros((0, 2))}  # an empty list is valid: empty graph
    lists = [ProposalList.from_segments(v, p, np.zeros((0, 2)), [], 10.0, 200)
             for v, p in props.items()]
    write_ssn_proposals(tmp_path / "p.txt", lists)
    bsn = tmp_path / "bsn"
    bsn.mkdir()
    durations = {"vid_a": 20.0, "vid_b": 15.0, "vid_c": 8.0}
    for v, p in props.items():
        write_bsn_csv(bsn / f"{v}.csv", p, np.ones(len(p)), durations[v])
    from_list = _ds(tmp_path, graph="proposal", proposals=tmp_path / "p.txt")
    from_bsn = _ds(tmp_path, graph="proposal", proposals=bsn)
    from_dict = _ds(tmp_path, graph="proposal", proposals=props)
    seq = _ds(tmp_path)
    for k in range(3):
        ref = proposal_graph(seq[k].x, seq[k].pos,
                             torch.as_tensor(props[seq[k].video_id], dtype=torch.float32),
                             gt_segments=seq[k].gt_segments, gt_labels=seq[k].gt_labels,
                             duration=seq[k].duration)
        for ds in (from_list, from_bsn, from_dict):
            d = ds[k]
            assert d.video_id == seq[k].video_id
            for key in ("x", "x_ext", "segments", "edge_index", "y", "iou"):
                assert torch.allclose(d[key].float(), ref[key].float(), atol=1e-5), key
            assert torch.equal(d.video_label, seq[k].y)
    assert from_list[2].num_nodes == 0 and from_list[2].x.shape == (0, 6)
    gen = _ds(tmp_path, graph="proposal",
              proposals=lambda video, x, pos: sliding_window_proposals(video.duration, (2.0,)))
    assert gen[0].num_nodes == len(sliding_window_proposals(20.0, (2.0,)))
    missing = {"vid_a": props["vid_a"]}
    with pytest.raises(ValueError, match="video 'vid_b': no proposals"):
        _ds(tmp_path, graph="proposal", proposals=missing)
    with pytest.raises(ValueError, match="video 'vid_a'.*inverted"):
        _ds(tmp_path, graph="proposal", proposals={**props, "vid_a": np.array([[4.0, 1.0]])})


def test_snippet_graphs_and_graph_kwargs(tmp_path, tiny):
    from tagraph.data import snippet_graph

    ds = _ds(tmp_path, graph="snippet", graph_kwargs=dict(knn=3))
    seq = _ds(tmp_path)
    ref = snippet_graph(seq[0].x, seq[0].pos, knn=3)
    d = ds[0]
    assert torch.equal(d.edge_index, ref.edge_index)
    assert torch.allclose(d.edge_weight, ref.edge_weight)
    assert torch.equal(d.y, seq[0].y) and d.video_id == "vid_a"
    other = _ds(tmp_path, graph="snippet", graph_kwargs=dict(knn=2))
    assert other.processed_dir != ds.processed_dir  # builder arguments key the cache
    assert other[0].edge_index.size(1) < d.edge_index.size(1)
    approx = _ds(tmp_path, graph="snippet", graph_kwargs=dict(knn=3, knn_method="approx"))
    assert approx.processed_dir not in (ds.processed_dir, other.processed_dir)
    a_ref = snippet_graph(seq[0].x, seq[0].pos, knn=3, knn_method="approx")
    assert torch.equal(approx[0].edge_index, a_ref.edge_index)


@pytest.mark.parametrize("mutate,match", [
    (lambda raw: (raw / "features" / "vid_b.npy").unlink(), r"vid_b"),
    (lambda raw: np.save(raw / "features" / "vid_b.npy", np.full((71, 6), np.nan)),
     r"vid_b.npy: video 'vid_b'.*NaN/Inf"),
    (lambda raw: np.save(raw / "features" / "vid_b.npy", np.zeros((71, 5))),
     r"vid_b.npy: video 'vid_b'.*dimension 5"),
    (lambda raw: np.save(raw / "features" / "vid_b.npy", np.zeros((1, 6))),
     r"vid_b.npy: video 'vid_b'.*shorter than the annotations imply"),
    (lambda raw: (raw / "features" / "vid_b.npy").write_bytes(b"\x93NUMPY garbage"),
     r"vid_b.npy: video 'vid_b': cannot read"),
    (lambda raw: (raw / "annotations.json").write_text(
        (raw / "annotations.json").read_text()[:100]), r"annotations.json: invalid or truncated"),
    (lambda raw: _edit(raw, "vid_b", "annotations", [{"label": "swim", "segment": [1, 2]}]),
     r"annotations.json: video 'vid_b': field 'label': 'swim' is not in the class list"),
    (lambda raw: _edit(raw, "vid_b", "annotations", [{"label": "run", "segment": [3, 2]}]),
     r"annotations.json: video 'vid_b'.*inverted"),
    (lambda raw: _edit(raw, "vid_b", "fps", None), r"video 'vid_b': field 'fps'"),
    (lambda raw: _edit(raw, "vid_b", "duration", None), r"video 'vid_b': field 'duration'"),
])
def test_bad_input_names_file_video_field(tmp_path, tiny, mutate, match):
    mutate(tmp_path / "raw")
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        _ds(tmp_path, classes=["jump", "run"], feature_dim=6)


def _edit(raw, vid, key, value):
    p = raw / "annotations.json"
    obj = json.loads(p.read_text())
    if value is None:
        del obj["database"][vid][key]
    else:
        obj["database"][vid][key] = value
    p.write_text(json.dumps(obj))


def test_segments_outside_video(tmp_path, tiny):
    _edit(tmp_path / "raw", "vid_b", "annotations",
          [{"label": "run", "segment": [14.0, 17.0]}, {"label": "run", "segment": [16, 18]}])
    # two segments of one video reach past its end: both counted (not the video), one dropped
    with pytest.warns(UserWarning, match=r"2 ground-truth segment\(s\) in 1 video\(s\) "
                      r"reach outside \[0, duration\] and were clipped to it \(1 dropped"):
        d = _ds(tmp_path)[1]
    np.testing.assert_allclose(d.gt_segments.numpy(), [[14.0, 15.0]])
    with pytest.raises(ValueError, match=r"video 'vid_b'.*outside \[0, 15.0\]"):
        _ds(tmp_path, outside="error")


def test_subset_errors(tmp_path, tiny):
    with pytest.raises(ValueError, match="no video in subset 'val'.*subsets"):
        _ds(tmp_path, subset="val")
    assert len(_ds(tmp_path, subset="TEST")) == 1


def test_thumos14_preset_on_real_annotations(tmp_path):
    shared = shared_data()
    if shared is None:
        pytest.skip("shared THUMOS14 annotations not available")
    ann = shared / "thumos14" / "thumos14.json"
    db = json.loads(ann.read_text())["database"]
    feats = tmp_path / "i3d_features"
    feats.mkdir()
    rng = np.random.default_rng(0)
    test_ids = [v for v, a in db.items() if a["subset"] == "Test"]
    for vid in test_ids:
        a = db[vid]
        T = max(1, int((a["duration"] * a["fps"] - 16) // 4) + 1)
        np.save(feats / f"{vid}.npy", rng.standard_normal((T, 4)).astype(np.float16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = THUMOS14(tmp_path, subset="test", annotation_file=ann, graph=None,
                      max_snippets=64, clicks="background")
    assert len(ds) == 212 and ds.num_classes == 20
    d = ds[0]
    assert d.video_id == test_ids[0] and d.x.shape == (min(64, d.x.shape[0]), 4)
    n_gt = sum(int(g.gt_labels.numel()) for g in ds)
    assert 3000 < n_gt <= sum(len(db[v]["annotations"]) for v in test_ids)
    assert all(int(g.clicks.max()) < g.num_nodes for g in ds if g.clicks.numel())


def test_on_disk_mode_matches_in_memory(tmp_path, tiny):
    mem = _ds(tmp_path, graph="snippet", clicks="background")
    disk = _ds(tmp_path, graph="snippet", clicks="background", in_memory=False)
    assert disk.processed_dir != mem.processed_dir and len(disk) == len(mem) == 3
    assert len(list((tmp_path / "cache").glob("processed/*/graphs/*.pt"))) == 3
    for a, b in zip(mem, disk):
        assert set(a.keys()) == set(b.keys())
        for k in a.keys():
            if isinstance(a[k], torch.Tensor):
                assert torch.equal(a[k], b[k]), k
            else:
                assert a[k] == b[k], k
    again = _ds(tmp_path, graph="snippet", clicks="background", in_memory=False)
    assert torch.equal(again[1].x, disk[1].x)
    from torch_geometric.loader import DataLoader

    batch = next(iter(DataLoader(disk, batch_size=3)))
    assert batch.num_graphs == 3 and batch.video_id == ["vid_a", "vid_b", "vid_c"]


def test_activitynet_preset_layout_with_prefix(tmp_path):
    from tagraph.data import ActivityNet13

    (tmp_path / "annotations").mkdir()
    (tmp_path / "i3d_features").mkdir()
    db = {"abc": {"subset": "training", "duration": 30.0,
                  "annotations": [{"label": "Surfing", "segment": [3.0, 20.0]}]},
          "xyz": {"subset": "validation", "duration": 12.0, "annotations": []}}
    (tmp_path / "annotations" / "anet1.3_i3d_filtered.json").write_text(
        json.dumps({"database": db}))
    x = np.random.default_rng(0).standard_normal((46, 4)).astype(np.float32)
    np.save(tmp_path / "i3d_features" / "v_abc.npy", x)
    ds = ActivityNet13(tmp_path, subset="train", graph=None, max_snippets=16,
                       resample="interpolate")
    d = ds[0]
    assert d.video_id == "abc" and d.x.shape == (16, 4) and d.fps == 25.0
    assert d.pos[0] == pytest.approx(8 / 25) and d.pos[-1] == pytest.approx((45 * 16 + 8) / 25)
    with pytest.raises(FileNotFoundError, match="v_xyz"):
        ActivityNet13(tmp_path, subset="val", graph=None)


def test_callable_arguments_key_the_cache_by_code(tmp_path, tiny):
    from tagraph.data.dataset import _describe_callable

    def gen(video, x, pos):
        return np.array([[0.0, 1.0]])

    def gen2(video, x, pos):
        return np.array([[0.0, 2.0]])

    a = _ds(tmp_path, graph="proposal", proposals=gen)
    b = _ds(tmp_path, graph="proposal", proposals=gen)
    assert a.processed_dir == b.processed_dir  # same code: cache reused
    c = _ds(tmp_path, graph="proposal", proposals=gen2)
    assert c.processed_dir != a.processed_dir
    assert _describe_callable(lambda d: d) != _describe_callable(lambda d: d.x)


def test_pre_transform_keys_the_cache(tmp_path, tiny):
    from tagraph.transforms import SnippetGraph

    a = _ds(tmp_path, pre_transform=SnippetGraph(knn=2))
    b = _ds(tmp_path, pre_transform=SnippetGraph(knn=3))
    assert a.processed_dir != b.processed_dir
    assert a[0].edge_index.size(1) < b[0].edge_index.size(1)
    assert _ds(tmp_path, pre_transform=SnippetGraph(knn=2)).processed_dir == a.processed_dir
