"""Convert a downloaded checkpoint (official release, BasicSR, KAIR, DataParallel) into an mcir weights file."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch import nn  # noqa: E402

from mcir.cli import run_main  # noqa: E402
from mcir.errors import OptionError  # noqa: E402

EPILOG = """examples:
  python scripts/convert_checkpoint.py 002_lightweightSR_DIV2K_s64w8_SwinIR-S_x4.pth swinir_light_x4.pth \\
      --arch SwinIR --set upscale=4 --set img_size=64 --set window_size=8 --set embed_dim=60 \\
      --set depths=[6,6,6,6] --set num_heads=[6,6,6,6] --set mlp_ratio=2 --set upsampler=pixelshuffledirect
  python scripts/convert_checkpoint.py EDSR_Mx4_official.pth edsr_x4.pth \\
      -opt options/train/SR/train_EDSR_Mx4_f64b16_DIV2K.yml

The output holds {"params": state_dict}; point path.pretrain_network_g at it (param_key_g: params)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        description="Extract the network weights from a checkpoint (unwrapping params_ema / params / state_dict / "
        "model / net containers and module. prefixes), optionally check that they load strictly into a registered "
        "architecture, and write an mcir weights file {'params': ...} atomically.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="checkpoint to convert (.pth / .pt)")
    parser.add_argument("output", help="mcir weights file to write")
    parser.add_argument("--param-key", default=None,
                        help="container to take (default: the first present of params_ema, params, state_dict, "
                        "model, net, network)")
    check = parser.add_mutually_exclusive_group()
    check.add_argument("--arch", default=None, help="registered architecture to check a strict load against")
    check.add_argument("-opt", "--opt", default=None, help="option file whose network_g to check against")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="network argument for --arch / override of network_g for -opt, value parsed as YAML "
                        "(e.g. --set depths=[6,6,6,6]); repeatable")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--trusted", action="store_true",
                        help="allow full unpickling of the input (only for files you trust; default: weights only)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def network_config(arch: Optional[str], opt_path: Optional[str], overrides: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The ``network_g``-style section to build, from ``--arch`` or ``-opt`` plus ``--set`` overrides.

    Args:
        arch: Registered architecture name, or None.
        opt_path: Option file, or None.
        overrides: ``key=value`` strings (keys inside the network section).

    Returns:
        ``{"type": ..., **kwargs}``, or None when neither ``arch`` nor ``opt_path`` is given.
    """
    from mcir.options import apply_overrides
    from mcir.options.inherit import load_with_bases

    if arch is None and opt_path is None:
        if overrides:
            raise OptionError("--set needs --arch or -opt", key="--set")
        return None
    if arch is not None:
        cfg: Dict[str, Any] = {"type": arch}
    else:
        opt = load_with_bases(Path(opt_path), opt_path)  # with its _base_ files
        cfg = opt.get("network_g")
        if not isinstance(cfg, dict):
            raise OptionError("has no network_g section", file=opt_path, key="network_g")
        cfg = dict(cfg)
    return apply_overrides(cfg, overrides, file=opt_path or "--set")


def build_checked_network(cfg: Dict[str, Any], opt_path: Optional[str]) -> nn.Module:
    """Build the network of ``cfg`` (CPU, default initialisation).

    Args:
        cfg: Section with ``type`` and arguments.
        opt_path: Option file the section came from, for error messages.

    Returns:
        The network.
    """
    from mcir.components import load_components
    from mcir.options import build_checked
    from mcir.registry import ARCH_REGISTRY

    load_components()
    return build_checked(ARCH_REGISTRY, cfg, key="network_g" if opt_path else "", file=opt_path)


def run(args: argparse.Namespace) -> None:
    """Convert the checkpoint the command line names; a strict-load failure lists its keys on stderr first.

    Args:
        args: Parsed command line.
    """
    from mcir.cli.convert import KeyMismatchError, convert_checkpoint

    try:
        cfg = network_config(args.arch, args.opt, args.set)
        net = build_checked_network(cfg, args.opt) if cfg is not None else None
        print(f"convert_checkpoint: {args.input} -> {args.output}", flush=True)
        convert_checkpoint(args.input, args.output, args.param_key, net, args.trusted, args.force,
                           report=lambda line: print(f"  {line}", flush=True))
    except KeyMismatchError as exc:
        if not args.debug:
            print("\n".join(exc.details), file=sys.stderr)
        raise


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 1 on a bad file, option or failed check.
    """
    return run_main(run, build_parser(), argv)

if __name__ == "__main__":
    sys.exit(main())
