import os

import pytest
import torch

from tagraph.io import atomic_open, atomic_save_torch, atomic_write


def _leftovers(folder):
    return [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_atomic_write_text_and_bytes(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


def test_atomic_write_rejects_other_types(tmp_path):
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "a", 3)


def test_atomic_open_error_keeps_old_content(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("partial")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_open_binary_and_mode(tmp_path):
    path = tmp_path / "b.bin"
    with atomic_open(path, "wb") as f:
        f.write(b"abc")
    assert path.read_bytes() == b"abc"
    with pytest.raises(ValueError):
        with atomic_open(path, "a"):
            pass


def test_atomic_open_keeps_permissions(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("x")
    os.chmod(path, 0o640)
    atomic_write(path, "y")
    assert path.stat().st_mode & 0o777 == 0o640


def test_atomic_open_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nope" / "a.txt", "x")


def test_atomic_save_torch_roundtrip(tmp_path):
    path = tmp_path / "ckpt.pt"
    obj = {"w": torch.arange(5.0), "step": 3}
    atomic_save_torch(obj, path)
    back = torch.load(path)
    assert back["step"] == 3 and torch.equal(back["w"], obj["w"])
    assert _leftovers(tmp_path) == []
