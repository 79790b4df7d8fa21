import pytest
import torch

from tagraph.engine import Trainer
from tagraph.models import BackTAL, detection_records

from ._graphs import batch_of, snippet_graph

D, C = 12, 3


def model(**kw):
    torch.manual_seed(0)
    return BackTAL(D, C, hidden_channels=16, filter_channels=8, embed_hidden=8,
                   embed_channels=4, **kw)


def graphs():
    return [
        snippet_graph(20, D, [1, 0, 0], "v0", clicks=[0, 15, 3], click_labels=[C, C, 0], seed=1),
        snippet_graph(9, D, [0, 1, 1], "v1", clicks=[8], click_labels=[C], seed=2),
        snippet_graph(30, D, [0, 0, 1], "v2", seed=3),  # no background gap: no click (valid)
    ]


def test_backtal_batch_equals_per_video():
    m = model().eval()
    gs = graphs()
    out = m(batch_of(*gs))
    for field in ("cas_base", "cas_supp", "embedding", "fg_weight"):
        ref = torch.cat([getattr(m(batch_of(g)), field) for g in gs])
        torch.testing.assert_close(getattr(out, field), ref, rtol=1e-4, atol=1e-5)
    ref_video = torch.cat([m(batch_of(g)).video_supp for g in gs])
    torch.testing.assert_close(out.video_supp, ref_video, rtol=1e-4, atol=1e-5)


def test_backtal_training_step_and_click_ablation():
    b = batch_of(*graphs())
    loss, logs = model().training_step(b)
    assert torch.isfinite(loss) and loss.requires_grad
    assert {"loss_click", "loss_sep", "loss_emb"} <= set(logs)
    loss0, logs0 = model(use_clicks=False).training_step(b)
    assert "loss_click" not in logs0
    # Without clicks the loss is the click-free part of the full loss.
    ref = logs["loss_base"] + logs["loss_supp"] + 1e-4 * logs["loss_norm"]
    assert abs(float(loss0.detach()) - ref) < 1e-4


def test_backtal_bad_click_names_video_and_click():
    gs = graphs()
    gs[1].clicks = torch.tensor([9])  # T = 9: valid indices 0..8
    with pytest.raises(ValueError, match=r"click 9 of video 'v1'"):
        model().training_step(batch_of(*gs))
    gs[1].clicks = torch.tensor([-1])
    with pytest.raises(ValueError, match="'v1'"):
        model().training_step(batch_of(*gs))


def test_backtal_predict_and_trainer():
    gs = graphs()
    m = model()
    trainer = Trainer(m, torch.optim.Adam(m.parameters(), lr=1e-3), progress=False)
    hist = trainer.fit([batch_of(*gs[:2]), batch_of(gs[2])], epochs=2)
    assert len(hist) == 2 and all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    b = batch_of(*gs)
    det = m.predict(b)
    preds = detection_records(det, b)
    assert preds, "the suppressed branch should keep at least one class"
    assert torch.all(det.batch[1:] >= det.batch[:-1])  # ordered by video
    # Without the magnitude thresholds, predict is the shared WTAL predict of the CAS.
    m.magnitude_thresholds = ()
    only_cas = m.predict(b)
    assert only_cas.scores.numel() <= det.scores.numel()
    for vid, cls, _score, start, end in preds:
        g = {g.video_id: g for g in gs}[vid]
        assert 0 <= cls < C and 0.0 <= start < end <= float(g.duration) + 1e-6
    assert m.training  # predict restores the mode
    assert repr(m) == "BackTAL(12, num_classes=3, hidden_channels=16, use_clicks=True)"


def test_backtal_unlabeled_video_is_skipped_with_warning():
    gs = graphs()
    gs[2].y = torch.zeros(1, C)
    m = model()
    with pytest.warns(UserWarning, match="without any label"):
        loss, _ = m.training_step(batch_of(*gs))
    assert torch.isfinite(loss) and m.num_skipped_unlabeled == 1


def test_backtal_single_graph_and_follow_batch_clicks():
    from torch_geometric.loader import DataLoader

    gs = graphs()
    m = model().eval()  # no dropout: the three paths must agree
    single, _ = m.training_step(gs[1])
    batched, _ = m.training_step(batch_of(gs[1]))
    follow = next(iter(DataLoader([gs[1]], batch_size=1, follow_batch=["clicks"])))
    followed, _ = m.training_step(follow)
    torch.testing.assert_close(single, batched)
    torch.testing.assert_close(single, followed)
