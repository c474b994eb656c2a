"""scripts/export_onnx.py on EDSR: weights loaded, graph written and checked at two sizes, errors one line."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'mcir[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'mcir[export]')")

from mcir.archs.edsr_arch import EDSR  # noqa: E402

ARCH = ["--arch", "EDSR", "--scale", "2", "--set", "num_feat=8", "--set", "num_block=1"]


def test_edsr_export_and_check(tmp_path, load_script, capsys):
    weights = tmp_path / "edsr.pth"
    torch.manual_seed(3)
    torch.save({"params": EDSR(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2).state_dict()}, weights)
    out = tmp_path / "edsr.onnx"
    argv = ARCH + ["--weights", str(weights), "--output", str(out), "--check-size", "20", "28", "--check-size",
                   "17", "33", "--atol", "1e-5"]
    assert load_script("export_onnx").main(argv) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "opset 18" in text
    assert "input 20x28 -> output 40x56: max abs error" in text and "input 17x33 -> output 34x66" in text


def test_missing_weights_is_one_line(tmp_path, load_script, capsys):
    assert load_script("export_onnx").main(ARCH + ["--output", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--weights" in err[0] and not (tmp_path / "x.onnx").exists()
