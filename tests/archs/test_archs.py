"""Registry-generated tests run on every registered architecture, plus baseline and build checks."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch

from mcir.archs import ARCH_REGISTRY, build_network
from mcir.options import build_checked
from mcir.cli.convert import convert_checkpoint
from mcir.errors import OptionError

# Small per-arch settings so every forward/backward runs in milliseconds; unlisted archs use defaults.
SMALL_CONFIGS: Dict[str, Dict[str, Any]] = {
    "EDSR": {"num_feat": 8, "num_block": 2},
    "FFANet": {"gps": 3, "blocks": 1, "dim": 64},
    "NAFNet": {"width": 4, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]},
    "NAFNetLocal": {"width": 4, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]},
    "SwinIR": {"img_size": 8, "window_size": 4, "embed_dim": 8, "depths": [2], "num_heads": [2], "mlp_ratio": 2,
               "upsampler": "pixelshuffledirect", "upscale": 2, "drop_path_rate": 0.0},
    "DehazeFormer": {"embed_dims": [8, 16, 16, 16, 8], "depths": [2, 2, 2, 1, 1], "num_heads": [2] * 3 + [1] * 2, "window_size": 4},
    "IDT": {"img_size": 128, "embed_dim": 4, "mlp_ratio": 1.0, "drop_path_rate": 0.0},  # at 64 a spatial layer has 1 token
    "HAT": {"img_size": 8, "window_size": 4, "embed_dim": 8, "depths": [2], "num_heads": [2], "mlp_ratio": 2,
            "squeeze_factor": 2, "upsampler": "pixelshuffle", "upscale": 2, "drop_path_rate": 0.0},
    "RCAN": {"num_feat": 8, "num_group": 2, "num_block": 1, "squeeze_factor": 2},
    "Restormer": {"dim": 4, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 1, 1, 1]},
}
# Odd, not a multiple of any window (8, 7, 4) or downsampling factor: archs pad and crop internally.
HEIGHT, WIDTH = 17, 19

SET5 = Path(__file__).resolve().parents[2] / "datasets" / "Set5"  # bundled copy of the official Set5 files


def _default(name: str, arg: str, fallback: Any) -> Any:
    """Value of ``arg`` in the small config, else the constructor default, else ``fallback``."""
    if arg in SMALL_CONFIGS.get(name, {}):
        return SMALL_CONFIGS[name][arg]
    param = ARCH_REGISTRY.option_params(name).get(arg)
    if param is None or param.default is inspect.Parameter.empty:
        return fallback
    return param.default


@pytest.mark.parametrize("name", ARCH_REGISTRY.list())
def test_every_arch_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    net = build_network({"type": name, **SMALL_CONFIGS.get(name, {})})
    assert isinstance(net.upscale, int) and net.upscale >= 1
    assert isinstance(net.size_multiple, int) and net.size_multiple >= 1
    assert isinstance(net.requires_training, bool)
    params = list(net.parameters())
    if net.requires_training:
        assert params, "a network that requires training needs parameters"
    with torch.no_grad():
        # Parameters initialised to exactly zero (NAFNet's branch scales beta/gamma) block the gradient of
        # their whole branch at step 0; give them values so the check below sees every parameter used.
        for p in params:
            if not p.any():
                p.uniform_(0.05, 0.15)

    in_ch, out_ch = _default(name, "num_in_ch", 3), _default(name, "num_out_ch", 3)
    h, w = (-(-n // net.size_multiple) * net.size_multiple for n in (HEIGHT, WIDTH))
    x = torch.rand(2, in_ch, h, w)
    out = net(x)
    assert out.shape == (2, out_ch, h * net.upscale, w * net.upscale)
    assert torch.isfinite(out).all()
    if params:
        target = torch.rand_like(out)
        torch.nn.functional.mse_loss(out, target).backward()
        for pname, p in net.named_parameters():
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname
            assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ARCH_REGISTRY.list())
def test_every_arch_state_dict_roundtrips_through_convert(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    src_net = build_network({"type": name, **SMALL_CONFIGS.get(name, {})})
    state = src_net.state_dict()
    if not state:
        pytest.skip(f"{name} has no weights")
    # What a DataParallel training script would have saved.
    wrapped = {"params_ema": {f"module.{k}": v for k, v in state.items()}, "iter": 7}
    torch.save(wrapped, tmp_path / "official.pth")
    torch.manual_seed(1)
    dst_net = build_network({"type": name, **SMALL_CONFIGS.get(name, {})})
    result = convert_checkpoint(str(tmp_path / "official.pth"), str(tmp_path / "mcir.pth"), net=dst_net)
    assert result.actions[0].startswith("unwrapped 'params_ema'")
    saved = torch.load(tmp_path / "mcir.pth", weights_only=True)
    assert list(saved) == ["params"] and list(saved["params"]) == list(state)
    for k, v in dst_net.state_dict().items():  # loaded strictly into dst_net by the conversion
        assert torch.equal(v, state[k]), k


@pytest.mark.parametrize("name", ARCH_REGISTRY.list())
def test_every_arch_has_explicit_kwargs(name: str) -> None:
    sig = inspect.signature(ARCH_REGISTRY.get(name))
    assert not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    assert set(ARCH_REGISTRY.option_params(name)) == set(sig.parameters)


def test_baselines_need_no_training_but_edsr_does() -> None:
    assert ARCH_REGISTRY.get("Bicubic").requires_training is False
    assert ARCH_REGISTRY.get("Identity").requires_training is False
    assert ARCH_REGISTRY.get("EDSR").requires_training is True


def test_identity_returns_input_copy() -> None:
    net = build_network({"type": "Identity"})
    x = torch.rand(1, 3, 5, 7)
    out = net(x)
    assert torch.equal(out, x)
    out.zero_()
    assert x.abs().sum() > 0


def test_a_checked_arch_section_names_bad_kwarg_and_closest() -> None:
    with pytest.raises(OptionError) as info:
        build_checked(ARCH_REGISTRY, {"type": "EDSR", "num_feats": 32}, "network_g", file="opt.yml")
    assert info.value.key == "network_g.num_feats"
    assert info.value.file == "opt.yml"
    assert "did you mean 'num_feat'" in str(info.value)
    with pytest.raises(OptionError) as info:  # the constructor's own check, named under the section's key
        build_network({"type": "Identity", "upscale": 2}, key="network_d")
    assert info.value.key == "network_d.upscale"
    with pytest.raises(OptionError) as info:
        build_network({"type": "Bicubic", "num_out_ch": 1})
    assert info.value.key == "network_g.num_out_ch"
    with pytest.raises(OptionError) as info:
        build_checked(ARCH_REGISTRY, {"type": "Bicubc"}, "network_g")
    assert info.value.key == "network_g.type" and "did you mean Bicubic" in str(info.value)
    with pytest.raises(OptionError):
        build_checked(ARCH_REGISTRY, {"num_feat": 8}, "network_g")


def test_bicubic_matches_numpy_imresize_on_set5() -> None:
    cv2 = pytest.importorskip("cv2")
    lr_dir = SET5 / "LR_bicubic" / "X4"
    lr_paths = sorted(lr_dir.glob("*x4.png"))
    if not lr_paths:
        pytest.skip(f"benchmark data not found: {lr_dir}")
    from mcir.data.imresize import imresize

    net = build_network({"type": "Bicubic", "upscale": 4})
    total = within_one = 0
    for path in lr_paths:
        lr = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1].copy()  # BGR -> RGB uint8
        expected = np.asarray(imresize(lr, 4))
        if expected.dtype != np.uint8:
            expected = np.clip(np.round(expected), 0, 255).astype(np.uint8)
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            out = net(x)
        got = (out[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
        assert got.shape == expected.shape == (lr.shape[0] * 4, lr.shape[1] * 4, 3), path.name
        diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
        # The uint8 reference rounds and clips between the two passes; the float path does not,
        # so a few saturated edge pixels differ by more than 1.
        assert (diff <= 1).mean() >= 0.999, path.name
        total += diff.size
        within_one += int((diff <= 1).sum())
    assert within_one / total >= 0.999
