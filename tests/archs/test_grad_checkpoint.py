"""Tests of train.grad_checkpoint: same gradients, less saved activation memory, eval untouched, copies, errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from mcir.archs import build_network, grad_checkpoint
from mcir.archs.grad_checkpoint import declared_blocks, disable_grad_checkpoint, enable_grad_checkpoint, is_checkpointed
from mcir.core.averaged_model import AveragedModel
from mcir.method.eq1_negatives import NegativeBank
from mcir.errors import OptionError

REPO = Path(__file__).resolve().parents[2]
# Tiny HAT with shifted windows and drop path (so the recomputation must replay the same random draws).
HAT_TINY = {"type": "HAT", "img_size": 8, "window_size": 4, "embed_dim": 8, "depths": [2, 2], "num_heads": [2, 2],
            "mlp_ratio": 2, "squeeze_factor": 2, "upsampler": "pixelshuffle", "upscale": 2, "drop_path_rate": 0.2}
CONFIGS: Dict[str, Dict[str, Any]] = {
    "HAT": HAT_TINY,
    "RCAN": {"type": "RCAN", "num_feat": 8, "num_group": 2, "num_block": 2, "squeeze_factor": 2, "upscale": 2},
    "SwinIR": {"type": "SwinIR", "img_size": 8, "window_size": 4, "embed_dim": 8, "depths": [2], "num_heads": [2],
               "mlp_ratio": 2, "upsampler": "pixelshuffledirect", "upscale": 2},
    "EDSR": {"type": "EDSR", "num_feat": 8, "num_block": 2, "upscale": 2},
    "NAFNet": {"type": "NAFNet", "width": 4, "middle_blk_num": 1, "enc_blk_nums": [1], "dec_blk_nums": [1]},
}


def _pair(cfg: Dict[str, Any]):
    torch.manual_seed(0)
    plain = build_network(cfg)
    ckpt = copy.deepcopy(plain)
    enable_grad_checkpoint(ckpt)
    return plain, ckpt


def _grads(net: torch.nn.Module, x: torch.Tensor) -> Dict[str, torch.Tensor]:
    net.train()
    net.zero_grad()
    torch.manual_seed(1)  # same drop-path draws for both networks
    net(x).square().mean().backward()
    return {k: p.grad.clone() for k, p in net.named_parameters()}


@pytest.mark.parametrize("name", ["HAT", "RCAN"])
def test_gradients_equal_with_and_without_checkpointing(name: str) -> None:
    plain, ckpt = _pair(CONFIGS[name])
    assert all(is_checkpointed(b) for b in declared_blocks(ckpt)) and not is_checkpointed(declared_blocks(plain)[0])
    x = torch.rand(2, 3, 9, 10)
    expected, got = _grads(plain, x), _grads(ckpt, x)
    assert expected.keys() == got.keys()
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_and_eval_output_unchanged(name: str) -> None:
    plain, ckpt = _pair(CONFIGS[name])
    assert declared_blocks(plain)
    a, b = plain.state_dict(), ckpt.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), ckpt.eval()(x))
    ckpt.load_state_dict(a, strict=True)


def test_checkpoint_runs_only_in_training_with_autograd(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = grad_checkpoint.checkpoint
    monkeypatch.setattr(grad_checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    _, net = _pair(HAT_TINY)
    x = torch.rand(1, 3, 8, 8)
    net.train()(x)
    assert len(calls) == len(declared_blocks(net)) == 6  # 2 groups x (2 HABs + 1 OCAB)
    calls.clear()
    with torch.no_grad():
        net(x)
    net.eval()(x)
    with torch.inference_mode():
        net.train()(x)
    assert not calls
    disable_grad_checkpoint(net)
    net.train()(x)
    assert not calls and not any(is_checkpointed(b) for b in declared_blocks(net))


def _saved_bytes(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one training forward."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net.train()(x)
    return total


def test_checkpointing_keeps_fewer_activations() -> None:
    plain, ckpt = _pair({**HAT_TINY, "drop_path_rate": 0.0})
    x = torch.rand(2, 3, 16, 16)
    assert _saved_bytes(ckpt, x) < 0.5 * _saved_bytes(plain, x)


def test_copies_follow_their_own_weights_and_negatives_run_plain() -> None:
    _, net = _pair(CONFIGS["RCAN"])
    twin = copy.deepcopy(net)
    for block, twin_block in zip(declared_blocks(net), declared_blocks(twin)):
        assert is_checkpointed(twin_block) and twin_block.forward.__self__ is twin_block
    ema = AveragedModel(net, decay=0.9)
    bank = NegativeBank(net, steps=(1, 2), init="target")
    x = torch.rand(2, 3, 6, 7)
    with torch.no_grad():
        expected = net.eval()(x)
    torch.testing.assert_close(ema.module(x), expected)
    negs = bank(x)  # inference mode inside
    assert negs.shape == (2, *expected.shape)
    torch.testing.assert_close(negs[1], expected)


def test_hat_use_checkpoint_argument_turns_it_on() -> None:
    net = build_network({**HAT_TINY, "use_checkpoint": True})
    assert all(is_checkpointed(b) for b in declared_blocks(net))


def test_arch_without_blocks_is_a_one_line_option_error() -> None:
    net = build_network({"type": "FFANet", "gps": 3, "blocks": 1, "dim": 16})
    with pytest.raises(OptionError) as info:
        enable_grad_checkpoint(net, file="x.yml")
    assert info.value.key == "train.grad_checkpoint" and info.value.file == "x.yml"
    assert "FFANet declares no blocks" in str(info.value) and "\n" not in str(info.value)


def test_option_builds_a_checkpointed_model_and_errors_for_other_archs() -> None:
    from mcir.build import build_training
    from mcir.options import load_options

    demo = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
    opt = load_options(str(demo), ["train.grad_checkpoint=true", "path.pretrain_network_g=null"])
    step = build_training(opt, torch.device("cpu"))
    assert all(is_checkpointed(b) for b in declared_blocks(step.model.net_g))
    assert load_options(str(demo))["train"]["grad_checkpoint"] is False
    with pytest.raises(OptionError) as info:  # the option schema refuses it before anything is built
        load_options(str(demo), ["train.grad_checkpoint=true", "path.pretrain_network_g=null",
                                 "network_g={type: FFANet, gps: 3, blocks: 1, dim: 16}", "scale=1"])
    assert info.value.key == "train.grad_checkpoint" and info.value.file == str(demo)
    assert "FFANet declares no blocks" in str(info.value)
