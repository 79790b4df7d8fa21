import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_example_data_is_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_example_data", REPO / "examples" / "make_example_data.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path)
    for name in ("example_gt.json", "example_results.json"):
        assert (tmp_path / name).read_bytes() == (REPO / "examples" / "data" / name).read_bytes()


def _load(name: str):
    import sys

    sys.path.insert(0, str(REPO / "examples"))
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_own_proposals_pgcn(tmp_path):
    out = _load("own_proposals_pgcn").main(["--root", str(tmp_path), "--size", "tiny",
                                            "--epochs", "1"])
    assert len(out["mAP"]) == 4 and 0.0 <= out["average_mAP"] <= 1.0 and out["detections"] > 0


def test_custom_graph_edges(tmp_path):
    mod = _load("custom_graph_edges")
    out = mod.main(["--root", str(tmp_path), "--size", "tiny", "--epochs", "1"])
    assert set(out) == {"surrounding", "semantic_knn"}
    # the swapped graph keeps the contextual edges and gives every node k semantic sources
    import torch
    from torch_geometric.data import Data

    g = Data(x=torch.randn(5, 4), edge_index=torch.tensor([[1, 0, 3], [0, 1, 4]]),
             edge_type=torch.tensor([0, 0, 1]), edge_weight=torch.ones(3), num_nodes=5)
    h = mod.semantic_knn_edges(g, k=2)
    assert (h.edge_type == 0).sum() == 2 and (h.edge_type == 2).sum() == 10
    assert torch.bincount(h.edge_index[1][h.edge_type == 2], minlength=5).tolist() == [2] * 5
    assert (h.edge_index[0] != h.edge_index[1]).all() and (h.edge_weight >= 0).all()


def test_laplacian_in_your_model(tmp_path):
    out = _load("laplacian_in_your_model").main(["--root", str(tmp_path), "--size", "tiny",
                                                 "--epochs", "1"])
    assert len(out) == 2 and all(0.0 <= v["average_mAP"] <= 1.0 for v in out.values())


def test_pgcn_synthetic_table_summary_and_cross_heads(tmp_path, capsys):
    mod = _load("pgcn_synthetic")
    common = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "runs"),
              "--size", "small", "--no-progress"]
    mod.main(common + ["--seeds", "0", "--epochs", "1", "--epoch-multiplier", "1",
                       "--batch-size", "64", "--hidden", "32",
                       "--methods", "P-GCN (GCN+GCN)", "MLP+MLP", "GCN+GCNr"])
    out = capsys.readouterr().out
    assert "| P-GCN (GCN+GCN) |" in out and "| MLP+MLP |" in out and "| GCN+GCNr |" in out
    # the printed command reproduces the run (store_true flags only when set)
    assert "--methods 'P-GCN (GCN+GCN)' MLP+MLP GCN+GCNr" in out and "False" not in out
    for run in ("p-gcn_seed0", "mlp_mlp_seed0", "gcn_gcnr_seed0"):
        assert (tmp_path / "runs" / run / "eval_test.json").is_file()
        assert (tmp_path / "runs" / run / "results_test.json").is_file()
    mod.main(common + ["--summarize"])
    assert "| MLP+MLP |" in capsys.readouterr().out
    mod.main(common + ["--cross-heads", "--seeds", "0"])
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| 0 |")]
    assert len(rows) == 1 and len(rows[0].split("|")) == 7
    mod.main(common + ["--neighbour-check", "--seeds", "0", "--methods", "P-GCN (GCN+GCN)",
                       "GCN+GCNr"])
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["P-GCN (GCN+GCN)", "GCN+GCNr"]
    assert all(len(r.split("|")) == 8 for r in rows)
    mod.main(common + ["--neighbour-labels"])
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| foreground |")]
    assert len(rows) == 2  # contextual and surrounding edges
    for r in rows:
        shares = [float(v) for v in r.split("|")[2:6]]
        assert abs(sum(shares) - 1.0) < 0.02 or sum(shares) == 0
