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


def _dead_pid():
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_stale_temp_files_are_removed_on_next_write(tmp_path, monkeypatch):
    import time

    from tagraph.io import atomic

    monkeypatch.setattr(atomic, "_CLEANED", set())
    dead = tmp_path / f".a.json.{_dead_pid()}.0123abcd.tmp"  # writer killed mid-write
    old = tmp_path / f".b.pt.{os.getppid()}.89abcdef.tmp"  # live pid, but an hour old
    legacy = tmp_path / ".c.pt.k3j_x9q2.tmp"  # tempfile.mkstemp name of older versions
    cache = tmp_path / f".data.pt.{_dead_pid()}.tmp"  # the dataset cache's pattern
    fresh = tmp_path / f".d.pt.{os.getppid()}.fedcba98.tmp"  # a live writer's
    mine = [tmp_path / ".notes.tmp", tmp_path / "x.tmp", tmp_path / ".e.pt.abc.tmp"]
    for p in [dead, old, legacy, cache, fresh, *mine]:
        p.write_text("partial")
    hour_ago = time.time() - 3600
    for p in (old, legacy):
        os.utime(p, (hour_ago, hour_ago))
    atomic_write(tmp_path / "z.txt", "x")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([fresh.name, *(p.name for p in mine), "z.txt"])
    # once per folder and process: a later leftover waits for the next process
    dead.write_text("partial")
    atomic_write(tmp_path / "z.txt", "y")
    assert dead.exists()
    assert atomic.remove_stale_temp_files(tmp_path) == [dead]


def test_temp_name_pattern_is_recognised(tmp_path):
    from tagraph.io.atomic import _TMP_RE, temp_path

    name = temp_path(tmp_path / "best.pt").name
    m = _TMP_RE.match(name)
    assert m is not None and int(m.group("pid")) == os.getpid() and m.group("name") == "best.pt"


def test_os_error_names_the_destination_not_the_temp_file(tmp_path):
    import errno

    path = tmp_path / "results.json"
    with pytest.raises(OSError) as err, atomic_open(path) as f:
        f.write("x")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert _leftovers(tmp_path) == [] and not path.exists()


def test_read_only_folder_names_the_destination(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions
            pytest.skip("running as root")
        with pytest.raises(PermissionError) as err:
            atomic_write(ro / "a.txt", "x")
        assert err.value.filename == str(ro / "a.txt")
    finally:
        os.chmod(ro, 0o700)
