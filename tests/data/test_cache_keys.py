"""Dataset caches cannot go stale (issue #15): a file rewritten with its old size and
mtime still rebuilds; a failed or killed build leaves nothing behind; a full disk names
the cache file."""

from __future__ import annotations

import errno
import os
import subprocess

import numpy as np
import pytest

from tagraph.data import TALDataset
from tagraph.data import dataset as dataset_mod
from tagraph.data.features import file_signature
from tests.data.helpers import make_tiny_dataset, tiny_tal_dataset


def _ds(tmp_path, **kw):
    return tiny_tal_dataset(tmp_path, **kw)


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_dataset(tmp_path / "raw")


def _rewrite_keeping_size_and_mtime(path, write):
    st = os.stat(path)
    write()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # what `touch -r` does
    new = os.stat(path)
    assert (new.st_size, new.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_file_signature_sees_through_a_restored_mtime(tmp_path):
    f = tmp_path / "a.npy"
    np.save(f, np.zeros((3, 2), np.float32))
    before = file_signature(f)
    _rewrite_keeping_size_and_mtime(f, lambda: np.save(f, np.ones((3, 2), np.float32)))
    after = file_signature(f)
    assert before[:3] == after[:3]  # the old key (path, size, mtime) was blind to it
    assert before != after
    g = tmp_path / "b.npy"  # a file moved over it (same size, mtime restored): new inode
    np.save(g, np.full((3, 2), 2, np.float32))
    os.utime(g, ns=(os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns))
    old = file_signature(f)
    os.replace(g, f)
    assert file_signature(f)[1:3] == old[1:3] and file_signature(f) != old


def test_feature_rewritten_with_same_size_and_mtime_rebuilds(tmp_path, tiny):
    a = _ds(tmp_path)
    f = tmp_path / "raw" / "features" / "vid_a.npy"
    x = np.load(f)
    new = np.full_like(x, 7.0)
    _rewrite_keeping_size_and_mtime(f, lambda: np.save(f, new))
    b = _ds(tmp_path)
    assert b.processed_dir != a.processed_dir
    np.testing.assert_array_equal(b[0].x.numpy(), new)
    assert _ds(tmp_path).processed_dir == b.processed_dir  # and then served from the cache


def test_annotation_label_edited_with_same_size_and_mtime_rebuilds(tmp_path, tiny):
    a = _ds(tmp_path)
    assert a[0].gt_labels.tolist() == [1, 0]  # vid_a: run, jump
    ann = tmp_path / "raw" / "annotations.json"
    text = ann.read_text()
    i, j = text.index('"run"'), text.index('"jump"')
    assert i < j  # vid_a's two labels, swapped: same bytes, same size
    swapped = text[:i] + '"jump"' + text[i + 5:j] + '"run"' + text[j + 6:]
    assert len(swapped) == len(text)
    _rewrite_keeping_size_and_mtime(ann, lambda: ann.write_text(swapped))
    b = _ds(tmp_path)
    assert b.processed_dir != a.processed_dir
    assert b[0].gt_labels.tolist() == [0, 1]


def test_failed_build_leaves_no_cache_folder(tmp_path, tiny):
    f = tmp_path / "raw" / "features" / "vid_b.npy"
    x = np.load(f)
    x[3, 1] = np.nan
    np.save(f, x)
    for in_memory in (True, False):
        with pytest.raises(ValueError, match="vid_b.*NaN"):
            _ds(tmp_path, in_memory=in_memory)
        assert list((tmp_path / "cache" / "processed").iterdir()) == []


def test_disk_full_names_the_cache_file_and_leaves_nothing(tmp_path, tiny, monkeypatch,
                                                          capsys):
    from tagraph.commands._common import run_guarded

    def full(self, data_list, path):
        with open(path, "wb") as f:  # a partly written temporary file
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(TALDataset, "save", full)
    with pytest.raises(OSError) as err:
        _ds(tmp_path)
    assert err.value.errno == errno.ENOSPC
    assert err.value.filename.endswith(os.path.join("", "data.pt"))
    assert list((tmp_path / "cache" / "processed").iterdir()) == []
    assert run_guarded("train", lambda: _ds(tmp_path)) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith("tagraph train: error: cannot write '")
    assert "data.pt': No space left on device" in line and ".tmp" not in line


def test_leftovers_of_a_killed_build_are_removed(tmp_path, tiny):
    a = _ds(tmp_path)
    folder = a.processed_dir
    p = subprocess.Popen(["true"])
    p.wait()  # a writer that is gone
    leftover = os.path.join(folder, f".data.pt.{p.pid}.0123abcd.tmp")
    old_style = os.path.join(folder, f".data.pt.{p.pid}.tmp")
    for q in (leftover, old_style):
        with open(q, "wb") as f:
            f.write(b"partial")
    _ds(tmp_path, force_reload=True)
    assert not os.path.exists(leftover) and not os.path.exists(old_style)
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_atomic_helper_names_destination(tmp_path):
    dest = tmp_path / "data.pt"

    def write(tmp):
        raise OSError(errno.EDQUOT, "Disk quota exceeded", tmp)

    with pytest.raises(OSError) as err:
        dataset_mod._atomic(write, dest)
    assert err.value.filename == str(dest) and err.value.errno == errno.EDQUOT
