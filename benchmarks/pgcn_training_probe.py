"""Training-curve probe for P-GCN on the synthetic set: running cross-entropy and
accuracy of the classification samples every 50 SGD steps (no validation).

Used for the README's diagnosis of why P-GCN did not learn at D = 256 with the
paper's dropout 0.8, and why lr 0.01 diverges at D = 2048:

    PYTHONPATH=. python benchmarks/pgcn_training_probe.py ROOT FEATURE_DIM DROPOUT BRANCH STEPS LR
    PYTHONPATH=. python benchmarks/pgcn_training_probe.py runs/synthetic_d256 256 0.8 mlp 200 0.01
    PYTHONPATH=. python benchmarks/pgcn_training_probe.py runs/synthetic_d256 256 0.5 mlp 200 0.01
    PYTHONPATH=. python benchmarks/pgcn_training_probe.py runs/synthetic_full 2048 0.8 mlp 150 0.01
"""

from __future__ import annotations

import sys
import time

import torch

from tagraph.data import SyntheticTAL
from tagraph.loader import PGCNTrainLoader
from tagraph.models import PGCN


def main() -> None:
    root, dim, dropout, kind, steps, lr = sys.argv[1:7]
    dim, dropout, steps, lr = int(dim), float(dropout), int(steps), float(lr)
    torch.set_num_threads(1)
    size = "full" if dim == 2048 else {"feature_dim": dim}
    ds = SyntheticTAL(root, size=size, subset="train", graph="proposal",
                      graph_kwargs={"add_gt": True})
    graphs = [ds[i] for i in range(160)]
    loader = PGCNTrainLoader(graphs, [4, 4], batch_size=128, epoch_multiplier=20)
    torch.manual_seed(0)
    model = PGCN(dim, len(ds.files.classes), 512 if dim == 2048 else 256, act_branch=kind,
                 comp_branch=kind, dropout=dropout)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    t0, n, acc, ce = time.perf_counter(), 0, [], []
    for batch in loader:
        loss, logs = model.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += 1
        acc.append(logs["acc"])
        ce.append(logs["ce"])
        if n % 50 == 0:
            print(f"step {n}: ce {sum(ce[-50:]) / 50:.3f} acc {sum(acc[-50:]) / 50:.3f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
        if n == steps:
            break


if __name__ == "__main__":
    main()
