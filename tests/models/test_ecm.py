import pytest
import torch
from torch_geometric.data import Batch, Data

from tagraph.models import ECM
from tagraph.models.ecm import group_aggregate, minmax_normalize
from tagraph.nn.temporal_conv import temporal_edges

from .wtal_utils import snippet_batch


@pytest.mark.parametrize("normalize", ["sum", "mean", "weighted"])
def test_group_aggregate_matches_loop(normalize):
    torch.manual_seed(0)
    x = torch.randn(11, 5)
    w = torch.rand(11, 3)
    batch = torch.tensor([0] * 7 + [1] * 4)
    local = torch.cat([torch.arange(7), torch.arange(4)])
    out = group_aggregate(w, x, torch.arange(11), batch, local, 2, 3, normalize)
    out = out.view(2, 3, 3, 5)
    for b in range(2):
        idx = (batch == b).nonzero().flatten()
        for c in range(3):
            for g in range(3):
                sel = idx[local[idx] % 3 == g]
                ref = (w[sel, c, None] * x[sel]).sum(0)
                if normalize == "mean":
                    ref = ref / len(sel)
                elif normalize == "weighted":
                    ref = ref / w[sel, c].sum()
                assert torch.allclose(out[b, c, g], ref, atol=1e-6)
    with pytest.raises(ValueError, match="normalize"):
        group_aggregate(w, x, torch.arange(11), batch, local, 2, 3, "max")


@pytest.mark.parametrize("aggregation", ["mean", "weighted"])
def test_post_logits_do_not_grow_with_video_length(aggregation):
    # Regression: the post stream summed the features of each group, so its input
    # and logits grew with T, its gradients swamped the backbone / classifier
    # shared with the pre-stream, and ECM fell far below its own pre-stream on
    # variable-length videos. A video of identical snippets (offsets beyond its length, so no
    # boundary effects) must get the same post logits at any length.
    torch.manual_seed(0)
    v = torch.randn(1, 8)
    videos = [Data(x=v.repeat(t, 1), pos=torch.arange(t) + 0.5, y=torch.tensor([[1.0, 0, 0]]))
              for t in (6, 30)]
    batch = Batch.from_data_list(videos)
    model = ECM(8, 3, hidden_channels=16, offsets=(-99, 99), aggregation=aggregation).eval()
    post = model(batch)["post"]
    assert torch.allclose(post[0], post[1], atol=1e-5)
    summed = ECM(8, 3, hidden_channels=16, offsets=(-99, 99), aggregation="sum").eval()
    summed.load_state_dict(model.state_dict())
    post = summed(batch)["post"]
    assert not torch.allclose(post[0], post[1], atol=1e-3)
    with pytest.raises(ValueError, match="aggregation"):
        ECM(8, 3, aggregation="max")


def test_training_step_all_streams():
    torch.manual_seed(0)
    batch = snippet_batch()
    batch.y[2, 1] = 1.0  # a video with two classes
    model = ECM(16, 4, hidden_channels=24)
    loss, logs = model.training_step(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert set(logs) == {"loss_pre", "loss_post", "loss_cons", "loss_agg"}
    assert model.attention.weight.grad is not None
    out = model(batch, with_background=True)
    assert out["bg"].shape == (4, 4) and out["bg_pairs"].tolist() == [[0, 1, 2, 2], [0, 1, 1, 2]]
    pre_only = ECM(16, 4, hidden_channels=24, post_stream=False)
    loss, logs = pre_only.training_step(batch)
    assert set(logs) == {"loss_pre"}


def test_sparsity_term_adds_mean_weight_of_labelled_videos():
    torch.manual_seed(0)
    batch = snippet_batch()
    model = ECM(16, 4, hidden_channels=24, aggregation="weighted").eval()  # no dropout
    base, logs = model.training_step(batch)
    assert "loss_sparse" not in logs
    model.sparsity_weight = 2.0
    loss, logs = model.training_step(batch)
    w = model(batch)["w"]
    assert torch.allclose(torch.tensor(logs["loss_sparse"]), w.mean())
    assert torch.allclose(loss, base + 2.0 * w.mean())
    loss.backward()
    assert model.attention.bias.grad is not None
    # an unlabelled video's weights take no part
    batch.y[0] = 0
    with pytest.warns(UserWarning, match="without any label"):
        _, logs = model.training_step(batch)
        keep = model.labeled(batch)
    assert not bool(keep.all())
    w = model(batch)["w"][keep[batch.batch]]
    assert torch.allclose(torch.tensor(logs["loss_sparse"]), w.mean())
    with pytest.raises(ValueError, match="sparsity_weight"):
        ECM(8, 3, sparsity_weight=-1.0)


def test_separate_post_backbone():
    torch.manual_seed(0)
    batch = snippet_batch()
    shared = ECM(16, 4, hidden_channels=24).eval()
    sep = ECM(16, 4, hidden_channels=24, shared_backbone=False).eval()
    sep.load_state_dict(shared.state_dict(), strict=False)
    # the pre-classification stream is the same network
    torch.testing.assert_close(sep(batch, with_post=False)["cas"],
                               shared(batch, with_post=False)["cas"])
    # the post stream runs through its own layers (and the shared classifier)
    assert not torch.allclose(sep(batch)["post"], shared(batch)["post"])
    loss, _ = sep.training_step(batch)
    loss.backward()
    for m in (sep.post_conv1, sep.post_conv2, sep.conv1, sep.classifier):
        assert all(p.grad is not None for p in m.parameters())
    assert not hasattr(shared, "post_conv1")


def test_aggregation_consistency_matches_official_form():
    # Per video: softmax over [post, bg_collect]; bg_collect = mean of the video's
    # background runs, with each GT class's own run at its class; BCE mean.
    torch.manual_seed(1)
    model = ECM(4, 3, hidden_channels=8)
    post = torch.randn(2, 3)
    bg = torch.randn(3, 3)
    pairs = torch.tensor([[0, 0, 1], [0, 2, 1]])
    y = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    got = model.aggregation_consistency(post, bg, pairs, y)
    ref = 0.0
    rows = {0: [0, 1], 1: [2]}
    for b in range(2):
        gts = pairs[1, rows[b]]
        col = bg[rows[b]].mean(0).clone()
        for r in rows[b]:
            col[pairs[1, r]] = bg[r, pairs[1, r]]
        p = torch.softmax(torch.cat([post[b], col]), 0)
        sel = torch.cat([p[gts], p[3 + gts]])
        lab = torch.cat([torch.ones(len(gts)), torch.zeros(len(gts))])
        ref += torch.nn.functional.binary_cross_entropy(sel, lab)
    assert torch.allclose(got, ref / 2, atol=1e-6)


def test_graph_edges_equal_built_edges_and_predict():
    torch.manual_seed(0)
    batch = snippet_batch()
    model = ECM(16, 4, hidden_channels=24).eval()
    a = model(batch)["cas"]
    batch.edge_index, batch.edge_type = temporal_edges(batch.ptr, (-1, 1))
    assert torch.allclose(model(batch)["cas"], a, atol=1e-6)
    det = model.predict(batch)
    assert len(det.scores) > 0
    cas = minmax_normalize(a, batch.batch, 3)
    assert float(cas.max()) <= 1 + 1e-6


def test_empty_video_is_an_error():
    from torch_geometric.data import Batch

    from .wtal_utils import snippet_video

    b = Batch.from_data_list([snippet_video(5, vid="ok"), snippet_video(0, vid="empty")])
    with pytest.raises(ValueError, match="'empty' has no snippets"):
        ECM(16, 4, hidden_channels=8).training_step(b)


def test_one_layer_backbone():
    # layers=1: one temporal layer in each backbone (MIL's depth); the streams still train
    batch = snippet_batch()
    for shared in (True, False):
        torch.manual_seed(0)
        model = ECM(16, 4, hidden_channels=32, layers=1, shared_backbone=shared)
        assert model.conv2 is None and getattr(model, "post_conv2", None) is None
        loss, logs = model.training_step(batch)
        loss.backward()
        assert torch.isfinite(loss) and "loss_post" in logs
        assert all(p.grad is not None for p in model.conv1.parameters())
        dets = model.predict(batch)
        assert dets.scores.numel() > 0
    with pytest.raises(ValueError, match="layers"):
        ECM(16, 4, layers=3)


def test_pointwise_second_layer_keeps_the_receptive_field_of_one_layer():
    # second_offsets=[]: the CAS of snippet t depends on t-1..t+1 only (two layers see t+-2)
    from .wtal_utils import snippet_video

    video = snippet_video(12, 3)
    for second, reach in (([], 1), (None, 2)):
        torch.manual_seed(0)
        model = ECM(16, 3, hidden_channels=8, second_offsets=second, post_stream=False).eval()
        batch = Batch.from_data_list([video])
        base = model(batch)["cas"]
        x = batch.x.clone()
        x[6] += 1.0
        batch.x = x
        moved = (model(batch)["cas"] - base).abs().sum(-1) > 1e-6
        assert moved.nonzero().flatten().tolist() == list(range(6 - reach, 7 + reach))


def test_post_gradient_paths():
    # post_gradient: the paths by which the post stream's losses reach the pre stream.
    # "transition": not through the classifier (same scores); "classifier": not through
    # the weight transition, so the pre stream's backbone gets no gradient from them.
    batch = snippet_batch()
    torch.manual_seed(0)
    ref = ECM(16, 4, hidden_channels=16, shared_backbone=False, dropout=0.0)
    models = {}
    for path in ("both", "classifier", "transition"):
        m = ECM(16, 4, hidden_channels=16, shared_backbone=False, dropout=0.0,
                post_gradient=path)
        m.load_state_dict(ref.state_dict())
        models[path] = m
    post = {k: m(batch)["post"] for k, m in models.items()}
    assert torch.allclose(post["both"], post["classifier"])
    assert torch.allclose(post["both"], post["transition"])
    grads = {}
    for k, m in models.items():
        post[k].sum().backward()
        grads[k] = (m.classifier.weight.grad.clone(), next(m.conv1.parameters()).grad)
    assert grads["both"][1].abs().sum() > 0
    assert grads["classifier"][1] is None or not grads["classifier"][1].any()
    assert grads["transition"][1].abs().sum() > 0
    # "classifier": the shared classifier still gets the post stream's gradient
    assert grads["classifier"][0].abs().sum() > 0
    with torch.no_grad():  # "transition" with a constant transition: no gradient at all
        m = models["transition"]
        m.zero_grad()
        m.attention.weight.zero_()
    m(batch)["post"].sum().backward()
    assert not m.classifier.weight.grad.any()
    with pytest.raises(ValueError, match="post_gradient"):
        ECM(16, 4, post_gradient="own")


def test_residual_second_layer():
    # residual="sum": h1 + h2; "rezero": h1 + g * h2 with g = 0 at the start, so the
    # backbone starts as the one-layer one (the same conv1), and g gets a gradient
    batch = snippet_batch()
    torch.manual_seed(0)
    plain = ECM(16, 4, hidden_channels=8, dropout=0.0, post_stream=False).eval()
    one = ECM(16, 4, hidden_channels=8, dropout=0.0, layers=1, post_stream=False).eval()
    one.conv1.load_state_dict(plain.conv1.state_dict())
    one.classifier.load_state_dict(plain.classifier.state_dict())
    for residual in ("sum", "rezero"):
        model = ECM(16, 4, hidden_channels=8, dropout=0.0, post_stream=False,
                    residual=residual).eval()
        model.load_state_dict(plain.state_dict(), strict=False)
        ei, et = model.temporal_graph(batch, model.offsets)
        x = model.input_norm(batch.x)
        h1 = torch.nn.functional.leaky_relu(plain.conv1(x, ei, et))
        h2 = torch.nn.functional.leaky_relu(plain.conv2(h1, ei, et))
        want = h1 + h2 if residual == "sum" else h1
        assert torch.allclose(model.backbone(x, ei, et), want, atol=1e-6)
        if residual == "rezero":
            assert torch.allclose(model(batch)["cas"], one(batch)["cas"], atol=1e-6)
            model.train()
            model.training_step(batch)[0].backward()
            assert model.gate.grad is not None and model.gate.grad.abs().sum() > 0
    model = ECM(16, 4, hidden_channels=8, residual="rezero", shared_backbone=False)
    assert model.post_gate is not None
    with pytest.raises(ValueError, match="residual"):
        ECM(16, 4, residual="gated")
    with pytest.raises(ValueError, match="residual"):
        ECM(16, 4, layers=1, residual="sum")
