import pytest
import torch

from tagraph.engine import Trainer
from tagraph.models import ISSF, detection_records
from tagraph.models._snippet_batch import snippet_batch

from ._graphs import batch_of, snippet_graph

D, C = 12, 3


def model(**kw):
    torch.manual_seed(0)
    return ISSF(D, C, hidden_channels=16, **kw)


def graphs():
    return [snippet_graph(20, D, [1, 0, 0], "v0", seed=1),
            snippet_graph(9, D, [0, 1, 1], "v1", seed=2),
            snippet_graph(31, D, [0, 0, 1], "v2", seed=3)]


def test_issf_batch_equals_per_video():
    m = model().eval()
    gs = graphs()
    out = m(batch_of(*gs))
    per = [m(batch_of(g)) for g in gs]
    torch.testing.assert_close(out.salient, torch.cat([p.salient for p in per]))
    torch.testing.assert_close(out.refined_features, torch.cat([p.refined_features for p in per]),
                               rtol=1e-4, atol=1e-5)
    for f in ("frame_logits", "attention", "video_ca_logits", "video_cw_logits"):
        torch.testing.assert_close(getattr(out.refined, f),
                                   torch.cat([getattr(p.refined, f) for p in per]),
                                   rtol=1e-4, atol=1e-4)


def test_issf_memory_branch_switches_on():
    m = model(memory_start_epoch=1)
    b = batch_of(*graphs())
    _, logs = m.training_step(b)
    # before memory_start_epoch the memory is neither read nor written (official)
    assert logs["w_soft"] == 1.0 and not m.memory.filled.any()
    m.fill_memory([b])
    assert m.memory.filled.any(1).all() and m.training
    m.set_epoch(1)
    loss, logs = m.training_step(b)
    loss.backward()  # the memory update must not break the graph
    assert logs["w_soft"] == 0.5


def test_issf_trainer_epochs_and_predict():
    m = model(memory_start_epoch=1)
    gs = graphs()
    loader = [batch_of(*gs[:2]), batch_of(gs[2])]
    trainer = Trainer(m, torch.optim.Adam(m.parameters(), lr=5e-5, betas=(0.9, 0.99),
                                         weight_decay=5e-4), progress=False)
    hist = trainer.fit(m.track_epochs(loader), epochs=3)
    assert int(m.epoch) == 3 and hist[-1]["w_soft"] == 0.5
    assert m.branch == "both"
    for branch in ("both", "base", "refined"):
        b = batch_of(*gs)
        for vid, cls, _, start, end in detection_records(m.predict(b, branch=branch), b):
            assert vid in {"v0", "v1", "v2"} and 0 <= cls < C and start < end


def test_issf_base_only_ablation():
    m = model(use_refinement=False)
    loss, logs = m.training_step(batch_of(*graphs()))
    assert "w_soft" not in logs and logs["loss_soft"] == 0.0
    assert m(batch_of(*graphs())).refined is None
    assert repr(m) == "ISSF(12, num_classes=3, hidden_channels=16, use_refinement=False)"


def test_issf_fill_memory_is_the_top_salient_features_per_class():
    import torch.nn.functional as F

    gs = graphs()
    m = model(memory_size=4)
    m.fill_memory([batch_of(*gs[:2]), batch_of(gs[2])])
    # batch-invariant: one batch of all videos gives the same memory
    m2 = model(memory_size=4)
    m2.fill_memory([batch_of(*gs)])
    torch.testing.assert_close(m.memory.scores, m2.memory.scores)
    torch.testing.assert_close(m.memory.features, m2.memory.features)
    # plain reference: per class, the 4 highest base probabilities among the salient
    # snippets of the videos labelled with it (eval mode: no dropout)
    m.eval()
    for c in range(C):
        feats, probs = [], []
        for g in gs:
            if g.y[0, c] > 0:
                out = m(batch_of(g))
                feats.append(out.features[out.salient])
                probs.append(F.softmax(out.base.frame_logits[out.salient], -1)[:, c])
        p, f = torch.cat(probs), torch.cat(feats)
        top = torch.sort(p, descending=True, stable=True).indices[:4]
        torch.testing.assert_close(m.memory.scores[c], p[top])
        torch.testing.assert_close(m.memory.features[c], f[top])


def test_issf_track_epochs_fills_memory_before_its_first_use():
    m = model(memory_start_epoch=2)
    gs = graphs()
    loader = [batch_of(*gs[:2]), batch_of(gs[2])]
    ref = model(memory_start_epoch=2)
    tracked = m.track_epochs(loader)
    for _ in tracked:
        pass
    assert int(m.epoch) == 1 and not m.memory.filled.any()
    for _ in tracked:
        pass
    assert int(m.epoch) == 2 and m.memory.filled.any(1).all()
    ref.set_epoch(1)
    ref.fill_memory(loader)
    torch.testing.assert_close(m.memory.features, ref.memory.features)


def test_temporal_embedding_sees_neighbours_within_a_video_only():
    # embed_temporal=True: the embedding mixes each snippet with its temporal neighbours,
    # never across the videos of a batch (the paper's embedding is per snippet)
    from .wtal_utils import snippet_batch

    torch.manual_seed(0)
    model = ISSF(16, 4, hidden_channels=32, embed_temporal=True).eval()
    batch = snippet_batch()
    feats = model(batch).features
    ptr = batch.ptr.tolist()
    for v in range(batch.num_graphs):
        one = snippet_batch(lengths=(ptr[v + 1] - ptr[v],))
        one.x = batch.x[ptr[v]:ptr[v + 1]]
        torch.testing.assert_close(model(one).features, feats[ptr[v]:ptr[v + 1]])
    idx = torch.arange(batch.num_nodes)
    idx[:ptr[1]] = torch.randperm(ptr[1], generator=torch.Generator().manual_seed(0))
    perm = batch.clone()
    perm.x = batch.x[idx]
    assert not torch.allclose(model(perm).features[:ptr[1]], feats[idx[:ptr[1]]])


def test_mil_loss_is_the_topk_ce_of_every_branch():
    from tagraph.models._snippet_batch import labels_of, snippet_batch
    from tagraph.nn.mil import normalized_ce_loss, topk_mean_pool

    b = batch_of(*graphs())
    plain, with_mil = model(), model(mil_weight=0.5, mil_ratio=4)
    plain.eval(), with_mil.eval()  # no dropout: both see the same features
    loss0, logs0 = plain.compute_loss(b, update_memory=False)
    loss1, logs1 = with_mil.compute_loss(b, update_memory=False)
    assert "loss_mil" not in logs0
    # reference: the top-(T/4) mean of each branch's frame logits, CE against [y, 1]
    sb = snippet_batch(b, with_mil.temporal_offsets, with_mil.input_norm)
    out = with_mil._forward(sb)
    y = labels_of(b, sb.num_graphs, C).float()
    y_bg = torch.cat([y, torch.ones(len(y), 1)], 1)
    ref = sum(normalized_ce_loss(topk_mean_pool(h.frame_logits, sb.batch, ratio=4,
                                                num_graphs=sb.num_graphs), y_bg)
              for h in (out.base, out.refined))
    torch.testing.assert_close(torch.tensor(logs1["loss_mil"]), ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss1 - loss0, 0.5 * ref, rtol=1e-4, atol=1e-5)


def test_pseudo_labels_restricted_to_the_video_classes():
    from tagraph.models._snippet_batch import labels_of, snippet_batch
    from tagraph.nn.issf_losses import soft_label_ce_loss

    b = batch_of(*graphs())
    plain, masked = model().eval(), model(pseudo_video_classes=True).eval()
    _, logs0 = plain.compute_loss(b, update_memory=False)
    _, logs1 = masked.compute_loss(b, update_memory=False)
    sb = snippet_batch(b, masked.temporal_offsets, masked.input_norm)
    out = masked._forward(sb)
    y = labels_of(b, sb.num_graphs, C)
    # plain loop: every snippet's target is a softmax over its video's classes + background
    total = 0.0
    for v in range(sb.num_graphs):
        rows = (sb.batch == v).nonzero().flatten()
        cls = [c for c in range(C) if y[v, c] > 0] + [C]
        per = []
        for r in rows.tolist():
            t = torch.softmax(out.refined.frame_logits[r, cls] / 0.2, 0)
            lp = torch.log_softmax(out.base.frame_logits[r] / 0.2, 0)[cls]
            per.append(-(t * lp).sum())
        total += torch.stack(per).mean()
    ref = total / sb.num_graphs
    torch.testing.assert_close(torch.tensor(logs1["loss_soft"]), ref.detach(), rtol=1e-5,
                               atol=1e-6)
    full = soft_label_ce_loss(out.base.frame_logits, out.refined.frame_logits, sb.batch, 0.2,
                              sb.num_graphs)
    torch.testing.assert_close(torch.tensor(logs0["loss_soft"]), full.detach(), rtol=1e-5,
                               atol=1e-6)
    assert abs(logs1["loss_soft"] - logs0["loss_soft"]) > 1e-4


def test_attention_scoring_switch():
    m = model().eval()
    b = batch_of(*graphs())
    _, frm, _ = m.scores(b)
    m.attention_scoring = False
    _, raw, sb = m.scores(b)
    att = m._forward(sb, refine=False).base.attention
    torch.testing.assert_close(frm, raw * att.unsqueeze(-1))


def test_predict_uses_the_branch_attribute_by_default():
    m = model().eval()
    b = batch_of(*graphs())
    base = m.predict(b, branch="base")
    m.branch = "base"
    again = m.predict(b)
    assert m.branch == "base"
    torch.testing.assert_close(again.segments, base.segments)
    torch.testing.assert_close(again.scores, base.scores)


def _embedding_grads(m, b):
    m.zero_grad()
    loss, _ = m.compute_loss(b, update_memory=False)
    loss.backward()
    return {n: p.grad.clone() for n, p in m.named_parameters()
            if n.startswith("embed") and p.grad is not None}


def test_detached_refinement_trains_the_embedding_by_the_base_losses_only():
    # refined_embedding="detached": without the soft-label term, the embedding's gradient
    # is the base-only ablation's (the refined and memory losses stop at the refinement)
    # (the shipped issf/thumos14 combination is the linear head with the temporal embedding)
    b = batch_of(*graphs())
    for et, head in [(False, "cosine"), (True, "cosine"), (True, "linear")]:
        det = model(refined_embedding="detached", soft_weight=0.0, embed_temporal=et,
                    memory_start_epoch=0, dropout=0.0, head=head)
        det.fill_memory([b])
        base = model(use_refinement=False, embed_temporal=et, dropout=0.0, head=head)
        base.load_state_dict(det.state_dict())
        g_det, g_base = _embedding_grads(det, b), _embedding_grads(base, b)
        assert g_det.keys() == g_base.keys() and g_det
        for n in g_det:
            torch.testing.assert_close(g_det[n], g_base[n], rtol=1e-4, atol=1e-6)
        shared = model(embed_temporal=et, soft_weight=0.0, memory_start_epoch=0, dropout=0.0,
                       head=head)
        shared.load_state_dict(det.state_dict())
        # same forward, same loss; only the gradient differs
        l_det, _ = det.compute_loss(b, update_memory=False)
        l_sh, _ = shared.compute_loss(b, update_memory=False)
        torch.testing.assert_close(l_det, l_sh)
        g_sh = _embedding_grads(shared, b)
        assert any((g_sh[n] - g_det[n]).abs().max() > 1e-6 for n in g_sh)


def test_own_refinement_embedding():
    from tagraph.models._snippet_batch import snippet_batch

    b = batch_of(*graphs())
    m = model(refined_embedding="own", soft_weight=0.0, memory_start_epoch=0, dropout=0.0)
    assert m.own_embed is not None and "refined_embedding='own'" in repr(m)
    m.fill_memory([b])
    # the memory holds features of the refinement's own embedding
    m.eval()
    sb = snippet_batch(b, m.temporal_offsets, m.input_norm)
    out = m._forward(sb)
    filled = m.memory.features[m.memory.filled]
    with torch.no_grad():
        d = torch.cdist(filled, out.refine_input[out.salient],
                        compute_mode="donot_use_mm_for_euclid_dist")
        d_base = torch.cdist(filled, out.features, compute_mode="donot_use_mm_for_euclid_dist")
    assert float(d.min(1).values.max()) < 1e-5 and float(d_base.min(1).values.min()) > 1e-3
    m.train()
    # without the soft-label term the base embedding's gradient is the base-only model's
    base = model(use_refinement=False, dropout=0.0)
    base.load_state_dict({k: v for k, v in m.state_dict().items()
                          if not k.startswith("own_")})
    g_own, g_base = _embedding_grads(m, b), _embedding_grads(base, b)
    for n in g_base:
        torch.testing.assert_close(g_own[n], g_base[n], rtol=1e-4, atol=1e-6)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.own_embed.parameters())


def test_soft_weight_scales_the_soft_label_term():
    b = batch_of(*graphs())
    l1, logs1 = model(dropout=0.0).compute_loss(b, update_memory=False)
    l2, logs2 = model(dropout=0.0, soft_weight=0.25).compute_loss(b, update_memory=False)
    torch.testing.assert_close(l1 - l2, torch.tensor(0.75 * logs1["w_soft"] * logs1["loss_soft"]),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="refined_embedding"):
        model(refined_embedding="separate")
    with pytest.raises(ValueError, match="soft_weight"):
        model(soft_weight=-1.0)


def test_back_weight_scales_the_class_wise_video_loss():
    # The shipped issf/thumos14 sets back_weight = 0: the class-wise loss of every branch
    # (base, refined and, once used, memory) leaves the total, nothing else changes.
    b = batch_of(*graphs())
    for kw in ({}, {"memory_start_epoch": 0}, {"head": "linear", "refined_embedding": "detached"}):
        l1, logs1 = model(dropout=0.0, **kw).compute_loss(b, update_memory=False)
        l0, logs0 = model(dropout=0.0, back_weight=0.0, **kw).compute_loss(b,
                                                                         update_memory=False)
        torch.testing.assert_close(l1 - l0, torch.tensor(0.2 * logs1["loss_back"]),
                                   rtol=1e-4, atol=1e-5)
        assert logs1["loss_back"] > 0
        # with weight 0 the class-wise logits are not computed; every other term is equal
        assert "loss_back" not in logs0
        for k in logs0:
            assert logs0[k] == pytest.approx(logs1[k], rel=1e-5, abs=1e-6), k


def test_linear_head():
    gs = graphs()
    m = model(head="linear", memory_start_epoch=1)
    assert not m.head.normalize and "head='linear'" in repr(m)
    assert "head=" not in repr(model())
    # the batch equals the per-video runs with the linear head too
    m.eval()
    out = m(batch_of(*gs))
    per = [m(batch_of(g)) for g in gs]
    torch.testing.assert_close(out.base.frame_logits,
                               torch.cat([p.base.frame_logits for p in per]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.refined.video_ca_logits,
                               torch.cat([p.refined.video_ca_logits for p in per]),
                               rtol=1e-4, atol=1e-4)
    m.train()
    trainer = Trainer(m, torch.optim.Adam(m.parameters(), lr=1e-3), progress=False)
    hist = trainer.fit(m.track_epochs([batch_of(*gs)]), epochs=2)
    assert hist[-1]["w_soft"] == 0.5 and m.head.bias.grad is not None
    b = batch_of(*gs)
    for vid, cls, _, start, end in detection_records(m.predict(b), b):
        assert vid in {"v0", "v1", "v2"} and 0 <= cls < C and start < end
    with pytest.raises(ValueError, match="head"):
        model(head="mlp")


def test_background_memory():
    gs = graphs()
    b = batch_of(*gs)
    m = model(background_memory=True, memory_start_epoch=1)
    assert m.memory.num_classes == C + 1 and "background_memory=True" in repr(m)
    m.fill_memory([b])
    # every labelled video holds background: its slots are the salient features of
    # highest background probability, across all videos
    assert m.memory.filled[C].all()
    m.eval()
    from tagraph.models._snippet_batch import snippet_batch

    sb = snippet_batch(b, m.temporal_offsets, m.input_norm)
    with torch.no_grad():
        out = m._forward(sb, refine=False)
        p_bg = torch.softmax(out.base.frame_logits, -1)[out.salient, C]
    torch.testing.assert_close(m.memory.scores[C], p_bg.sort(descending=True).values[:9])
    # the memory's classes of every video: its labels, and background if it has any label
    y = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0]])
    ym = m._memory_labels(y)
    assert ym[:, C].tolist() == [1.0, 1.0, 0.0]
    m.train()
    m.set_epoch(1)
    loss, logs = m.training_step(b)
    loss.backward()
    assert logs["w_soft"] == 0.5


def test_pseudo_labels_are_the_soft_targets_of_the_loss():
    from tagraph.nn.issf_losses import soft_label_ce_loss

    b = batch_of(*graphs())
    m = model(memory_start_epoch=1, dropout=0.0).eval()
    out = m(b)
    # before the memory is used: the refined logits at temperature 0.2
    torch.testing.assert_close(m.pseudo_labels(b),
                               torch.softmax(out.refined.frame_logits / 0.2, -1))
    m.fill_memory([b])
    m.set_epoch(1)
    p = m.pseudo_labels(b)
    torch.testing.assert_close(p.sum(-1), torch.ones(p.size(0)))
    # the loss's soft-label term is the CE against exactly these targets
    _, logs = m.compute_loss(b, update_memory=False)
    ce = -(p * torch.log_softmax(m(b).base.frame_logits / 0.2, -1)).sum(-1, keepdim=True)
    from tagraph.nn.mil import segment_mean_pool

    expect = segment_mean_pool(ce, b.batch).mean()
    assert abs(logs["loss_soft"] - float(expect)) < 1e-4
    assert abs(float(soft_label_ce_loss(m(b).base.frame_logits, torch.log(p) * 0.2, b.batch))
               - float(expect)) < 1e-4
    with pytest.raises(ValueError, match="no pseudo labels"):
        model(use_refinement=False).pseudo_labels(b)


def test_keep_background_targets():
    b = batch_of(*graphs())
    m = model(keep_background=True, memory_start_epoch=1, dropout=0.0)
    assert "keep_background=True" in repr(m)
    m.fill_memory([b])
    m.set_epoch(1)
    ref = model(memory_start_epoch=1, dropout=0.0)
    ref.load_state_dict(m.state_dict())
    p, p_ref = m.pseudo_labels(b), ref.pseudo_labels(b)
    m.eval()
    base_bg = torch.softmax(m(b).base.frame_logits / 0.2, -1)[:, -1]
    # background column = the base branch's own; the action columns keep the ratios
    torch.testing.assert_close(p[:, -1], base_bg)
    torch.testing.assert_close(p.sum(-1), torch.ones(p.size(0)))
    ok = (1 - base_bg) > 1e-3  # rows with some action mass left to share
    assert ok.sum() > 10
    torch.testing.assert_close(p[ok, :-1] / p[ok, :-1].sum(-1, keepdim=True),
                               p_ref[ok, :-1] / p_ref[ok, :-1].sum(-1, keepdim=True),
                               rtol=1e-3, atol=1e-5)
    m.train()
    loss, _ = m.training_step(b)
    loss.backward()


def test_soft_mask_disagree_keeps_only_snippets_where_pseudo_and_base_differ():
    b = batch_of(*graphs())
    m = model(soft_mask="disagree", memory_start_epoch=1, dropout=0.0)
    assert "soft_mask='disagree'" in repr(m)
    m.fill_memory([b])
    m.set_epoch(1)
    m.train()
    _, logs = m.compute_loss(b, update_memory=False)
    out = m._forward(snippet_batch(b, m.temporal_offsets, m.input_norm))
    target = m.pseudo_labels(b)
    disagree = target.argmax(-1) != out.base.frame_logits.argmax(-1)
    assert 0 < int(disagree.sum()) < disagree.numel()  # a mask that keeps some, drops some
    logp = torch.log_softmax(out.base.frame_logits / m.temperature, -1)
    per_node = -(target * logp).sum(-1) * disagree.float()
    sizes = torch.bincount(b.batch)
    want = torch.stack([p.mean() for p in per_node.split(sizes.tolist())]).mean()
    assert abs(logs["loss_soft"] - float(want)) < 1e-5
    assert abs(logs["soft_frac"] - float(disagree.float().mean())) < 1e-6
    with pytest.raises(ValueError, match="soft_mask"):
        model(soft_mask="agree")


def test_clean_teacher_pseudo_labels_come_from_a_pass_without_dropout():
    b = batch_of(*graphs())
    # Without dropout the teacher pass equals the student's: the same loss.
    m = model(clean_teacher=True, memory_start_epoch=1, dropout=0.0)
    assert "clean_teacher=True" in repr(m)
    ref = model(memory_start_epoch=1, dropout=0.0)
    ref.load_state_dict(m.state_dict())
    for x in (m, ref):
        x.fill_memory([b])
        x.set_epoch(1)
        x.train()
    torch.testing.assert_close(m.compute_loss(b, update_memory=False)[0],
                               ref.compute_loss(b, update_memory=False)[0])
    # With dropout: the soft-label term's targets are the eval-mode pseudo labels.
    m = model(clean_teacher=True, memory_start_epoch=1, dropout=0.5)
    m.fill_memory([b])
    m.set_epoch(1)
    m.train()
    torch.manual_seed(3)
    _, logs = m.compute_loss(b, update_memory=False)
    torch.manual_seed(3)
    out = m._forward(snippet_batch(b, m.temporal_offsets, m.input_norm))
    target = m.pseudo_labels(b)  # eval mode, no memory update
    logp = torch.log_softmax(out.base.frame_logits / m.temperature, -1)
    per_node = -(target * logp).sum(-1)
    sizes = torch.bincount(b.batch)
    want = torch.stack([p.mean() for p in per_node.split(sizes.tolist())]).mean()
    assert abs(logs["loss_soft"] - float(want)) < 1e-5
    assert m.training
