import pytest
import torch
from torch_geometric.data import Batch

from tagraph.models import MIL, wtal_detection_config
from tagraph.nn import topk_mean_pool

from .wtal_utils import snippet_batch, snippet_video


def test_forward_shapes_and_pooling():
    torch.manual_seed(0)
    batch = snippet_batch()
    model = MIL(16, 4, hidden_channels=8).eval()
    cas, logits = model(batch)
    assert cas.shape == (batch.num_nodes, 4) and logits.shape == (3, 4)
    assert torch.allclose(logits, topk_mean_pool(cas, batch.batch, 8))
    # videos are independent: a video's CAS does not depend on its batch neighbours
    alone, _ = model(Batch.from_data_list([batch.get_example(1)]))
    assert torch.allclose(alone, cas[batch.batch == 1], atol=1e-6)
    assert repr(model) == "MIL(16, 4, hidden_channels=8, topk_ratio=8)"


def test_learns_video_labels_and_detects_on_every_video():
    torch.manual_seed(0)
    graphs = []
    for i in range(8):  # class i % 2 shows on a band of snippets; non-negative features
        g = snippet_video(30, c=2, d=6, vid=f"v{i}", labels=(i % 2,), seed=i)
        g.x = g.x * 0.1 + 0.4
        g.x[10:18, i % 2] += 1.0
        graphs.append(g)
    batch = Batch.from_data_list(graphs)
    model = MIL(6, 2, hidden_channels=16, dropout=0.0)
    model.fit_input_norm(graphs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss, logs = model.training_step(batch)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.2 * first and set(logs) == {"loss_cls"}
    det = model.predict(batch)
    assert set(det.batch.tolist()) == set(range(8))  # every video gets detections
    top = [int(det.labels[det.batch == i][0]) for i in range(8)]
    assert top == [i % 2 for i in range(8)]


def test_scale_and_offset_free_through_input_norm():
    # The same model initialisation on features a * x + b (fitted norm) gives the same CAS.
    graphs = [snippet_video(25, c=3, d=8, vid=f"v{i}", seed=i) for i in range(3)]
    batch = Batch.from_data_list(graphs)
    ref = None
    for a, b in ((1.0, 0.0), (10.0, 0.4), (0.1, -2.0)):
        torch.manual_seed(0)
        model = MIL(8, 3, hidden_channels=8).eval()
        scaled = batch.clone()
        scaled.x = a * batch.x + b
        model.fit_input_norm([scaled.x])
        cas, _ = model(scaled)
        if ref is None:
            ref = cas
        assert torch.allclose(cas, ref, atol=1e-4)


def test_default_detection_is_scale_free_and_overridable():
    cfg = MIL(4, 2).detection_config
    assert cfg.normalize == "minmax" and cfg.class_relative and cfg.top1_fallback
    assert cfg.class_threshold == 0.25
    assert wtal_detection_config(gamma=0.0).gamma == 0.0
    with pytest.raises(TypeError):
        wtal_detection_config(no_such_field=1)
