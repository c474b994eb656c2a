"""Tests of checkpoint conversion (mcir.cli.convert) and its command line, scripts/convert_checkpoint.py."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

from mcir.archs import build_network
from mcir.cli.convert import (
    KeyMismatchError,
    compare_keys,
    convert_checkpoint,
    extract_state_dict,
    load_strict,
)
from mcir.errors import CheckpointError

REPO = Path(__file__).resolve().parents[2]
EDSR = {"type": "EDSR", "num_feat": 4, "num_block": 1, "upscale": 2}


def _script():
    spec = importlib.util.spec_from_file_location("convert_checkpoint", REPO / "scripts" / "convert_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _script()


@pytest.fixture()
def state():
    torch.manual_seed(0)
    return build_network(EDSR).state_dict()


@pytest.mark.parametrize("wrap, first_action", [
    (lambda sd: sd, None),
    (lambda sd: {"params": sd}, "unwrapped 'params'"),
    (lambda sd: {"params_ema": sd, "params": {}}, "unwrapped 'params_ema' (also in the file: params;"),
    (lambda sd: {"state_dict": sd, "epoch": 3}, "unwrapped 'state_dict' (ignored: epoch)"),
    (lambda sd: {"model": sd, "optimizer": {"state": {}}}, "unwrapped 'model' (ignored: optimizer)"),
    (lambda sd: {"net": sd}, "unwrapped 'net'"),
    (lambda sd: {"state_dict": {"model": sd}}, "unwrapped 'state_dict'"),
    (lambda sd: {f"module.{k}": v for k, v in sd.items()}, "stripped 'module.' from 12 of 12 keys"),
    (lambda sd: {"params": {f"module._orig_mod.{k}": v for k, v in sd.items()}}, "unwrapped 'params'"),
], ids=["plain", "params", "params_ema", "state_dict", "model", "net", "nested", "module", "module+compile"])
def test_every_container_roundtrips_strict(wrap, first_action, state, tmp_path):
    torch.save(wrap(state), tmp_path / "in.pth")
    torch.manual_seed(1)
    net = build_network(EDSR)
    lines = []
    result = convert_checkpoint(str(tmp_path / "in.pth"), str(tmp_path / "out.pth"), net=net, report=lines.append)
    assert lines == result.actions
    if first_action is None:
        assert result.actions[0].startswith("checked")
    else:
        assert result.actions[0].startswith(first_action)
    assert result.actions[-1].startswith(f"wrote {tmp_path / 'out.pth'}")
    saved = torch.load(tmp_path / "out.pth", weights_only=True)
    assert list(saved) == ["params"]
    for k, v in state.items():
        assert torch.equal(saved["params"][k], v), k
        assert torch.equal(net.state_dict()[k], v), k
    assert not list(tmp_path.glob(".*.tmp"))


def test_nested_prefixes_are_all_reported(state):
    obj = {"params": {f"module._orig_mod.{k}": v for k, v in state.items()}}
    assert extract_state_dict(obj).actions == [
        "unwrapped 'params'",
        "stripped 'module.' from 12 of 12 keys",
        "stripped '_orig_mod.' from 12 of 12 keys",
    ]


def test_param_key_selects_and_non_tensors_are_dropped(state):
    other = {k: torch.zeros_like(v) for k, v in state.items()}
    obj = {"params": state, "params_ema": other}
    assert extract_state_dict(obj).state["conv_first.weight"].abs().sum() == 0  # EMA preferred
    assert torch.equal(extract_state_dict(obj, "params").state["conv_first.weight"], state["conv_first.weight"])
    with pytest.raises(CheckpointError, match="f.pth: no 'net' in the file"):
        extract_state_dict(obj, "net", "f.pth")
    got = extract_state_dict({**state, "step": 3, "note": "x"})
    assert set(got.state) == set(state) and got.actions == ["dropped 2 non-tensor entries: step, note"]


@pytest.mark.parametrize("obj, message", [
    ([1, 2], "expected a dict of tensors, got list"),
    ({"optimizer": {"lr": 1.0}, "epoch": 3}, "no weights found"),
    ({"params": {"step": 1}}, "no weights found under 'params'"),
    ({"module.w": torch.zeros(1), "w": torch.ones(1)}, "stripping 'module.' would merge keys"),
])
def test_bad_checkpoints_are_explained(obj, message):
    with pytest.raises(CheckpointError, match=re.escape(message)):
        extract_state_dict(obj, path="f.pth")


def test_wrong_arch_lists_keys(state):
    net = build_network({**EDSR, "upscale": 4})
    report = compare_keys(net, state)
    assert report.missing == ["upsample.2.weight", "upsample.2.bias"]
    assert not report.unexpected and not report.mismatched
    with pytest.raises(KeyMismatchError) as info:
        load_strict(net, state, "f.pth")
    assert str(info.value) == "f.pth: does not load strictly into EDSR: 2 missing, 0 unexpected, 0 mis-shaped keys"
    assert info.value.details == ["  missing: upsample.2.weight", "  missing: upsample.2.bias"]


def test_swinir_mask_shape_mismatch_gets_a_hint():
    cfg = {"type": "SwinIR", "window_size": 4, "embed_dim": 8, "depths": [2], "num_heads": [2], "upscale": 2,
           "upsampler": "pixelshuffledirect"}
    state = build_network({**cfg, "img_size": 8}).state_dict()
    report = compare_keys(build_network({**cfg, "img_size": 16}), state)
    assert [k for k, _, _ in report.mismatched] == ["layers.0.residual_group.blocks.1.attn_mask"]
    assert report.lines()[-1].startswith("  hint: attn_mask shapes follow img_size")


def test_output_is_not_overwritten_without_force(state, tmp_path):
    torch.save(state, tmp_path / "in.pth")
    (tmp_path / "out.pth").write_bytes(b"keep")
    with pytest.raises(CheckpointError, match="already exists"):
        convert_checkpoint(str(tmp_path / "in.pth"), str(tmp_path / "out.pth"))
    assert (tmp_path / "out.pth").read_bytes() == b"keep"
    convert_checkpoint(str(tmp_path / "in.pth"), str(tmp_path / "out.pth"), overwrite=True)
    assert set(torch.load(tmp_path / "out.pth", weights_only=True)["params"]) == set(state)
    with pytest.raises(CheckpointError, match="same file"):
        convert_checkpoint(str(tmp_path / "in.pth"), str(tmp_path / "in.pth"), overwrite=True)


def test_full_pickles_need_trusted(state, tmp_path):
    np = pytest.importorskip("numpy")
    # As the official FFA-Net script saves: weights under 'model' next to NumPy scalars.
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "max_psnr": np.float64(30.5)}, tmp_path / "a.pk")
    with pytest.raises(CheckpointError, match="a.pk: holds pickled objects besides tensors; pass --trusted"):
        convert_checkpoint(str(tmp_path / "a.pk"), str(tmp_path / "out.pth"))
    assert not (tmp_path / "out.pth").exists()
    result = convert_checkpoint(str(tmp_path / "a.pk"), str(tmp_path / "out.pth"), trusted=True)
    assert result.actions[:2] == ["unwrapped 'model' (ignored: max_psnr)", "stripped 'module.' from 12 of 12 keys"]
    assert set(torch.load(tmp_path / "out.pth", weights_only=True)["params"]) == set(state)


def test_cli_converts_and_checks_with_arch_and_set(script, state, tmp_path, capsys):
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "in.pth")
    args = [str(tmp_path / "in.pth"), str(tmp_path / "out.pth"), "--arch", "EDSR",
            "--set", "num_feat=4", "--set", "num_block=1", "--set", "upscale=2"]
    assert script.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "  unwrapped 'state_dict'",
        "  stripped 'module.' from 12 of 12 keys",
        "  checked: loads strictly into EDSR (12 tensors)",
        f"  wrote {tmp_path / 'out.pth'} ({{'params': 12 tensors}})",
    ]


def test_cli_checks_against_an_option_file(script, state, tmp_path, capsys):
    opt = tmp_path / "x.yml"
    opt.write_text("name: x\nnetwork_g:\n  type: EDSR\n  num_feat: 4\n  num_block: 1\n  upscale: 4\n")
    torch.save({"params": state}, tmp_path / "in.pth")
    assert script.main([str(tmp_path / "in.pth"), str(tmp_path / "o.pth"), "-opt", str(opt)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "  missing: upsample.2.weight",
        "  missing: upsample.2.bias",
        f"error: {tmp_path / 'in.pth'}: does not load strictly into EDSR: 2 missing, 0 unexpected, 0 mis-shaped keys",
    ]
    assert not (tmp_path / "o.pth").exists()
    assert script.main([str(tmp_path / "in.pth"), str(tmp_path / "o.pth"), "-opt", str(opt),
                        "--set", "upscale=2"]) == 0


@pytest.mark.parametrize("make, args, message", [
    (None, [], r"error: .*missing\.pth: file not found"),
    (lambda p: p.write_bytes(b"not a checkpoint"), [], r"error: .*in\.pth: cannot load checkpoint"),
    (lambda p: torch.save({"params": {"w": torch.ones(1)}}, p), ["--arch", "EDSRR"],
     r"error: type: unknown arch 'EDSRR'; did you mean EDSR\?"),
    (lambda p: torch.save({"params": {"w": torch.ones(1)}}, p), ["--set", "x=1"], r"error: --set: --set needs"),
    (lambda p: torch.save({"params": {"w": torch.ones(1)}}, p), ["-opt", "nope.yml"],
     r"error: nope\.yml: option file not found"),
])
def test_cli_bad_input_is_one_line(script, tmp_path, capsys, make, args, message):
    src = tmp_path / ("in.pth" if make else "missing.pth")
    if make:
        make(src)
    assert script.main([str(src), str(tmp_path / "o.pth"), *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.fullmatch(message + r".*\n", err), err
    assert not (tmp_path / "o.pth").exists()


def test_cli_help(script, capsys):
    with pytest.raises(SystemExit) as info:
        script.main(["--help"])
    assert info.value.code == 0
    assert "--param-key" in capsys.readouterr().out
