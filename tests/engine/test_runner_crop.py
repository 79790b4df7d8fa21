"""Fixed-T training through the runner: ``data.crop_snippets`` (random crops of training videos)."""

from __future__ import annotations

import json

import pytest
import torch

from tagraph.engine.config import load_config
from tagraph.engine.runner import load_data, with_random_crop


def _cfg(root, crop: int, method: str = "backtal"):
    return load_config(f"{method}/synthetic", [f"data.root={json.dumps(str(root))}",
                                               f"data.crop_snippets={crop}"])


def test_crop_snippets_crops_training_videos_only(tmp_path):
    crop = 16
    whole = load_data(_cfg(tmp_path, 0))
    cropped = load_data(_cfg(tmp_path, crop))
    assert [g.video_id for g in whole.train] == [g.video_id for g in cropped.train]
    torch.manual_seed(0)
    for full, part in zip(whole.train, cropped.train):
        t = full.num_nodes
        assert part.num_nodes == min(t, crop) == part.x.size(0) == part.pos.size(0)
        # a contiguous window of the whole video, times absolute
        start = int(torch.searchsorted(full.pos, part.pos[0]))
        assert torch.equal(part.x, full.x[start:start + part.num_nodes])
        assert torch.equal(part.pos, full.pos[start:start + part.num_nodes])
        # the clicks inside the window, shifted; the others dropped with their labels
        inside = (full.clicks >= start) & (full.clicks < start + part.num_nodes)
        assert torch.equal(part.clicks, full.clicks[inside] - start)
        assert torch.equal(part.click_labels, full.click_labels[inside])
        assert torch.equal(part.y, full.y)
    # validation and test videos stay whole
    for a, b in zip(whole.val, cropped.val):
        assert torch.equal(a.x, b.x)
    for a, b in zip(whole.test, cropped.test):
        assert torch.equal(a.x, b.x)
    # a new window every read
    long = next(i for i, g in enumerate(whole.train) if g.num_nodes > crop + 8)
    starts = {float(cropped.train[long].pos[0]) for _ in range(20)}
    assert len(starts) > 1


def test_crop_snippets_trains_issf_and_backtal(tmp_path):
    from tagraph.engine.runner import build_model, train_loader

    for method in ("backtal", "issf"):
        cfg = _cfg(tmp_path, 12, method)
        data = load_data(cfg)
        model = build_model(cfg, data.in_channels, len(data.classes))
        batch = next(iter(train_loader(cfg, model, data.train, seed=0)))
        assert int(torch.bincount(batch.batch).max()) <= 12
        loss, _ = model.training_step(batch)
        assert torch.isfinite(loss)
        loss.backward()


def test_bad_crop_length():
    with pytest.raises(ValueError, match="crop_snippets"):
        with_random_crop([], -1)
