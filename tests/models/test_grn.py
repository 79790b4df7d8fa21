import pytest
import torch

from tagraph.models import GRN
from tagraph.nn.temporal_conv import temporal_edges

from .wtal_utils import snippet_batch


def _model(**kw):
    torch.manual_seed(0)
    return GRN(16, 4, hidden_channels=32, embed_channels=(16, 8, 8), **kw)


def test_training_step_and_affinity_warmup():
    batch = snippet_batch()
    model = _model(affinity_warmup=1, tau_high=0.5, tau_low=0.5)
    loss, logs = model.training_step(batch)  # step 0: affinity frozen
    loss.backward()
    assert all(p.grad is None for p in model.stream[0].embed.parameters())
    assert torch.isfinite(loss) and logs["loss_aff"] == 0.0
    model.zero_grad()
    loss, logs = model.training_step(batch)  # step 1: affinity trained
    loss.backward()
    assert logs["loss_aff"] > 0
    grads = [p.grad for p in model.stream[0].embed.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_regularised_scores_and_ablation():
    batch = snippet_batch()
    model = _model()
    out = model(batch)
    for s, s_hat in zip(out["s"], out["s_hat"]):
        assert s_hat.shape == s.shape
        # (I + mu L)^-1 is an averaging operator: scores stay in [0, 1] and smoother
        assert float(s_hat.min()) >= 0 and float(s_hat.max()) <= 1
        assert float(s_hat.var(0).sum()) < float(s.var(0).sum())
    plain = _model(regularize=False)
    out = plain(batch)
    assert all(a is None for a in out["a"])
    assert all(torch.equal(s, sh) for s, sh in zip(out["s"], out["s_hat"]))


def test_uses_batch_edges_when_present():
    batch = snippet_batch()
    model = _model(window=1)
    ei, et = temporal_edges(batch.ptr, (-1, 1))
    a = model(batch)["s_hat"][0]
    batch.edge_index, batch.edge_type = ei, et
    b = model(batch)["s_hat"][0]
    assert torch.allclose(a, b, atol=1e-6)


def test_affinity_targets():
    model = _model(tau_high=0.7, tau_low=0.2)
    s = torch.tensor([[0.9, 0.1], [0.8, 0.95], [0.1, 0.05], [0.5, 0.5]])
    y = torch.tensor([[1.0, 0.0]])
    batch = torch.zeros(4, dtype=torch.long)
    ei = torch.tensor([[0, 1, 0, 2, 3], [1, 2, 2, 0, 0]])
    target, mask = model.affinity_targets(s, y, batch, ei)
    # labels over GT class 0 only: 0 -> fg(0), 1 -> fg(0), 2 -> bg, 3 -> unconfident
    assert mask.tolist() == [True, True, True, True, False]
    assert target[:4].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_predict_and_bad_input():
    batch = snippet_batch()
    model = _model()
    det = model.predict(batch)
    assert det.segments.shape[1] == 2 and (det.segments[:, 1] > det.segments[:, 0]).all()
    assert det.batch.tolist() == sorted(det.batch.tolist())
    batch.y[1] = 0
    with pytest.warns(UserWarning, match="skipping 1 of 3 videos.*vid1"):
        model.training_step(batch)
    assert model.num_skipped_unlabeled == 1
    batch.x[25, 3] = float("nan")
    with pytest.raises(ValueError, match="vid1"):
        model.predict(batch)


def test_mean_pooling_is_blind_to_the_regulariser_topk_is_not():
    # (I + mu L)^-1 with L = D - A keeps each video's mean score, so the paper's
    # average-pooled classification loss cannot see the regulariser (and gives
    # the affinity module no gradient); top-k pooling can.
    batch = snippet_batch()
    for pooling, blind in (("mean", True), ("topk", False)):
        model = _model(pooling=pooling, affinity_warmup=0, tau_high=2.0, tau_low=-1.0)
        out = model(batch)
        b = batch.batch
        for s, s_hat in zip(out["s"], out["s_hat"]):
            same = torch.allclose(model.video_scores(s, b, 3), model.video_scores(s_hat, b, 3),
                                  atol=1e-5)
            assert same == blind
        # no confident snippet -> L_aff = 0: the embedding's gradient is L_cls's only
        loss, logs = model.training_step(batch)
        assert logs["loss_aff"] == 0.0
        loss.backward()
        g = sum(float(p.grad.abs().sum()) for p in model.stream[0].embed.parameters()
                if p.grad is not None)
        assert (g < 1e-6) == blind
    with pytest.raises(ValueError, match="pooling"):
        _model(pooling="max")


def test_temporal_cam_sees_neighbours_within_a_video_only():
    # cam_offsets=(-1, 1): the class activation module's first layer mixes each snippet
    # with its temporal neighbours, never across the videos of a batch
    batch = snippet_batch()
    model = _model(regularize=False, cam_offsets=(-1, 1)).eval()
    s = model(batch)["s"][0]
    ptr = batch.ptr.tolist()
    for v in range(batch.num_graphs):
        one = snippet_batch(lengths=(ptr[v + 1] - ptr[v],))
        one.x = batch.x[ptr[v]:ptr[v + 1]]
        torch.testing.assert_close(model(one)["s"][0], s[ptr[v]:ptr[v + 1]])
    # the order of the snippets matters (it does not for the paper's per-snippet module)
    idx = torch.arange(batch.num_nodes)
    idx[:ptr[1]] = torch.randperm(ptr[1], generator=torch.Generator().manual_seed(0))
    perm = batch.clone()
    perm.x = batch.x[idx]
    assert not torch.allclose(model(perm)["s"][0][:ptr[1]], s[idx[:ptr[1]]])
    paper = _model(regularize=False).eval()
    torch.testing.assert_close(paper(perm)["s"][0][:ptr[1]], paper(batch)["s"][0][idx[:ptr[1]]])


def test_dropout_is_training_only_and_keeps_the_parameter_names():
    # dropout on the class activation module's hidden layer: active in training mode
    # only, the same parameters (and checkpoint keys) as without it
    batch = snippet_batch()
    for offsets in ((), (-1, 1)):
        plain = _model(regularize=False, cam_offsets=offsets)
        drop = _model(regularize=False, cam_offsets=offsets, dropout=0.5)
        assert list(plain.state_dict()) == list(drop.state_dict())
        drop.load_state_dict(plain.state_dict())
        plain.eval(), drop.eval()
        torch.testing.assert_close(drop(batch)["s"][0], plain(batch)["s"][0])
        drop.train()
        torch.manual_seed(0)
        assert not torch.allclose(drop(batch)["s"][0], plain(batch)["s"][0])


def test_one_stream_sees_the_concatenated_features():
    # streams=1 (the shipped grn/thumos14): one class activation module on all D channels,
    # whose refined CAS is the model's; with streams=2 each module sees one half
    batch = snippet_batch()
    one, two = _model(streams=1, cam_offsets=(-1, 1)), _model(streams=2)
    assert len(one.stream) == 1 and one.stream[0].conv.in_channels == 16
    assert two.stream[0].cam[0].in_features == 8
    out = one(batch)
    assert len(out["s_hat"]) == 1
    torch.testing.assert_close(one.refined_cas(batch), out["s_hat"][0])
    # a perturbation of the second half moves the single stream's CAS ...
    x2 = batch.clone()
    x2.x = batch.x.clone()
    x2.x[:, 8:] += 1.0
    assert not torch.allclose(one(x2)["s"][0], out["s"][0])
    # ... but not the first stream of the two-stream model
    torch.testing.assert_close(two(x2)["s"][0], two(batch)["s"][0])
    loss, _ = one.training_step(batch)
    loss.backward()
    assert torch.isfinite(loss)


def test_ce_head_without_regulariser_is_mil():
    # loss="ce" with MIL's class activation module and no regulariser is MIL: the same
    # CAS, video logits, loss and detections from the same weights.
    from tagraph.models import MIL

    batch = snippet_batch()
    torch.manual_seed(0)
    mil = MIL(16, 4, hidden_channels=32, offsets=(-1, 1), dropout=0.5).eval()
    grn = GRN(16, 4, streams=1, regularize=False, hidden_channels=32, loss="ce", pooling="topk",
              cam_offsets=(-1, 1), dropout=0.5).eval()
    st = grn.stream[0]
    st.conv.load_state_dict(mil.conv.state_dict())
    st.cam[1].load_state_dict(mil.classifier.state_dict())
    assert grn.detection_config == mil.detection_config
    cas, video = mil.localization_outputs(batch)[:2]
    g_cas, g_video = grn.localization_outputs(batch)[:2]
    assert torch.allclose(cas, g_cas, atol=1e-6) and torch.allclose(video, g_video, atol=1e-6)
    assert torch.allclose(mil.training_step(batch)[0], grn.training_step(batch)[0], atol=1e-6)
    a, b = mil.predict(batch), grn.predict(batch)
    assert a.scores.numel() > 0
    assert torch.equal(a.batch, b.batch) and torch.equal(a.labels, b.labels)
    assert torch.allclose(a.scores, b.scores, atol=1e-5)
    assert torch.allclose(a.segments, b.segments, atol=1e-5)


def test_ce_head_regularises_logits_and_targets_are_relative():
    batch = snippet_batch()
    model = _model(loss="ce", pooling="topk", affinity_warmup=0)
    out = model(batch)
    for s, s_hat in zip(out["s"], out["s_hat"]):
        assert float(s.min()) < 0 or float(s.max()) > 1  # logits, not sigmoid scores
        # (I + mu L)^-1 keeps each video's mean and lowers the temporal variance
        assert torch.allclose(s.mean(0), s_hat.mean(0), atol=1e-4)
        assert float(s_hat.var(0).sum()) < float(s.var(0).sum())
    loss, logs = model.training_step(batch)
    loss.backward()
    assert torch.isfinite(loss) and logs["loss_aff"] > 0
    # the targets of logits are those of their per-video min-max normalised values,
    # whatever the logits' offset and scale
    s = torch.tensor([[4.0, -1.0], [3.0, 2.0], [-2.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[1.0, 0.0]])
    b = torch.zeros(4, dtype=torch.long)
    ei = torch.tensor([[0, 1, 2, 0], [1, 2, 3, 2]])
    t1, m1 = model.affinity_targets(s, y, b, ei)
    t2, m2 = model.affinity_targets(10.0 * s - 3.0, y, b, ei)
    assert torch.equal(t1, t2) and torch.equal(m1, m2) and bool(m1.any())
    with pytest.raises(ValueError, match="loss"):
        _model(loss="hinge")
