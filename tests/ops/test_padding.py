import torch

from tagraph.ops import length_groups
from tagraph.ops.padding import group_membership


def test_length_groups_cover_each_video_once_and_bound_waste():
    g = torch.Generator().manual_seed(3)
    lengths = torch.randint(1, 3000, (64,), generator=g)
    groups = length_groups(lengths, max_waste=1.5, max_elements=2 ** 24)
    assert torch.equal(torch.sort(torch.cat(groups)).values, torch.arange(64))
    for grp in groups:
        t = lengths[grp]
        padded = grp.numel() * int(t.max()) ** 2
        if grp.numel() > 1:  # a single video always gets its own group
            assert padded <= 1.5 * int((t ** 2).sum())
            assert padded <= 2 ** 24
    # Equal lengths: one group; an empty batch: none.
    assert len(length_groups(torch.full((16,), 400))) == 1
    assert length_groups(torch.zeros(0, dtype=torch.long)) == []


def test_group_membership_inverts_the_groups():
    groups = [torch.tensor([0, 3]), torch.tensor([1]), torch.tensor([2, 4, 5])]
    part, slot = group_membership(groups, 7)
    assert part.tolist() == [0, 1, 2, 0, 2, 2, -1]  # item 6 in no group
    assert slot.tolist() == [0, 0, 0, 1, 1, 2, -1]
    for k, g in enumerate(groups):
        assert torch.equal(g[slot[g]], g) and bool((part[g] == k).all())

