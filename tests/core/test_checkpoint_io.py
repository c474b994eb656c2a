"""Tests of checkpoint files: atomic writes, digests, safe loading, unwrapping, newest good state, best weights."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from torch import nn

from mcir.engine.checkpointer import Checkpointer
from mcir.core.checkpoint_io import (
    UnsafeCheckpointError,
    atomic_save,
    digest_path,
    load_network_weights,
    torch_load,
    unwrap_state_dict,
    verify_digest,
)
from mcir.errors import CheckpointError


def test_atomic_save_leaves_no_temp_on_failure(tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    target = tmp_path / "x.pth"
    atomic_save({"a": torch.ones(1)}, str(target))
    with pytest.raises(RuntimeError):
        atomic_save({"a": Boom()}, str(target))
    assert os.listdir(tmp_path) == ["x.pth"]
    assert torch.equal(torch_load(str(target))["a"], torch.ones(1))


def test_unwrap_containers_and_module_prefix():
    sd = {"module.w": torch.zeros(1)}
    assert list(unwrap_state_dict({"params_ema": sd, "params": {}}, "params_ema")) == ["w"]
    assert list(unwrap_state_dict({"state_dict": sd}, "params")) == ["w"]
    assert list(unwrap_state_dict(sd, "params")) == ["w"]
    with pytest.raises(CheckpointError, match="no weights found"):
        unwrap_state_dict({"foo": 1, "bar": "x"}, "params", "f.pth")


def test_load_weights_strict_and_shape_errors(tmp_path):
    net = nn.Linear(2, 3)
    atomic_save({"params": nn.Linear(2, 3).state_dict()}, str(tmp_path / "ok.pth"))
    load_network_weights(net, str(tmp_path / "ok.pth"))
    atomic_save({"params": nn.Linear(2, 4).state_dict()}, str(tmp_path / "shape.pth"))
    with pytest.raises(CheckpointError, match="shape mismatch for 'weight'"):
        load_network_weights(net, str(tmp_path / "shape.pth"))
    atomic_save({"params": {"weight": torch.zeros(3, 2)}}, str(tmp_path / "missing.pth"))
    with pytest.raises(CheckpointError, match="missing"):
        load_network_weights(net, str(tmp_path / "missing.pth"))
    load_network_weights(net, str(tmp_path / "missing.pth"), strict=False)


def test_corrupt_and_unsafe_files_are_refused(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pth: cannot load"):
        torch_load(str(bad))
    with pytest.raises(CheckpointError, match="file not found"):
        torch_load(str(tmp_path / "none.pth"))
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"obj": nn.Linear(1, 1)}, unsafe)  # a pickled module needs unsafe unpickling
    with pytest.raises(CheckpointError):
        torch_load(str(unsafe))


def test_checkpointer_keeps_last_states(tmp_path):
    ck = Checkpointer(str(tmp_path / "models"), str(tmp_path / "states"), keep_last=2)
    for it in (10, 20, 30):
        ck.save(it, {"params": {}}, {"iteration": it})
    assert [p.name for p in ck.list_states()] == ["20.state", "30.state"]
    assert ck.list_states()[-1].name == "30.state"
    assert sorted(f for f in os.listdir(tmp_path / "models") if f.endswith(".pth")) == [
        "net_g_10.pth", "net_g_20.pth", "net_g_30.pth"
    ]
    assert sorted(os.listdir(tmp_path / "states")) == ["20.state", "20.state.sha256", "30.state", "30.state.sha256"]


def test_sidecar_digest_detects_damage(tmp_path):
    path = tmp_path / "w.pth"
    atomic_save({"params": {"w": torch.arange(1000.0)}}, str(path), digest=True)
    sidecar = digest_path(str(path))
    assert sidecar.read_text().endswith("  w.pth\n")  # `sha256sum -c` format
    assert verify_digest(str(path)) is True
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensor data: torch.load alone would not notice
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="w.pth: sha256 mismatch"):
        torch_load(str(path))
    sidecar.unlink()  # without a sidecar only the structural checks remain
    assert verify_digest(str(path)) is None


def test_atomic_write_fsyncs_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real_fsync(fd)))
    atomic_save({"a": torch.ones(1)}, str(tmp_path / "x.pth"))
    assert synced == [False, True]  # the file's data, then the folder entry of the rename


def _states(tmp_path, iters=(2, 4, 6)) -> Checkpointer:
    ck = Checkpointer(str(tmp_path / "models"), str(tmp_path / "states"), keep_last=5)
    for it in iters:
        ck.save(it, {"params": {"w": torch.full((3,), float(it))}},
                {"iteration": it, "epoch": 0, "batch_in_epoch": it, "model": {}, "rng": {}})
    return ck


def test_newest_good_state_skips_a_truncated_latest(tmp_path):
    ck = _states(tmp_path)
    latest = tmp_path / "states" / "6.state"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated after it was written
    warnings = []
    path, state = ck.newest_good_state(warn=warnings.append)
    assert path.name == "4.state" and state["iteration"] == 4
    assert len(warnings) == 1 and "6.state" in warnings[0] and "sha256 mismatch" in warnings[0]
    assert (tmp_path / "states" / "6.state.corrupt").is_file()  # set aside, kept for inspection
    assert [p.name for p in ck.list_states()] == ["2.state", "4.state"]


def test_newest_good_state_checks_structure_without_a_sidecar(tmp_path):
    ck = _states(tmp_path)
    digest_path(str(tmp_path / "states" / "6.state")).unlink()
    atomic_save({"iteration": 6}, str(tmp_path / "states" / "6.state"))  # loads, but is no training state
    warnings = []
    path, _ = ck.newest_good_state(warn=warnings.append)
    assert path.name == "4.state" and "not an mcir training state (missing: epoch" in warnings[0]


def test_no_good_state_and_partial_writes(tmp_path):
    ck = _states(tmp_path, iters=(2,))
    (tmp_path / "states" / "2.state").write_bytes(b"")
    leftover = tmp_path / "states" / ".3.state.abcd.tmp"
    leftover.write_bytes(b"half")
    assert ck.remove_partial_writes() == [leftover] and not leftover.exists()
    assert ck.newest_good_state() is None


def test_unsafe_file_is_refused_with_the_trust_option_named(tmp_path):
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"params": {"w": torch.ones(1)}, "obj": nn.Linear(1, 1)}, unsafe)
    with pytest.raises(UnsafeCheckpointError) as info:
        torch_load(str(unsafe))
    msg = str(info.value)
    assert "\n" not in msg and "torch.nn.modules.linear.Linear" in msg and "arbitrary code" in msg
    assert "path.trust_checkpoint: true" in msg and "--trust_checkpoint" in msg
    assert isinstance(torch_load(str(unsafe), trusted=True)["obj"], nn.Linear)
    net = nn.Linear(1, 1)
    with pytest.raises(UnsafeCheckpointError):
        load_network_weights(net, str(unsafe), strict=False)
    load_network_weights(nn.Module(), str(unsafe), strict=False, trusted=True)


def test_save_best_keeps_one_file_per_set(tmp_path):
    ck = Checkpointer(str(tmp_path / "models"), str(tmp_path / "states"))
    ck.save_best("Set5", {"metric": "psnr", "value": 30.0, "iter": 10}, {"params": {"w": torch.ones(1)}})
    ck.save_best("Set 14", {"metric": "psnr", "value": 28.0, "iter": 10}, {"params": {"w": torch.ones(1)}})
    ck.save_best("Set5", {"metric": "psnr", "value": 31.0, "iter": 20}, {"params": {"w": torch.zeros(1)}})
    table = json.loads((tmp_path / "models" / "best.json").read_text())
    assert table["Set5"] == {"metric": "psnr", "value": 31.0, "iter": 20, "file": "net_g_best_Set5.pth"}
    assert table["Set 14"]["file"] == "net_g_best_Set_14.pth"
    assert torch.equal(torch_load(str(tmp_path / "models" / "net_g_best_Set5.pth"))["params"]["w"], torch.zeros(1))
