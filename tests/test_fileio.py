"""theory.fileio: atomic writes of files and folders, the output-folder check, the folder walk, file SHA-256."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from theory import fileio
from theory.fileio import file_sha256, make_temp_dir, output_dir_problem, replace_directory, walk_tree, write_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _open_mode(path) -> int:
    """The mode a plain ``open(path, "w")`` gives a new file under the current umask."""
    with open(path, "w"):
        pass
    return _mode(path)


@pytest.mark.parametrize("data", ["héllo\n", b"\x00\xffbytes", bytearray(b"ba")], ids=["text", "bytes", "bytearray"])
def test_write_atomic_writes_text_and_bytes_with_open_mode(tmp_path, data):
    target = tmp_path / "f"
    write_atomic(target, data)
    expected = data.encode() if isinstance(data, str) else bytes(data)
    assert target.read_bytes() == expected
    assert _mode(target) == _open_mode(tmp_path / "plain")
    assert sorted(os.listdir(tmp_path)) == ["f", "plain"]


def test_write_atomic_mode_follows_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "f", b"x")
        assert _mode(tmp_path / "f") == 0o600
    finally:
        os.umask(old)
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "g", "x")
        assert _mode(tmp_path / "g") == 0o644
    finally:
        os.umask(old)


@pytest.mark.parametrize("data", ["new text", b"new bytes"], ids=["text", "bytes"])
def test_write_atomic_failed_rename_leaves_old_file_and_no_temp(tmp_path, monkeypatch, data):
    target = tmp_path / "f"
    target.write_text("old")

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, data)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f"]


def test_write_atomic_refuses_what_is_neither_text_nor_bytes(tmp_path):
    with pytest.raises(TypeError, match="int"):
        write_atomic(tmp_path / "f", 123)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_make_temp_dir_is_a_hidden_sibling_and_creates_the_parent(tmp_path):
    target = tmp_path / "deep" / "out"
    tmp = make_temp_dir(target)
    assert tmp.is_dir() and tmp.parent == target.parent and tmp.name.startswith(".out.")
    assert not target.exists()


def test_replace_directory_swaps_by_renames(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    tmp = make_temp_dir(target)
    (tmp / "new.txt").write_text("new")

    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((os.fspath(src), os.fspath(dst)))
        # between the two renames the old folder is aside and `target` absent: never a mixture
        assert not (os.path.exists(dst) and os.path.isdir(dst) and os.listdir(dst))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", spy)
    replace_directory(tmp, target)
    assert sorted(os.listdir(target)) == ["new.txt"]
    assert len(renames) == 2 and renames[1] == (os.fspath(tmp), os.fspath(target))
    assert os.listdir(tmp_path) == ["out"]  # the old folder and the temporary one are gone


def test_replace_directory_into_a_new_name(tmp_path):
    tmp = make_temp_dir(tmp_path / "out")
    (tmp / "a").write_text("a")
    replace_directory(tmp, tmp_path / "out")
    assert os.listdir(tmp_path) == ["out"] and (tmp_path / "out" / "a").read_text() == "a"


def test_output_dir_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    assert output_dir_problem(tmp_path / "new" / "out") is None
    assert output_dir_problem(tmp_path / "file") == "exists and is not a folder"
    assert output_dir_problem(tmp_path / "file" / "out").startswith("cannot be created")
    assert output_dir_problem("") == "must name a folder to create or replace"
    assert output_dir_problem("..") == "must name a folder to create or replace"
    assert output_dir_problem(tmp_path).startswith("is the home folder or holds the working directory")
    assert output_dir_problem(tmp_path, replace=False) is None  # written into, not replaced
    assert output_dir_problem("a\0b").startswith("is unusable")


def test_walk_tree_visits_every_folder_in_name_order_without_following_links(tmp_path):
    (tmp_path / "b" / "d").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("x")
    (tmp_path / "b" / "d" / "y").write_text("y")
    (tmp_path / "z").write_text("z")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    walked = [(prefix, [e.name for e in entries]) for prefix, entries in walk_tree(tmp_path)]
    assert walked == [("", ["a", "b", "loop", "z"]), ("a/", ["x"]), ("b/", ["d"]), ("b/d/", ["y"])]


def test_walk_tree_raises_on_a_folder_it_cannot_list(tmp_path):
    with pytest.raises(OSError):
        list(walk_tree(tmp_path / "missing"))


def test_file_sha256_equals_hashlib_on_a_file_of_several_chunks(tmp_path):
    data = os.urandom(3 << 20) + b"tail"  # three full 1 MiB chunks and a short one
    path = tmp_path / "big"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_old_home_reexports_the_same_functions():
    from theory import certificate

    assert certificate.write_atomic is write_atomic
    assert certificate.replace_directory is replace_directory
    assert certificate.output_dir_problem is output_dir_problem
