import pytest
import torch
from torch_geometric.data import Batch, Data

from tagraph.engine import Trainer
from tagraph.loader import PGCNTrainLoader, proposal_sample_types
from tagraph.models import PGCN, decode_regression, detections_from_scores, regression_stats
from tagraph.ops import nms, segment_iou, segment_overlap

K, D = 3, 8


def synth_video(seed, n=40):
    """A toy proposal graph: features carry the class of the overlapped GT, scaled by tIoU."""
    g = torch.Generator().manual_seed(seed)
    dur = 100.0
    m = 2
    gt_start = torch.rand(m, generator=g) * 40 + torch.tensor([0.0, 50.0])
    gt = torch.stack([gt_start, gt_start + 5 + torch.rand(m, generator=g) * 10], 1)
    gt_lab = torch.randint(0, K, (m,), generator=g)
    # Proposals: jittered GT + random ones.
    jit = gt.repeat(n // 4, 1) + torch.randn(n // 4 * m, 2, generator=g) * 2
    rnd_s = torch.rand(n - jit.size(0), generator=g) * 90
    rnd = torch.stack([rnd_s, rnd_s + 2 + torch.rand(rnd_s.numel(), generator=g) * 10], 1)
    seg = torch.cat([jit, rnd]).sort(1).values.clamp(0, dur)
    seg[:, 1] = torch.maximum(seg[:, 1], seg[:, 0] + 0.5)
    iou_all = segment_iou(seg, gt)
    iou, best = iou_all.max(1)
    ov = segment_overlap(seg, gt).gather(1, best.view(-1, 1)).view(-1)
    y = torch.where(iou > 0, gt_lab[best] + 1, 0)
    proto = torch.randn(K + 1, D, generator=torch.Generator().manual_seed(123))
    x = proto[y] * (0.3 + iou.unsqueeze(1)) + 0.5 * torch.randn(n, D, generator=g)
    x_ext = torch.cat([x + 0.1 * torch.randn(n, D, generator=g), x, x], 1)
    gs, ps = gt[best], seg
    pl = ps[:, 1] - ps[:, 0]
    reg_target = torch.stack([((gs[:, 0] + gs[:, 1]) - (ps[:, 0] + ps[:, 1])) / 2 / pl,
                              torch.log((gs[:, 1] - gs[:, 0]) / pl)], 1)
    # Contextual edges: tIoU > 0.5 between proposals (no self loops).
    pp = segment_iou(seg, seg)
    pp.fill_diagonal_(0)
    edge_index = (pp > 0.5).nonzero().t()
    ew = torch.nn.functional.relu(torch.nn.functional.cosine_similarity(
        x[edge_index[0]], x[edge_index[1]]))
    return Data(x=x, x_ext=x_ext, segments=seg, edge_index=edge_index, edge_weight=ew,
                edge_type=torch.zeros(edge_index.size(1), dtype=torch.long), y=y, iou=iou,
                overlap_self=ov, reg_target=reg_target, duration=dur, num_nodes=n)


@pytest.mark.parametrize("act,comp,ew", [("gcn", "gcn", "cos"), ("mlp", "mlp", "none"),
                                         ("mean_pool", "mean_pool", "cos"),
                                         ("gcn", "mlp", "embed_cos"),
                                         ("gcn", "gcn_root", "cos")])
def test_forward_shapes_and_grads(act, comp, ew):
    data = synth_video(0)
    model = PGCN(D, K, 16, act_branch=act, comp_branch=comp, edge_weight=ew)
    a, c, r = model(data.x, data.x_ext, data.edge_index, data.edge_weight)
    assert a.shape == (40, K + 1) and c.shape == (40, K) and r.shape == (40, K, 2)
    data.sample_type = proposal_sample_types(data)
    loss, logs = model.training_step(data)
    loss.backward()
    assert torch.isfinite(loss) and set(logs) == {"ce", "comp", "reg", "acc"}
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.config["act_branch"] == act
    assert repr(model).startswith(f"PGCN({D}, num_classes={K}, branches=('{act}'")


def test_mlp_ignores_graph_and_gcn_uses_it():
    data = synth_video(1)
    torch.manual_seed(0)
    mlp = PGCN(D, K, 16, act_branch="mlp", comp_branch="mlp").eval()
    gcn = PGCN(D, K, 16).eval()
    no_edges = torch.empty(2, 0, dtype=torch.long)
    a1 = mlp(data.x, data.x_ext, data.edge_index, data.edge_weight)[0]
    a2 = mlp(data.x, data.x_ext, no_edges, None)[0]
    torch.testing.assert_close(a1, a2)
    b1 = gcn(data.x, data.x_ext, data.edge_index, data.edge_weight)[0]
    b2 = gcn(data.x, data.x_ext, no_edges, None)[0]
    assert not torch.allclose(b1, b2)


def test_cos_weights_default_to_feature_cosine():
    data = synth_video(2)
    model = PGCN(D, K, 16).eval()
    out1 = model(data.x, data.x_ext, data.edge_index, data.edge_weight)
    out2 = model(data.x, data.x_ext, data.edge_index, None)
    for a, b in zip(out1, out2):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_trains_loss_falls_and_predicts(tmp_path):
    torch.manual_seed(0)
    graphs = [synth_video(s) for s in range(24)]
    model = PGCN(D, K, 32, dropout=0.3)
    model.set_regression_stats(*regression_stats(
        torch.cat([g.reg_target for g in graphs]), torch.cat([g.iou for g in graphs])))
    loader = PGCNTrainLoader(graphs, [4, 4], batch_size=32, sampler="tagraph", epoch_multiplier=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    trainer = Trainer(model, opt, out_dir=tmp_path, progress=False, seed=0)
    hist = trainer.fit(loader, 15)
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"]
    assert hist[-1]["acc"] > 0.75
    # Deterministic full-graph inference.
    batch = Batch.from_data_list(graphs[:4])
    p1 = model.predict(batch)
    p2 = model.predict(batch)
    for k in p1:
        assert torch.equal(p1[k], p2[k])
    assert p1["video"].unique().numel() == 4
    assert (p1["end"] > p1["start"]).all() and (p1["start"] >= 0).all()
    assert (p1["end"] <= 100.0).all()
    # Predictions come in batches identically to one video at a time.
    one = model.predict(graphs[2])
    sel = p1["video"] == 2
    for k in ("label", "score", "start", "end"):
        torch.testing.assert_close(p1[k][sel], one[k])


def loop_detections(score, reg, segments, batch, top_k, thr, max_per_video):
    out = []
    for v in batch.unique().tolist():
        idx = (batch == v).nonzero().view(-1)
        s = score[idx].reshape(-1)
        order = torch.sort(s, descending=True, stable=True).indices[:top_k]
        node, lab = idx[order // score.size(1)], order % score.size(1)
        seg = decode_regression(segments[node], reg[node, lab])
        seg[:, 0] = seg[:, 0].clamp(min=0)
        dets = []
        for c in lab.unique().tolist():
            m = (lab == c).nonzero().view(-1)
            keep = nms(seg[m], s[order][m], thr)
            dets += [(v, c, float(s[order][m][i]), float(seg[m][i, 0]), float(seg[m][i, 1]))
                     for i in keep.tolist()]
        dets.sort(key=lambda d: -d[2])
        out += dets[:max_per_video]
    return out


def test_post_processing_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    n, k = 50, 4
    score = torch.rand(n, k, generator=g)
    reg = 0.1 * torch.randn(n, k, 2, generator=g)
    st = torch.rand(n, generator=g) * 50
    segments = torch.stack([st, st + 1 + torch.rand(n, generator=g) * 10], 1)
    batch = torch.arange(3).repeat_interleave(torch.tensor([20, 10, 20]))
    got = detections_from_scores(score, reg, segments, batch, top_k=30, nms_threshold=0.4,
                                 max_per_video=12)
    ref = loop_detections(score, reg, segments, batch, 30, 0.4, 12)
    assert got["video"].tolist() == [r[0] for r in ref]
    assert got["label"].tolist() == [r[1] for r in ref]
    torch.testing.assert_close(got["score"], torch.tensor([r[2] for r in ref]))
    torch.testing.assert_close(got["start"], torch.tensor([r[3] for r in ref]))
    torch.testing.assert_close(got["end"], torch.tensor([r[4] for r in ref]))


def test_regression_decode_roundtrip():
    data = synth_video(3)
    fg = data.iou > 0.3
    gt_like = decode_regression(data.segments[fg], data.reg_target[fg])
    best = segment_iou(gt_like, gt_like).diag()
    torch.testing.assert_close(best, torch.ones_like(best))
    mean, std = regression_stats(data.reg_target, data.iou, 0.3)
    assert mean.shape == (2,) and (std > 0).all()


@pytest.mark.parametrize("kind", ["gcn", "mlp", "mean_pool", "gcn_root"])
@pytest.mark.parametrize("edge_weight", ["cos", "none"])
def test_seed_only_forward_equals_full_graph_outputs(kind, edge_weight):
    # A neighbour-sampled batch: the seeds' outputs computed from the trimmed
    # layers equal the full forward pass restricted to the seeds.
    graphs = [synth_video(s) for s in range(4)]
    # tagraph's sampler reports per-hop node counts (PyG's does only through pyg-lib;
    # without them training_step falls back to "the first batch_size nodes")
    loader = PGCNTrainLoader(graphs, [3, 2], batch_size=16, sampler="tagraph",
                             generator=torch.Generator().manual_seed(0))
    batch = next(iter(loader))
    hops = list(batch.num_sampled_nodes)
    assert hops[0] == batch.batch_size and sum(hops) == batch.num_nodes
    torch.manual_seed(0)
    model = PGCN(D, K, 16, act_branch=kind, comp_branch=kind, edge_weight=edge_weight).eval()
    full = model(batch.x, batch.x_ext, batch.edge_index, batch.edge_weight)
    part = model(batch.x, batch.x_ext, batch.edge_index, batch.edge_weight, hops)
    for f, p in zip(full, part):
        assert p.size(0) == batch.batch_size
        torch.testing.assert_close(p, f[:batch.batch_size], rtol=1e-5, atol=1e-6)
    # "the first n nodes" form (a one-element list) also matches
    part1 = model(batch.x, batch.x_ext, batch.edge_index, batch.edge_weight, [7])
    torch.testing.assert_close(part1[0], full[0][:7], rtol=1e-5, atol=1e-6)
    # training_step uses the seed-only path: same loss as the full pass in eval mode
    loss_fast, _ = model.training_step(batch)
    n = batch.batch_size
    label = batch.matched_label if "matched_label" in batch else batch.y
    loss_full, _ = model.loss(full[0][:n], full[1][:n], full[2][:n], batch.sample_type[:n],
                              label[:n], batch.reg_target[:n])
    torch.testing.assert_close(loss_fast, loss_full)
    del batch.num_sampled_nodes  # e.g. PyG's native sampler through torch-sparse
    loss_fallback, _ = model.training_step(batch)
    torch.testing.assert_close(loss_fallback, loss_full)
