"""Restore images with a trained network: ``python mcir/infer.py --input PATH --output DIR -opt X.yml``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

if __package__ in (None, ""):  # run as a script: import mcir from this checkout, not mcir/ siblings
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from mcir.cli import OneLineParser, non_negative_int, positive_int, run_main  # noqa: E402
from mcir.errors import DataError, OptionError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the inference command."""
    p = OneLineParser(
        description="Restore an image or a folder of images with an mcir network; writes PNGs "
        "(16-bit for 16-bit input, gray for gray input)."
    )
    p.add_argument("--input", required=True, help="image file or folder (png, jpg, bmp, tif, webp)")
    p.add_argument("--output", required=True, help="output folder")
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
    p.add_argument("--tile", type=positive_int, default=None, help="tile side in input pixels (bounds memory)")
    p.add_argument("--tile_overlap", type=non_negative_int, default=32, help="overlap between tiles (default 32)")
    p.add_argument("--self_ensemble", action="store_true", help="average the 8 flips/rotations (x8 slower)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs")
    p.add_argument("--recursive", action="store_true", help="also restore images in sub-folders (mirrored)")
    p.add_argument("--suffix", default="", help="appended to output file names, e.g. _x4")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def _device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise OptionError("CUDA is not available; use --device cpu", key="--device")
    return torch.device(name)


def _arch_section(args: argparse.Namespace) -> Dict[str, Any]:
    """``network_g`` from ``--arch``, ``--scale`` and ``--set k=v``, validated like an option file's."""
    from mcir.components import load_components
    from mcir.options import apply_overrides
    from mcir.options.spec import Typed
    from mcir.options.validate import validate_typed
    from mcir.registry import ARCH_REGISTRY

    load_components()
    cfg: Dict[str, Any] = apply_overrides({"type": args.arch}, args.set)
    cfg["type"] = args.arch
    if args.scale is not None:
        if "upscale" in ARCH_REGISTRY.option_params(args.arch):
            if "upscale" in cfg and cfg["upscale"] != args.scale:
                raise OptionError(f"--scale {args.scale} contradicts --set upscale={cfg['upscale']}", key="--scale")
            cfg["upscale"] = args.scale
        elif args.scale != 1:
            raise OptionError(f"'{args.arch}' has no 'upscale' argument; it only works at scale 1", key="--scale")
    return validate_typed(Typed(registry=lambda: ARCH_REGISTRY), cfg, "--arch", None)


def network_from_args(args: argparse.Namespace) -> Tuple[Any, Mapping[str, Any]]:
    """The network (weights loaded, on the CPU) and its arch section, from ``-opt`` or ``--arch`` (also used
    by ``scripts/export_onnx.py`` and ``scripts/profile_model.py``).

    Args:
        args: ``opt`` or ``arch``, ``set``, ``weights``, ``param_key``, ``scale``.

    Returns:
        ``(network, network_g section)``.
    """
    from mcir.build import build_network

    if args.opt:
        from mcir.options import load_options

        # --weights / --param_key go through the options like any override: the loaded options stay as loaded.
        extra = [f"path.pretrain_network_g={json.dumps(args.weights)}"] if args.weights else []
        extra += [f"path.param_key_g={json.dumps(args.param_key)}"] if args.param_key else []
        opt = load_options(args.opt, [*args.set, *extra], is_train=False)
        if args.scale is not None and args.scale != opt["scale"]:
            raise OptionError(f"--scale {args.scale} contradicts the option file's scale {opt['scale']}", key="--scale")
        path = opt["path"]
        _require_weights(opt["network_g"], path["pretrain_network_g"], args.opt, "path.pretrain_network_g")
        return build_network(opt["network_g"], path, args.opt), opt["network_g"]
    cfg = _arch_section(args)
    _require_weights(cfg, args.weights, None, "--weights")
    weights = {"pretrain_network_g": args.weights, "param_key_g": args.param_key or "params_ema"}
    return build_network(cfg, weights if args.weights else None, "--arch"), cfg


def _require_weights(cfg: Mapping[str, Any], weights: Optional[str], file: Optional[str], key: str) -> None:
    from mcir.registry import ARCH_REGISTRY

    trainable = getattr(ARCH_REGISTRY.get(cfg["type"]), "requires_training", True)
    if trainable and not weights:
        raise OptionError(f"'{cfg['type']}' needs trained weights (random weights restore nothing)", file, key)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Restore every input of ``args`` and write the results.

    Args:
        args: Parsed command-line arguments.

    Returns:
        ``{"written": [paths], "skipped": [paths]}``.
    """
    import torch
    from tqdm import tqdm

    from mcir.cli.file_restore import find_inputs, has_alpha, network_input_channels, restore_array
    from mcir.core.inference import check_tile_args, infer
    from mcir.utils.img_util import imread, imwrite

    input_path, output_dir = Path(args.input), Path(args.output)
    single = input_path.is_file()
    jobs, skipped = find_inputs(input_path, output_dir, args.recursive, args.suffix)
    device = _device(args.device)
    net, cfg = network_from_args(args)
    net.to(device)
    if args.tile is not None:
        check_tile_args(args.tile, args.tile_overlap, int(getattr(net, "size_multiple", 1)))
    in_ch = network_input_channels(net, cfg.get("num_in_ch"))
    for path in skipped:
        print(f"warning: skipped {path}: not an image file (extensions: png, jpg, jpeg, bmp, tif, tiff, webp)",
              file=sys.stderr)
    if not jobs:
        hint = "" if args.recursive else " (use --recursive for sub-folders)"
        raise DataError(f"{input_path}: no images found{hint}")

    def restore(x: torch.Tensor) -> torch.Tensor:
        return infer(net, x, tile=args.tile, tile_overlap=args.tile_overlap, self_ensemble=args.self_ensemble,
                     device=device)

    written: List[str] = []
    bar = tqdm(jobs, unit="img", disable=None, dynamic_ncols=True)
    for job in bar:
        bar.set_postfix_str(job.src.name, refresh=False)
        try:
            img = imread(job.src)
        except DataError as exc:
            if single:
                raise DataError(f"{job.src}: not an image (cannot decode it)") from exc
            tqdm.write(f"warning: skipped {job.src}: cannot decode it as an image", file=sys.stderr)
            skipped.append(job.src)
            continue
        if has_alpha(job.src):
            tqdm.write(f"warning: {job.src}: alpha channel dropped", file=sys.stderr)
        imwrite(restore_array(restore, img, in_ch, device), job.dst)
        written.append(str(job.dst))
    if not written:
        raise DataError(f"{input_path}: none of the {len(jobs)} image files could be decoded")
    print(f"restored {len(written)} image(s) into {output_dir}" + (f", skipped {len(skipped)}" if skipped else ""))
    return {"written": written, "skipped": [str(p) for p in skipped]}


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (``mcir-infer``)."""
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
