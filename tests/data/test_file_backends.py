"""Tests for the disk and LMDB file backends."""

import pickle

import lmdb
import pytest

from mcir.data.file_backends import DiskBackend, LMDBBackend, build_backend
from mcir.errors import DataError, OptionError


def _make_lmdb(path, items):
    env = lmdb.open(str(path), map_size=1 << 22)
    with env.begin(write=True) as txn:
        for key, value in items.items():
            txn.put(key.encode("ascii"), value)
    env.close()


def test_disk_backend_reads_bytes_and_names_missing_files(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"\x00\x01abc")
    assert DiskBackend().get(str(tmp_path / "f.bin")) == b"\x00\x01abc"
    with pytest.raises(DataError, match="nope.png"):
        DiskBackend().get(str(tmp_path / "nope.png"))


def test_lmdb_backend_opens_lazily_and_survives_pickling(tmp_path):
    _make_lmdb(tmp_path / "lq.lmdb", {"baby": b"LQ"})
    _make_lmdb(tmp_path / "gt.lmdb", {"baby": b"GT"})
    backend = LMDBBackend([str(tmp_path / "lq.lmdb"), str(tmp_path / "gt.lmdb")], ["lq", "gt"])
    assert backend._envs is None  # nothing opened in the constructor
    assert backend.get("baby", "gt") == b"GT" and backend.get("baby", "lq") == b"LQ"
    assert backend._envs is not None
    clone = pickle.loads(pickle.dumps(backend))  # what a spawned DataLoader worker receives
    assert clone._envs is None and clone.get("baby", "lq") == b"LQ"
    with pytest.raises(DataError, match=r"gt\.lmdb: no key 'bird'"):
        backend.get("bird", "gt")
    backend.close()
    assert backend.get("baby", "gt") == b"GT"  # reopens after close


def test_lmdb_backend_rejects_non_lmdb_folder(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not an LMDB"):
        LMDBBackend([str(tmp_path / "plain")], ["gt"])


def test_build_backend_types_and_errors(tmp_path):
    assert isinstance(build_backend({"type": "disk"}), DiskBackend)
    assert isinstance(build_backend(None), DiskBackend)
    _make_lmdb(tmp_path / "x.lmdb", {"k": b"v"})
    lm = build_backend({"type": "lmdb", "db_paths": [str(tmp_path / "x.lmdb")], "client_keys": ["gt"]})
    assert isinstance(lm, LMDBBackend) and lm.get("k", "gt") == b"v"
    with pytest.raises(OptionError) as err:
        build_backend({"type": "s3"})
    assert err.value.key == "io_backend.type" and "s3" in str(err.value)
    with pytest.raises(OptionError, match="db_paths"):
        build_backend({"type": "lmdb"})
    with pytest.raises(OptionError, match="unexpected key"):
        build_backend({"type": "disk", "root": "/x"})


def test_two_backends_on_one_database_share_it(tmp_path):
    _make_lmdb(tmp_path / "x.lmdb", {"k": b"v"})
    path = str(tmp_path / "x.lmdb")
    first = LMDBBackend([path], ["gt"])
    second = LMDBBackend([path, path], ["lq", "gt"])  # py-lmdb alone would refuse the second open
    assert first.get("k", "gt") == second.get("k", "lq") == second.get("k", "gt") == b"v"


def _read_in_child(backend, queue):
    queue.put(backend.get("k", "gt"))


def test_a_forked_worker_reads_a_database_its_parent_has_open(tmp_path):
    # DataLoader workers fork after the main process may have read the same LMDB (a 0-worker loader,
    # validation); py-lmdb would refuse the worker's open as "already open in this process".
    import multiprocessing

    _make_lmdb(tmp_path / "x.lmdb", {"k": b"v"})
    backend = LMDBBackend([str(tmp_path / "x.lmdb")], ["gt"])
    assert backend.get("k", "gt") == b"v"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(backend, queue))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and queue.get(timeout=5) == b"v"
    assert backend.get("k", "gt") == b"v"  # the parent's handle still works
