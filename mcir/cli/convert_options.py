"""``mcir-convert-options IN.yml OUT.yml``: write an option file of BasicSR, the published MCIR code, NAFNet or
Restormer as an mcir option file, listing every change and keeping the comments."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from mcir.cli import UsageError, run_main
from mcir.errors import OptionError
from mcir.options.foreign import MODEL_ALIASES, ORIGIN_REPOS, Change, Translation, mclir_keys, translate


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="mcir-convert-options",
        description="Translate an option file of BasicSR 1.4, the published MCIR code (Aitical/MCLIR), NAFNet or "
        "Restormer into an mcir option file; prints every change and every dropped key with the reason, keeps the "
        "comments, and checks the result with mcir's option loader.",
    )
    parser.add_argument("input", help="the foreign option file")
    parser.add_argument("output", help="the mcir option file to write")
    parser.add_argument(
        "--from_model_type", default=None, metavar="NAME",
        help=f"translate as if the file's model_type were NAME (one of: {', '.join(MODEL_ALIASES)}); for a file "
        "whose model_type was already changed by hand",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def in_place_renames(changes: Sequence[Change]) -> Dict[str, str]:
    """Dotted original key -> new key name, for the moves that stay under the same (possibly renamed) parent.

    Args:
        changes: The translation's changes, in order.

    Returns:
        The renames.
    """
    renames: Dict[str, str] = {}

    def resolve(path: str) -> str:
        parts = path.split(".") if path else []
        return ".".join(renames.get(".".join(parts[: i + 1]), p) for i, p in enumerate(parts))

    for c in changes:
        if c.action == "move" and c.new_key and "," not in c.new_key:
            old_parent = c.key.rsplit(".", 1)[0] if "." in c.key else ""
            new_parent = c.new_key.rsplit(".", 1)[0] if "." in c.new_key else ""
            if new_parent == resolve(old_parent):
                renames[c.key] = c.new_key.rsplit(".", 1)[-1]
    return renames


def header(source: Path, text: str, result: Translation) -> List[str]:
    """Comment lines naming the source file (path, sha256) and listing what was translated."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if not result.changes:
        what = ["# Nothing was translated: it is already an mcir option file."]
    else:
        what = [f"# Translated from {result.origin} ({ORIGIN_REPOS[result.origin]}), model_type {result.model_type}; "
                f"{len(result.changes)} changes:"]
        what += [f"#   - {c.line()}" for c in result.changes]
    return ["# Converted by mcir-convert-options from", f"#   {source.resolve()}", f"#   sha256 {digest}", *what, ""]


def render(text: str, opt: Dict, result: Translation) -> str:
    """The converted file's text: header, then the original lines edited (comments kept where the key stays).

    Args:
        text: The original file's text.
        opt: Its parsed tree.
        result: The translation.

    Returns:
        The body (without the header); a plain dump when the edited text would not read back as the translation.
    """
    import yaml

    from mcir.options import parse_yaml
    from mcir.options.foreign.yaml_edit import duplicate_key, rewrite_yaml, same

    notes = {c.key: c for c in result.changes if c.action in ("drop", "move")}

    def note(key: str) -> str:
        c = notes.get(key)
        if c is None:
            return f"[mcir] removed {key}"
        return f"[mcir] dropped {key}: {c.reason}" if c.action == "drop" else f"[mcir] moved {key} -> {c.new_key}"

    try:
        body = rewrite_yaml(text, opt, result.options, in_place_renames(result.changes), note)
        if same(parse_yaml(body), result.options) and duplicate_key(body) is None:
            return body
    except (ValueError, yaml.YAMLError, OptionError):
        pass
    return "# (the original comments could not be kept)\n" + yaml.safe_dump(result.options, sort_keys=False)


def convert(
    src: str, dst: str, from_model_type: Optional[str] = None, force: bool = False, emit: Callable[[str], None] = print
) -> int:
    """Translate ``src`` into ``dst`` and check ``dst`` with mcir's loader.

    Args:
        src: Foreign option file.
        dst: mcir option file to write.
        from_model_type: Translate as if ``src`` had this model type.
        force: Replace an existing ``dst``.
        emit: Receives a line per change, then a line saying what was written.

    Returns:
        The number of changes.
    """
    from mcir.options import load_options, parse_yaml
    from mcir.utils.atomic import atomic_write_text

    source, target = Path(src), Path(dst)
    if not source.is_file():
        raise UsageError(f"{src}: no such file")
    if target.exists() and target.resolve() == source.resolve():
        raise UsageError(f"{dst} is the input file; pick another output file")
    if target.exists() and not force:
        raise UsageError(f"{dst} exists; pick another output file or pass --force")
    if from_model_type is not None and from_model_type not in MODEL_ALIASES:
        raise UsageError(f"--from_model_type: unknown '{from_model_type}' (known: {', '.join(MODEL_ALIASES)})")
    text = source.read_text(encoding="utf-8")
    opt = parse_yaml(text, file=src)
    if not isinstance(opt, dict):
        raise OptionError("the option file must be a YAML mapping (key: value)", file=src)
    result = translate(opt, file=src, model_type=from_model_type)
    if not result.changes:
        found = mclir_keys(opt)
        if found:
            raise OptionError(f"'{opt.get('model_type')}' is mcir's own, but the file has keys of the published MCIR "
                              f"code ({', '.join(found)}): pass --from_model_type with its original model type "
                              "(e.g. ImageRestorationModel_FFANet_Neg_Multi)", file=src, key="model_type")
        emit(f"{src}: model_type '{opt.get('model_type')}' is mcir's own: nothing to translate")
    for change in result.changes:
        emit(f"{src}: {change.line()}")
    atomic_write_text("\n".join(header(source, text, result)) + render(text, opt, result), target)
    try:
        load_options(str(target), is_train=isinstance(result.options.get("train"), dict), notify=lambda _: None)
    except OptionError as exc:
        raise OptionError(f"wrote {dst}, but it does not load: {exc}") from exc
    emit(f"wrote {dst} ({len(result.changes)} changes; checked with mcir's option loader)")
    return len(result.changes)


def _body(args: argparse.Namespace) -> int:
    convert(args.input, args.output, args.from_model_type, args.force)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (``mcir-convert-options``)."""
    return run_main(_body, build_parser(), argv, prog="mcir-convert-options")


if __name__ == "__main__":
    sys.exit(main())
