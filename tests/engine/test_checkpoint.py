"""Tests of checkpoint files: atomic writes, safe loading, container unwrapping and key checks."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from mcir.engine.checkpoint import Checkpointer, atomic_save, load_network_weights, torch_load, unwrap_state_dict
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
    assert ck.latest_state().name == "30.state"
    assert sorted(f for f in os.listdir(tmp_path / "models") if f.endswith(".pth")) == [
        "net_g_10.pth", "net_g_20.pth", "net_g_30.pth"
    ]
    assert sorted(os.listdir(tmp_path / "states")) == ["20.state", "20.state.sha256", "30.state", "30.state.sha256"]
