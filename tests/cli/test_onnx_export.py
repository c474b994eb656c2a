"""ONNX export: EDSR, NAFNet and SwinIR-light (tiny) run in onnxruntime at two sizes like PyTorch; in-graph padding;
unexportable ops are named in one line. Skipped without onnxruntime / onnxscript."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'mcir[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'mcir[export]')")

from mcir.archs.nafnet_arch import NAFNet  # noqa: E402
from mcir.archs.swinir_arch import SwinIR  # noqa: E402
from mcir.cli.onnx_export import PaddedForward, check_onnx, export_onnx  # noqa: E402
from mcir.errors import OptionError  # noqa: E402

# One size that is a multiple of the windows and one that is not (SwinIR's shift mask is rebuilt for each).
SIZES = [(24, 32), (19, 29)]


class Aligned(nn.Module):
    """A network that only accepts multiples of 4 (pixel-unshuffle), like archs with size_multiple > 1."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.PixelUnshuffle(4), nn.Conv2d(48, 48, 3, padding=1), nn.PixelShuffle(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DataDependentShift(nn.Module):
    """Rolls by an amount read from the data: no static graph exists."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, shifts=int(x.mean() * 10), dims=-1)


@pytest.mark.parametrize(
    "net, scale",
    [
        (NAFNet(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1]), 1),
        (SwinIR(upscale=2, img_size=8, window_size=4, embed_dim=8, depths=[2], num_heads=[2], mlp_ratio=2,
                upsampler="pixelshuffledirect"), 2),
    ],
    ids=["NAFNet", "SwinIR-light"],
)
def test_dynamic_sizes_match_pytorch(tmp_path, net, scale):
    path = tmp_path / "net.onnx"
    export_onnx(net, path, 3, scale)
    rows = check_onnx(path, net, 3, SIZES, scale, atol=1e-4)
    assert [r["output"][-2:] for r in rows] == [[h * scale, w * scale] for h, w in SIZES]
    assert all(r["max_abs_err"] < 1e-4 for r in rows)


def test_size_multiple_is_padded_inside_the_graph(tmp_path):
    net = Aligned()
    path = tmp_path / "aligned.onnx"
    export_onnx(net, path, 3, 1, multiple=4)
    rows = check_onnx(path, net, 3, [(17, 23), (16, 20)], 1, multiple=4, atol=1e-5)
    assert [r["output"] for r in rows] == [[1, 3, 17, 23], [1, 3, 16, 20]]
    # The wrapper pads like inference: reflect at the bottom/right, output cropped back.
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.equal(PaddedForward(net, 1, 4)(x), net(nn.functional.pad(x, (0, 1, 0, 3), mode="reflect"))[
            ..., :9, :11])


def test_unexportable_op_is_named_in_one_line(tmp_path):
    with pytest.raises(OptionError) as err:
        export_onnx(DataDependentShift(), tmp_path / "x.onnx", 3, name="DataDependentShift")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("network_g.type: DataDependentShift cannot be exported to ONNX")
    assert "int(x.mean() * 10)" in msg
