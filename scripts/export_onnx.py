"""Export a trained network to ONNX (dynamic batch/height/width) and check it against PyTorch with onnxruntime."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import UsageError, run_main  # noqa: E402
from mcir.infer import add_network_args, network_from_args  # noqa: E402

PROG = "export_onnx"
DEFAULT_CHECK_SIZES = ((64, 64), (45, 71))
EPILOG = """examples:
  python scripts/export_onnx.py -opt options/test/SR/test_SwinIR_light_SRx4.yml --weights swinir_light_x4.pth \\
      --output swinir_light_x4.onnx
  python scripts/export_onnx.py --arch EDSR --scale 4 --set num_feat=64 --set num_block=16 \\
      --weights edsr_x4.pth --output edsr_x4.onnx --check-size 120 80 --check-size 97 131

The graph takes float32 (N, C, H, W) RGB in [0, 1] named 'input' and returns 'output' (N, C, H*scale, W*scale),
not clamped. Needs: pip install 'mcir[export]' (onnx, onnxscript, onnxruntime)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser.
    """
    from mcir.cli.onnx_export import DEFAULT_OPSET

    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Export an mcir network to ONNX with dynamic batch, height and width (an arch's size multiple "
        "is padded inside the graph), then run it with onnxruntime on two input sizes and report the largest "
        "absolute difference from PyTorch.",
    )
    add_network_args(p)
    p.add_argument("--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--check-size", type=int, nargs=2, action="append", metavar=("H", "W"), default=None,
                   help="input size checked with onnxruntime (repeatable; default 64 64 and 45 71)")
    p.add_argument("--atol", type=float, default=1e-3, help="largest accepted difference from PyTorch (1e-3)")
    p.add_argument("--no-check", action="store_true", help="export only (no onnxruntime needed)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def _require(modules: Sequence[str]) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"{', '.join(missing)} not installed: pip install 'mcir[export]' (onnx, onnxscript, "
                         "onnxruntime)")


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Export, then check with onnxruntime unless ``--no-check``.

    Args:
        args: Parsed command-line arguments.

    Returns:
        ``{"output": path, "opset": int, "checks": [{"size", "output", "max_abs_err"}]}``.
    """
    _require(["onnx", "onnxscript"] + ([] if args.no_check else ["onnxruntime"]))

    from mcir.cli.file_restore import network_input_channels
    from mcir.cli.onnx_export import check_onnx, export_onnx

    net, cfg = network_from_args(args)
    in_ch = network_input_channels(net, cfg.get("num_in_ch"))
    scale, multiple = int(getattr(net, "upscale", 1)), int(getattr(net, "size_multiple", 1))
    out = Path(args.output)
    info = export_onnx(net, out, in_ch, scale, multiple, args.opset, name=cfg["type"])
    print(f"exported {out} ({cfg['type']}, opset {info['opset']}; dynamic batch, height and width >= "
          f"{info['min_size']}; input 'input' N x {in_ch} x H x W in [0, 1], output 'output' x{scale})")
    checks: List[Dict[str, Any]] = []
    if not args.no_check:
        sizes = [tuple(s) for s in args.check_size] if args.check_size else list(DEFAULT_CHECK_SIZES)
        checks = check_onnx(out, net, in_ch, sizes, scale, multiple, args.atol)
        for row in checks:
            h, w = row["size"]
            print(f"onnxruntime vs PyTorch, input {h}x{w} -> output {row['output'][-2]}x{row['output'][-1]}: "
                  f"max abs error {row['max_abs_err']:.3g}")
    return {"output": str(out), "opset": info["opset"], "checks": checks}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point."""
    return run_main(run, build_parser(), argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
