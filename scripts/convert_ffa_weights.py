"""Turn an official FFA-Net checkpoint (``its_train_ffa_3_19.pk``) into a weights-only file mcir loads.

The official ``net/main.py`` pickles NumPy scalars (best PSNR/SSIM, histories) next to the weights, so
``torch.load(weights_only=True)`` refuses the file. This script unpickles it fully (only with ``--trusted``),
keeps the ``'model'`` weights without the ``module.`` prefix, checks that they load into ``FFANet`` with
``strict=True`` and writes ``{'params': weights}`` atomically.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.archs.ffanet_arch import FFANet
from mcir.cli import run_main
from mcir.core.checkpoint_io import atomic_save, unwrap_state_dict
from mcir.errors import CheckpointError


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="official checkpoint, e.g. trained_models/its_train_ffa_3_19.pk")
    parser.add_argument("--output", required=True, help="weights file to write (e.g. FFA_ITS.pth)")
    parser.add_argument("--trusted", action="store_true",
                        help="allow full unpickling of --input (it can run code: only for files you trust)")
    parser.add_argument("--gps", type=int, default=3, help="groups of the checkpoint's network (default 3)")
    parser.add_argument("--blocks", type=int, default=19, help="blocks per group (default 19)")
    return parser


def convert(src: str, dst: str, trusted: bool, gps: int = 3, blocks: int = 19) -> int:
    """Convert one checkpoint.

    Args:
        src: Official checkpoint.
        dst: Output weights file (``{'params': state_dict}``).
        trusted: Allow full unpickling when the weights-only load fails.
        gps: Groups of the network the weights must fit.
        blocks: Blocks per group.

    Returns:
        Number of tensors written.

    Raises:
        CheckpointError: Unreadable file, or weights that do not fit ``FFANet(gps, blocks)`` exactly.
    """
    if not Path(src).is_file():
        raise CheckpointError(f"{src}: file not found")
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for non-weights-only pickles
        if not trusted:
            raise CheckpointError(f"{src}: not a weights-only file; pass --trusted to unpickle it fully") from exc
        try:
            obj = torch.load(src, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001
            raise CheckpointError(f"{src}: cannot load checkpoint ({type(exc2).__name__}: {exc2})") from exc2
    state = unwrap_state_dict(obj, "model", src)
    try:
        FFANet(gps=gps, blocks=blocks).load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{src}: weights do not fit FFANet(gps={gps}, blocks={blocks}): {first}") from exc
    atomic_save({"params": state}, dst)
    return len(state)


def run(args: argparse.Namespace) -> None:
    """Convert the checkpoint the command line names.

    Args:
        args: Parsed command line.
    """
    n = convert(args.input, args.output, args.trusted, args.gps, args.blocks)
    print(f"convert_ffa_weights: {n} tensors -> {args.output}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 1 on an error.
    """
    return run_main(run, build_parser(), argv, prog="convert_ffa_weights")


if __name__ == "__main__":
    sys.exit(main())
