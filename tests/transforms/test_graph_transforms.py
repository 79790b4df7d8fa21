import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data

from tagraph.data import proposal_graph, snippet_graph
from tagraph.transforms import ProposalGraph, SnippetGraph


def video(seed=0, t=120, d=6, n=40):
    g = torch.Generator().manual_seed(seed)
    pos = (torch.arange(t, dtype=torch.float32) * 4 + 8) / 25
    start = torch.rand(n, generator=g) * 15
    seg = torch.stack([start, start + torch.rand(n, generator=g) * 3 + 0.1], 1)
    return Data(x=torch.randn(t, d, generator=g), pos=pos, segments=seg,
                gt_segments=torch.tensor([[1.0, 3.0], [6.0, 9.0]]),
                gt_labels=torch.tensor([2, 5]), video_id="video_validation_0000051",
                duration=19.5, fps=25.0, y=torch.tensor([[0, 0, 1, 0, 0, 1.0]]))


def assert_same(a, b, keys):
    for key in keys:
        assert torch.equal(a[key], b[key]), key


def test_proposal_transform_equals_builder():
    data = video()
    tf = ProposalGraph(contextual_iou=0.6, max_contextual=5, max_surrounding=3)
    out = tf(data.clone())
    ref = proposal_graph(data.x, data.pos, data.segments, gt_segments=data.gt_segments,
                         gt_labels=data.gt_labels, contextual_iou=0.6, max_contextual=5,
                         max_surrounding=3)
    assert_same(out, ref, ref.keys())
    assert out.video_id == data.video_id and out.fps == 25.0 and out.duration == 19.5
    assert "pos" not in out and out.num_nodes == data.segments.size(0)
    assert out.y.shape == (40,)  # per-proposal labels replace the video-level y
    assert repr(tf) == ("ProposalGraph(contextual_iou=0.6, max_contextual=5, "
                        "surrounding_distance=1.0, max_surrounding=3, context_ratio=0.5, "
                        "pooling='max')")


def test_proposal_transform_without_gt_keeps_video_label():
    data = video()
    del data.gt_segments, data.gt_labels
    out = ProposalGraph()(data)
    assert torch.equal(out.y, data.y) and "iou" not in out


def test_snippet_transform_equals_builder_and_composes():
    data = video()
    tf = T.Compose([SnippetGraph(temporal_offsets=(-2, -1, 1, 2), knn=3), T.ToUndirected()])
    out = tf(data.clone())
    ref = snippet_graph(data.x, data.pos, temporal_offsets=(-2, -1, 1, 2), knn=3)
    ref = T.ToUndirected()(ref)
    assert_same(out, ref, ["x", "pos", "edge_index", "edge_weight", "edge_type"])
    assert torch.equal(out.y, data.y) and torch.equal(out.segments, data.segments)
    assert repr(SnippetGraph(knn=3)) == (
        "SnippetGraph(temporal_offsets=(-1, 1), knn=3, knn_exclude_temporal=True, "
        "knn_method='exact', knn_candidates=16, weight='relu_cos')")


def test_snippet_transform_approx_knn():
    data = video()
    tf = SnippetGraph(knn=3, knn_method="approx", knn_candidates=5)
    out = tf(data.clone())
    ref = snippet_graph(data.x, data.pos, knn=3, knn_method="approx", knn_candidates=5)
    assert_same(out, ref, ["x", "pos", "edge_index", "edge_weight", "edge_type"])
    # the repr (a dataset cache key for pre_transforms) tells the options apart
    assert len({repr(tf), repr(SnippetGraph(knn=3)), repr(SnippetGraph(knn=3, knn_candidates=5)),
                repr(SnippetGraph(knn=3, knn_exclude_temporal=False))}) == 4
    with pytest.raises(ValueError, match="knn_method"):
        SnippetGraph(knn_method="lsh")


def test_functional_names_registered():
    from torch.utils.data.datapipes.datapipe import IterDataPipe

    assert "tagraph_proposal_graph" in IterDataPipe.functions
    assert "tagraph_snippet_graph" in IterDataPipe.functions


def test_bad_input_names_video_and_field():
    data = video()
    del data.segments
    try:
        ProposalGraph()(data)
    except ValueError as err:
        assert "video_validation_0000051" in str(err) and "segments" in str(err)
    else:
        raise AssertionError("no error")
    data = video()
    data.x[3, 2] = float("nan")
    try:
        SnippetGraph()(data)
    except ValueError as err:
        assert "video_validation_0000051" in str(err) and "'features'" in str(err)
    else:
        raise AssertionError("no error")
