import torch

from tagraph.data import graph_to_networkx, proposal_graph, snippet_graph


def test_proposal_graph_to_networkx():
    pos = (torch.arange(100, dtype=torch.float32) * 4 + 8) / 25
    seg = torch.tensor([[1.0, 3.0], [1.2, 3.1], [4.0, 5.0], [0.5, 1.0]])
    data = proposal_graph(torch.randn(100, 4), pos, seg,
                          gt_segments=torch.tensor([[1.0, 3.0]]), gt_labels=torch.tensor([6]))
    g = graph_to_networkx(data)
    assert g.number_of_nodes() == 4 and g.number_of_edges() == data.edge_index.size(1)
    assert g.nodes[0]["segment"] == (1.0, 3.0) and g.nodes[0]["label"] == 7
    assert g.nodes[2]["label"] == 0
    got = sorted((s, d, a["type"], round(a["weight"], 5)) for s, d, a in g.edges(data=True))
    names = ("contextual", "surrounding")
    expected = sorted((s, d, names[t], round(w, 5)) for s, d, t, w in zip(
        *data.edge_index.tolist(), data.edge_type.tolist(), data.edge_weight.tolist()))
    assert got == expected
    assert g.has_edge(1, 0)  # tIoU([1, 3], [1.2, 3.1]) > 0.7: contextual
    assert [a["type"] for a in g.get_edge_data(1, 0).values()] == ["contextual"]


def test_snippet_graph_to_networkx():
    data = snippet_graph(torch.randn(5, 3), torch.arange(5.0), knn=1)
    g = graph_to_networkx(data, edge_type_names=["prev", "next", "knn"])
    assert g.nodes[3]["time"] == 3.0
    assert g.number_of_edges() == data.edge_index.size(1)
    assert {a["type"] for _, _, a in g.edges(data=True)} == {"prev", "next", "knn"}
