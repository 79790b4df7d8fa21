"""Plug :class:`tagraph.nn.GraphLaplacianRegularization` into your own model.

A minimal weakly-supervised model (linear class activation sequence, top-k
mean-pooled video scores, video-label BCE) is trained with and without a
graph-Laplacian smoothing of its CAS, ŝ = (I + μL)⁻¹ s, on the snippet graph of each
video (temporal + semantic kNN edges from :class:`tagraph.data.SyntheticTAL`, edge
weights relu(cos) of the input features). The regulariser is differentiable (implicit
backward), batched over videos, and needs only ``edge_index`` / ``edge_weight`` /
``batch``. Detections come from the shared CAS post-processing of
:class:`tagraph.models.WeaklySupervisedTAL`.

    PYTHONPATH=. python examples/laplacian_in_your_model.py --root data/example_synthetic
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader

from tagraph.data import SyntheticTAL
from tagraph.engine import Trainer
from tagraph.engine.runner import predict, score, split_train_val
from tagraph.io import load_annotations
from tagraph.models.wtal import WeaklySupervisedTAL, batch_vectors
from tagraph.nn import GraphLaplacianRegularization, topk_mean_pool
from tagraph.ops.cas import CASDetectionConfig

try:
    from own_proposals_pgcn import SIZES
except ImportError:  # pragma: no cover
    from examples.own_proposals_pgcn import SIZES

TIOU = (0.1, 0.3, 0.5, 0.7)


class SmoothMIL(WeaklySupervisedTAL):
    """Linear CAS -> (optional) graph-Laplacian smoothing -> top-k MIL."""

    def __init__(self, in_channels: int, num_classes: int, mu: float = 0.0) -> None:
        super().__init__(CASDetectionConfig(thresholds=(0.2, 0.3, 0.4, 0.5, 0.6)))
        self.lin = torch.nn.Sequential(torch.nn.Linear(in_channels, 128), torch.nn.ReLU(),
                                       torch.nn.Dropout(0.5), torch.nn.Linear(128, num_classes))
        self.glr = GraphLaplacianRegularization(mu=mu) if mu > 0 else None

    def cas_logits(self, batch):
        s = self.lin(batch.x)
        if self.glr is not None:
            x = F.normalize(batch.x, dim=1)
            w = (x[batch.edge_index[0]] * x[batch.edge_index[1]]).sum(1).clamp_min(0)
            b, _, _ = batch_vectors(batch)
            s = self.glr(s, batch.edge_index, w, b)
        return s

    def training_step(self, batch):
        s = self.cas_logits(batch)
        b, _, n = batch_vectors(batch)
        v = topk_mean_pool(s, b, ratio=8, num_graphs=n)
        loss = F.binary_cross_entropy_with_logits(v, batch.y.float())
        return loss, {}

    def localization_outputs(self, batch):
        s = self.cas_logits(batch)
        b, _, n = batch_vectors(batch)
        return torch.sigmoid(s), torch.sigmoid(topk_mean_pool(s, b, ratio=8, num_graphs=n)), None


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/example_synthetic")
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--mu", type=float, default=1.0)
    args = p.parse_args(argv)
    kw = dict(size=SIZES[args.size], graph="snippet", log=False,
              graph_kwargs={"temporal_offsets": (-2, -1, 1, 2), "knn": 5})
    train_ds = SyntheticTAL(args.root, subset="train", **kw)
    test_ds = SyntheticTAL(args.root, subset="test", **kw)
    tr, _ = split_train_val(len(train_ds), 0.2, 1234)
    gt = load_annotations(train_ds.files.annotation_file)
    classes = list(train_ds.classes)
    cfg = {"method": "ecm", "predict": {"batch_size": 8}}  # generic CAS prediction path
    out = {}
    for name, mu in (("no regularisation", 0.0), (f"GLR mu={args.mu}", args.mu)):
        torch.manual_seed(0)
        model = SmoothMIL(train_ds[0].x.size(1), len(classes), mu)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
        loader = DataLoader(train_ds[tr], batch_size=4, shuffle=True)
        Trainer(model, opt, seed=0, progress=False).fit(loader, args.epochs)
        dets = predict(cfg, model, test_ds, classes)
        res = score(dets, gt, [d.video_id for d in test_ds], TIOU)
        out[name] = {"mAP": [float(v) for v in res.mAP], "average_mAP": float(res.average_mAP)}
        print(f"{name:>18}: mAP@{list(TIOU)} = {[round(100 * v, 1) for v in out[name]['mAP']]}"
              f", avg {100 * out[name]['average_mAP']:.1f}")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
