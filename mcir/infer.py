"""Restore images with a trained network: ``python mcir/infer.py --input PATH --output DIR -opt X.yml``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

if __package__ in (None, ""):  # run as a script: import mcir from this checkout, not mcir/ siblings
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from mcir.cli import OneLineParser, non_negative_int, positive_int, run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the inference command."""
    p = OneLineParser(
        description="Restore an image or a folder of images with an mcir network; writes PNGs "
        "(16-bit for 16-bit input, gray for gray input)."
    )
    p.add_argument("--input", required=True, help="image file or folder (png, jpg, bmp, tif, webp)")
    p.add_argument("--output", required=True, help="output folder")
    add_network_args(p)
    p.add_argument("--tile", type=positive_int, default=None, help="tile side in input pixels (bounds memory)")
    p.add_argument("--tile_overlap", type=non_negative_int, default=32, help="overlap between tiles (default 32)")
    p.add_argument("--self_ensemble", action="store_true", help="average the 8 flips/rotations (x8 slower)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs")
    p.add_argument("--recursive", action="store_true", help="also restore images in sub-folders (mirrored)")
    p.add_argument("--suffix", default="", help="appended to output file names, e.g. _x4")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def add_network_args(p: argparse.ArgumentParser) -> None:
    """The arguments :func:`network_from_args` reads: ``-opt`` or ``--arch``, ``--weights``, ``--param_key``,
    ``--scale``, ``--set`` (also used by ``scripts/export_onnx.py``)."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-opt", "--opt", help="option file: network_g and path.pretrain_network_g")
    src.add_argument("--arch", help="registered architecture name, e.g. EDSR")
    p.add_argument("--weights", help="weights file (overrides path.pretrain_network_g with -opt)")
    p.add_argument("--param_key", default=None,
                   help="weights container key (default: path.param_key_g with -opt, else params_ema, then params)")
    p.add_argument("--scale", type=positive_int, default=None, help="upscale factor of --arch (its 'upscale' argument)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with -opt: an option override (network_g.num_feat=64); with --arch: an arch argument "
                   "(num_feat=64); value parsed as YAML; repeatable")


#: Argument names used in error messages.
CLI_NAMES = {"arch": "--arch", "weights": "--weights", "scale": "--scale", "arch_options": "--set"}


def network_from_args(args: argparse.Namespace) -> Tuple[Any, Mapping[str, Any]]:
    """The network (weights loaded, on the CPU) and its arch section, from ``-opt`` or ``--arch`` (also used
    by ``scripts/export_onnx.py`` and ``scripts/profile_model.py``).

    Args:
        args: ``opt`` or ``arch``, ``set``, ``weights``, ``param_key``, ``scale``.

    Returns:
        ``(network, network_g section)``.
    """
    from mcir.restorer import network_from_arch, network_from_options

    if args.opt:
        net, cfg, _ = network_from_options(args.opt, args.weights, args.set, args.param_key, args.scale, CLI_NAMES)
        return net, cfg
    from mcir.options import apply_overrides

    return network_from_arch(args.arch, args.weights, args.scale, apply_overrides({}, args.set), args.param_key,
                             CLI_NAMES)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Restore every input of ``args`` and write the results (:meth:`mcir.Restorer.restore_folder`).

    Args:
        args: Parsed command-line arguments.

    Returns:
        ``{"written": [paths], "skipped": [paths]}``.
    """
    from tqdm import tqdm

    from mcir.cli.file_restore import find_inputs
    from mcir.restorer import Restorer, resolve_device

    find_inputs(Path(args.input), Path(args.output), args.recursive, args.suffix)  # bad paths fail before loading
    device = resolve_device(args.device, "--device")
    net, cfg = network_from_args(args)
    restorer = Restorer.from_network(net, tile=args.tile, tile_overlap=args.tile_overlap,
                                     self_ensemble=args.self_ensemble, device=device, in_channels=cfg.get("num_in_ch"))
    done = restorer.restore_folder(args.input, args.output, args.recursive, args.suffix, progress=True,
                                   on_warning=lambda msg: tqdm.write(f"warning: {msg}", file=sys.stderr))
    skipped = done["skipped"]
    print(f"restored {len(done['written'])} image(s) into {args.output}"
          + (f", skipped {len(skipped)}" if skipped else ""))
    return done


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (``mcir-infer``)."""
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
