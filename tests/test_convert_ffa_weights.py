"""Tests for scripts/convert_ffa_weights.py on a checkpoint saved the way FFA-Net's net/main.py saves it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mcir.archs.ffanet_arch import FFANet
from mcir.core.checkpoint_io import load_network_weights

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def convert():
    spec = importlib.util.spec_from_file_location("convert_ffa_weights", REPO / "scripts" / "convert_ffa_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def official_like(tmp_path) -> tuple:
    torch.manual_seed(0)
    net = FFANet(gps=3, blocks=1)
    path = tmp_path / "its_train_ffa_3_1.pk"
    # DataParallel prefix and the NumPy scalars of the official training loop
    torch.save({"step": 5000, "max_psnr": np.mean([30.0, 31.0]), "max_ssim": np.mean([0.9]),
                "psnrs": [np.mean([30.0])], "ssims": [np.mean([0.9])], "losses": [0.1],
                "model": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return net, path


def test_converts_an_official_style_checkpoint(convert, official_like, tmp_path, capsys):
    net, src = official_like
    dst = tmp_path / "out" / "FFA_ITS.pth"
    assert convert.main(["--input", str(src), "--output", str(dst), "--trusted", "--blocks", "1"]) == 0
    assert "tensors ->" in capsys.readouterr().out
    fresh = FFANet(gps=3, blocks=1)
    load_network_weights(fresh, str(dst), "params", strict=True)  # weights-only loading works now
    for (k, a), b in zip(net.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_refuses_full_unpickling_without_trusted_and_checks_the_network(convert, official_like, tmp_path, capsys):
    _, src = official_like
    dst = tmp_path / "x.pth"
    assert convert.main(["--input", str(src), "--output", str(dst), "--blocks", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trusted" in err and not dst.exists()
    assert convert.main(["--input", str(src), "--output", str(dst), "--trusted"]) == 1  # 19 blocks expected
    assert "do not fit FFANet(gps=3, blocks=19)" in capsys.readouterr().err and not dst.exists()
    with pytest.raises(SystemExit) as exc:
        convert.main(["--help"])
    assert exc.value.code == 0 and "--trusted" in capsys.readouterr().out
