"""Shared command-line plumbing: common arguments, device choice, and one-line errors for user mistakes."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Callable, List, NoReturn, Optional, Sequence, Tuple, Type

from mcir.errors import MCIRError


class UsageError(MCIRError):
    """A bad command line or file-system state for a script (exit status 2)."""

    exit_code = 2


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``error: --tile: expected an integer > 0, got -3`` (exit 2)."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        """Print ``message`` as one line and exit with status 2."""
        message = message[len("argument "):] if message.startswith("argument ") else message
        message = re.sub(r"invalid choice: (.*) \(choose from (.*)\)$", r"expected one of \2, got \1", message)
        if ":" in message:
            name, rest = message.split(":", 1)
            message = f"{name.split('/')[-1]}:{rest}"
        self.exit(2, f"error: {message}\n")


def _typed(convert: Callable[[str], Any], what: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            shown = text if re.fullmatch(r"[-+]?[0-9.eE]+", text) else repr(text)
            raise argparse.ArgumentTypeError(f"expected {what}, got {shown}")
        return value

    parse.__name__ = what
    return parse


#: ``type=`` of integer arguments: ``positive_int`` (> 0) and ``non_negative_int`` (>= 0).
positive_int = _typed(int, "an integer > 0", lambda v: v > 0)
non_negative_int = _typed(int, "an integer >= 0", lambda v: v >= 0)


def base_parser(description: str, launchers: Sequence[str] = ("none",)) -> argparse.ArgumentParser:
    """Arguments shared by train.py and test.py.

    Args:
        description: The command's help text.
        launchers: Accepted ``--launcher`` values (train.py adds ``pytorch`` and ``slurm``).

    Returns:
        The parser.
    """
    parser = OneLineParser(description=description)
    parser.add_argument("-opt", "--opt", required=True, help="path to the YAML option file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option, e.g. --set train.total_iter=100 (value parsed as YAML); repeatable",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument(
        "--strict_options",
        action="store_true",
        help="refuse option files of BasicSR, the published MCIR code, NAFNet or Restormer instead of translating "
        "them (mcir-convert-options writes the translation to a file)",
    )
    parser.add_argument(
        "--trust_checkpoint",
        action="store_true",
        help="load checkpoints/weights with full unpickling (can run code from the file: trusted files only); "
        "same as --set path.trust_checkpoint=true",
    )
    parser.add_argument(
        "--launcher",
        default="none",
        choices=list(launchers),
        help="job launcher: none (one process)"
        + (", pytorch (torchrun), slurm (srun, one task per GPU)" if len(launchers) > 1 else ""),
    )
    return parser


def trust_overrides(args: argparse.Namespace) -> List[str]:
    """``--set`` overrides implied by ``--trust_checkpoint``."""
    return ["path.trust_checkpoint=true"] if getattr(args, "trust_checkpoint", False) else []


def input_images(folder: Path, recursive: bool = False) -> List[Path]:
    """Image files of a script's input folder, sorted.

    Args:
        folder: The folder.
        recursive: Include sub-folders (links followed, hidden files skipped).

    Returns:
        At least one path.
    """
    from mcir.data.meta_info import is_image_file
    from mcir.data.pairing import list_images

    if recursive:
        paths = [folder / rel for rel in list_images(str(folder))]
    else:
        paths = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p.name))
    if not paths:
        raise UsageError(f"no images (png, jpg, jpeg, bmp, tif, tiff) in {folder}")
    return paths


def run_main(
    body: Callable[[argparse.Namespace], Any],
    parser: argparse.ArgumentParser,
    argv: Optional[Sequence[str]] = None,
    prog: str = "",
    errors: Tuple[Type[BaseException], ...] = (MCIRError,),
) -> int:
    """Parse ``argv``, run ``body``, and turn user errors into one line on stderr with exit code 1.

    Args:
        body: The command's work; an int it returns is the exit code (anything else means 0).
        parser: Its argument parser.
        argv: Arguments (default: ``sys.argv[1:]``).
        prog: Name the error line starts with (``prog: error: ...``); empty for plain ``error: ...``.
        errors: Exception types reported as one line (``--debug``, where the parser has it, re-raises them).

    Returns:
        The process exit code: the error's ``exit_code`` if it has one (:class:`UsageError`: 2), else 1.
    """
    args = parser.parse_args(argv)  # a bad argument: one line, SystemExit(2) (OneLineParser)
    try:
        code = body(args)
    except errors as exc:
        if getattr(args, "debug", False):
            raise
        print(f"{prog}: error: {exc}" if prog else f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))  # e.g. 143 after SIGTERM, so schedulers requeue the job
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) and not isinstance(code, bool) else 0
