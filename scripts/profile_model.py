"""Profile restoration networks: params, FLOPs/MACs, peak memory and latency at the paper's sizes, and +SPN cost."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import UsageError, run_main  # noqa: E402
from mcir.errors import CheckpointError, DataError, MCIRError, OptionError, RegistryError  # noqa: E402

PROG = "profile_model"
EPILOG = """examples:
  python scripts/profile_model.py -opt options/train/SR/train_SwinIR_light_SRx4_DIV2K.yml \\
      -opt options/train/SR/train_EDSR_Mx4_f64b16_DIV2K.yml --device cuda --out results/profile
  python scripts/profile_model.py --arch EDSR --scale 4 --set num_feat=64 --set num_block=16 --size 720 1280
  python scripts/profile_model.py -opt options/train/SR/demo_EDSR_tiny_x4_T91_SPN.yml   # adds the +SPN step

Sizes are OUTPUT sizes (default 1280x720 for super-resolution, i.e. a 320x180 input at x4; 256x256 otherwise).
Each measurement (a network's inference, a plain or a +SPN training step) runs in a fresh Python process, so that
memory freed by an earlier one cannot hide its peak."""
_ERRORS = {cls.__name__: cls for cls in (OptionError, RegistryError, DataError, CheckpointError)}


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Params, FLOPs/MACs (torch FlopCounterMode), peak memory and median latency per image; for "
        "MCIRModel option files also the extra FLOPs and memory of one +SPN training step over the plain step.",
    )
    p.add_argument("-opt", "--opt", action="append", default=[], help="option file (repeatable)")
    p.add_argument("--arch", action="append", default=[], help="registered arch name (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override applied to every model: an option (network_g.num_feat=64) with -opt, an arch "
                   "argument (num_feat=64) with --arch; repeatable")
    p.add_argument("--scale", type=int, default=None, help="upscale of every --arch model")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="output size (default: 720 1280 for SR, 256 256 otherwise)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the models run")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per model (median reported; default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing (default 2)")
    p.add_argument("--no-train-step", action="store_true", help="skip the +SPN training-step profile")
    p.add_argument("--in-process", action="store_true",
                   help="measure every model in this process (faster; peak memory only approximate)")
    p.add_argument("--out", default=None, help="folder for profile.md and profile.json")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def _specs(args: argparse.Namespace) -> List[Dict[str, Any]]:
    if not args.opt and not args.arch:
        raise UsageError("name at least one model with -opt FILE or --arch NAME")
    if args.set and args.opt and args.arch:
        raise UsageError("--set means option overrides with -opt and arch arguments with --arch; profile option "
                         "files and --arch models in separate calls to use it")
    if args.scale is not None and not args.arch:
        raise UsageError("--scale applies to --arch models only (option files have their own scale)")
    for path in args.opt:
        if not Path(path).is_file():
            raise OptionError("option file not found", file=path)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    common = {"size": args.size, "device": device, "repeats": args.repeats, "warmup": args.warmup,
              "train_step": not args.no_train_step, "set": list(args.set)}
    return [{**common, "opt": o} for o in args.opt] + [{**common, "arch": a, "scale": args.scale} for a in args.arch]


def _run_isolated(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Run one spec in a fresh interpreter and return its result (re-raising its user error)."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "mcir.cli.profiler", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        out = None
    if not isinstance(out, dict):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise MCIRError(f"profiling {spec.get('opt') or spec.get('arch')} failed (exit {proc.returncode}): {tail}")
    if "error" in out:
        raise _ERRORS.get(out.get("kind"), MCIRError)(out["error"])
    return out


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """Profile every requested model, print the tables and write them with ``--out``.

    Args:
        args: Parsed command-line arguments.

    Returns:
        One result dict per model.
    """
    from mcir.cli.profile_table import render, write_profile

    from mcir.cli.profiler import profile_model, run_part

    runner = run_part if args.in_process else _run_isolated
    results = [profile_model(spec, runner) for spec in _specs(args)]
    print(render(results, isolated=not args.in_process))
    if args.out:
        md, js = write_profile(results, Path(args.out), isolated=not args.in_process)
        print(f"written {md} and {js}")
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point."""
    return run_main(run, build_parser(), argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
