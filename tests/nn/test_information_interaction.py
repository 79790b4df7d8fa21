import pytest
import torch

import tagraph.nn.information_interaction as ii
from tagraph.nn import masked_cross_attention
from tagraph.nn.information_interaction import split_attention


def _reference(q, k, masks, lengths, scale):
    # Plain per-video loop: each subset's softmax over its own keys, weighted sum.
    out, start = [], 0
    for t in lengths:
        qi, ki = q[start:start + t], k[start:start + t]
        acc = torch.zeros_like(qi)
        for m, w in masks:
            mi = m[start:start + t]
            if mi.any():
                acc = acc + w * torch.softmax(scale * qi @ ki[mi].t(), -1) @ ki[mi]
        out.append(acc)
        start += t
    return torch.cat(out)


@pytest.mark.parametrize("waste", [1.0, 1.5, 1e9])
def test_split_attention_matches_per_video_loop(monkeypatch, waste):
    # waste 1.0: every distinct length its own group; 1e9: one padded product.
    monkeypatch.setattr(ii, "MAX_PADDING_WASTE", waste)
    torch.manual_seed(0)
    lengths = [5, 1, 9, 3, 9, 2]
    n = sum(lengths)
    q, k = torch.randn(n, 4, dtype=torch.float64), torch.randn(n, 4, dtype=torch.float64)
    m = torch.rand(n) > 0.4
    m[5] = False  # video 1: no key in the first subset, only in the second
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    masks = [(m, 0.7), (~m, 0.3)]
    out = split_attention(q, k, masks, batch, len(lengths), scale=0.5)
    torch.testing.assert_close(out, _reference(q, k, masks, lengths, 0.5))
    one = masked_cross_attention(q, k, m, batch)
    torch.testing.assert_close(one, _reference(q, k, [(m, 1.0)], lengths, 1.0))


def test_split_attention_gradients_match_single_padded_product(monkeypatch):
    torch.manual_seed(1)
    lengths = [7, 2, 30, 4]
    n = sum(lengths)
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor(lengths))
    m = torch.rand(n) > 0.5
    grads = []
    for waste in (1.0, 1e9):
        monkeypatch.setattr(ii, "MAX_PADDING_WASTE", waste)
        torch.manual_seed(2)
        q = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
        k = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
        out = split_attention(q, k, [(m, 0.9), (~m, 0.1)], batch, 4)
        (out * torch.arange(n, dtype=torch.float64).unsqueeze(-1)).sum().backward()
        grads.append((out.detach(), q.grad, k.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("waste", [1.0, 1e9])
def test_split_attention_window_matches_per_snippet_loop(monkeypatch, waste):
    # window > 0: snippet t attends to the keys of each subset within `window` of it
    monkeypatch.setattr(ii, "MAX_PADDING_WASTE", waste)
    torch.manual_seed(3)
    lengths, window = [6, 1, 11, 4], 2
    n = sum(lengths)
    q, k = torch.randn(n, 4, dtype=torch.float64), torch.randn(n, 4, dtype=torch.float64)
    m = torch.rand(n) > 0.5
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    masks = [(m, 0.8), (~m, 0.2)]
    out = split_attention(q, k, masks, batch, len(lengths), scale=0.5, window=window)
    ref, start = torch.zeros_like(q), 0
    for t_len in lengths:
        for t in range(t_len):
            for mask, w in masks:
                keys = [start + s for s in range(t_len)
                        if abs(s - t) <= window and bool(mask[start + s])]
                if keys:
                    kk = k[keys]
                    ref[start + t] += w * torch.softmax(0.5 * kk @ q[start + t], 0) @ kk
        start += t_len
    torch.testing.assert_close(out, ref)
    # a window as long as the videos is the whole-video attention
    torch.testing.assert_close(split_attention(q, k, masks, batch, 4, 0.5, window=11),
                               split_attention(q, k, masks, batch, 4, 0.5))
