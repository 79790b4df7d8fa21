"""Your own proposals -> P-GCN proposal graphs -> training with NeighborLoader sampling.

Any proposal source works: here multi-scale sliding windows
(:func:`tagraph.data.sliding_window_proposals`) stand in for BSN / BMN output.
:func:`tagraph.data.proposal_graph` turns each video's features and proposals into a
PyG ``Data`` (contextual + surrounding edges, targets matched to the ground truth);
:class:`tagraph.loader.PGCNTrainLoader` draws the paper's 1 : 6 : 1 training samples
and samples their 2-hop neighbourhoods with ``NeighborLoader`` (N_s = 4); the
checkpoint is picked on a validation split of the training videos; test inference
uses whole graphs (deterministic).

    PYTHONPATH=. python examples/own_proposals_pgcn.py --root data/example_synthetic
"""

from __future__ import annotations

import argparse
import json

import torch

from tagraph.data import SyntheticTAL, proposal_graph, sliding_window_proposals
from tagraph.engine import Trainer, load_checkpoint
from tagraph.engine.pgcn import pgcn_evaluate
from tagraph.engine.runner import split_train_val
from tagraph.loader import PGCNTrainLoader
from tagraph.models import PGCN, regression_stats

SIZES = {
    "small": dict(num_train=25, num_test=12, num_classes=8, group_sizes=(2, 2, 2, 1, 1),
                  feature_dim=64),
    "tiny": dict(num_train=10, num_test=6, num_classes=4, group_sizes=(2, 1, 1),
                 feature_dim=32, duration_median=40.0, duration_max=80.0),
}
TIOU = (0.1, 0.3, 0.5, 0.7)
PREDICT = dict(top_k=300, max_per_video=100)  # candidates before NMS, kept per video


def my_proposals(duration: float) -> torch.Tensor:
    """Your proposal generator: ``[N, 2]`` (start, end) seconds for one video."""
    return sliding_window_proposals(duration, scales=(2.0, 4.0, 8.0, 16.0), overlap=0.75)


def to_graphs(dataset) -> list:
    """One proposal graph per video (features, snippet times and proposals in seconds)."""
    graphs = []
    for video in dataset:
        g = proposal_graph(
            video.x, video.pos, my_proposals(float(video.duration)),
            gt_segments=video.gt_segments, gt_labels=video.gt_labels,
            duration=float(video.duration), video_id=video.video_id)
        g.video_id, g.duration = video.video_id, float(video.duration)  # for predictions
        graphs.append(g)
    return graphs


def train_pgcn(train, val, gt_file, classes, epochs: int, seed: int = 0, out_dir=None):
    torch.manual_seed(seed)
    model = PGCN(train[0].x.size(1), len(classes), hidden_channels=128)
    model.set_regression_stats(*regression_stats(torch.cat([g.reg_target for g in train]),
                                                 torch.cat([g.iou for g in train])))
    loader = PGCNTrainLoader(train, num_neighbors=[4, 4], batch_size=64, epoch_multiplier=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def val_fn(m):
        res, _ = pgcn_evaluate(m, val, gt_file, classes, TIOU, **PREDICT)
        return {"val_mAP": float(res.average_mAP)}

    trainer = Trainer(model, opt, out_dir=out_dir, seed=seed, progress=False)
    trainer.fit(loader, epochs, val_fn=val_fn, select="val_mAP", mode="max")
    if out_dir is not None:
        load_checkpoint(f"{out_dir}/best.pt", model)
    return model


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/example_synthetic")
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", default=None, help="checkpoint folder (default: none, last epoch)")
    args = p.parse_args(argv)
    kw = dict(size=SIZES[args.size], graph=None, log=False)  # snippet features only
    train_ds = SyntheticTAL(args.root, subset="train", **kw)
    test_ds = SyntheticTAL(args.root, subset="test", **kw)
    graphs, test = to_graphs(train_ds), to_graphs(test_ds)
    tr, va = split_train_val(len(graphs), 0.2, 1234)
    train, val = [graphs[i] for i in tr], [graphs[i] for i in va]
    gt_file, classes = train_ds.files.annotation_file, list(train_ds.classes)
    print(f"{len(train)} train / {len(val)} val / {len(test)} test videos, "
          f"{sum(g.num_nodes for g in graphs)} training proposals")
    model = train_pgcn(train, val, gt_file, classes, args.epochs, out_dir=args.out)
    res, dets = pgcn_evaluate(model, test, gt_file, classes, TIOU, **PREDICT)
    out = {"tiou": list(TIOU), "mAP": [float(v) for v in res.mAP],
           "average_mAP": float(res.average_mAP), "detections": len(dets)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
