import numpy as np
import torch

from tagraph.engine.pgcn import pgcn_evaluate, pgcn_predict
from tagraph.io import VideoAnnotation
from tagraph.models import PGCN
from tests.models.test_pgcn import D, K, synth_video

CLASSES = [f"c{i}" for i in range(K)]


def graphs_and_gt(n=3):
    graphs, gt = [], {}
    for i in range(n):
        g = synth_video(10 + i)
        g.video_id = f"v{i}"
        graphs.append(g)
        # Ground truth: the proposals with the highest IoU per class stand in for GT.
        top = torch.topk(g.iou, 2).indices
        gt[f"v{i}"] = VideoAnnotation(
            f"v{i}", subset="Test", duration=100.0, fps=30.0,
            segments=g.segments[top].double().numpy(),
            labels=[CLASSES[int(g.y[j]) - 1] if g.y[j] > 0 else CLASSES[0] for j in top])
    gt["other"] = VideoAnnotation("other", subset="Test", duration=10.0, fps=30.0,
                                  segments=np.array([[1.0, 2.0]]), labels=[CLASSES[-1]])
    return graphs, gt


def test_predict_is_deterministic_and_batch_invariant():
    graphs, _ = graphs_and_gt()
    torch.manual_seed(0)
    model = PGCN(D, K, 16)
    a = pgcn_predict(model, graphs, CLASSES, batch_size=2)
    b = pgcn_predict(model, graphs, CLASSES, batch_size=3)
    assert len(a) > 0 and set(a.video_id) <= {"v0", "v1", "v2"}
    for va, vb in zip((a.video_id, a.label, a.score, a.segment),
                      (b.video_id, b.label, b.score, b.segment)):
        np.testing.assert_array_equal(va, vb)
    assert not model.training


def test_two_stream_fusion_and_restricted_evaluation():
    graphs, gt = graphs_and_gt()
    torch.manual_seed(0)
    rgb = PGCN(D // 2, K, 16)
    flow = PGCN(D // 2, K, 16)
    dets = pgcn_predict([rgb, flow], graphs, CLASSES, stream_weights=(2, 3),
                        stream_features=[slice(0, D // 2), slice(D // 2, D)])
    assert len(dets) > 0
    torch.manual_seed(1)
    res, dets = pgcn_evaluate(PGCN(D, K, 16), graphs, gt, CLASSES)
    torch.manual_seed(1)
    # 'other' is not among the graphs: its ground truth does not count as missed.
    res_all, _ = pgcn_evaluate(PGCN(D, K, 16), graphs, gt, CLASSES, restrict_to_graphs=False)
    assert 0.0 <= res.average_mAP <= 1.0
    assert res_all.average_mAP <= res.average_mAP + 1e-12
