"""Tests for the shared command-line plumbing: one-line errors, exit codes and input-folder listing."""

import argparse

import pytest

from mcir.cli import UsageError, input_images, run_main
from mcir.errors import DataError


def _parser(debug: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("what")
    if debug:
        parser.add_argument("--debug", action="store_true")
    return parser


def _body(args: argparse.Namespace):
    if args.what == "data":
        raise DataError("x.png: cannot decode image")
    if args.what == "usage":
        raise UsageError("input folder x does not exist")
    if args.what == "os":
        raise OSError("disk full")
    return {"ok": 1} if args.what == "dict" else 3


def test_run_main_errors_are_one_line_with_their_exit_code(capsys):
    assert run_main(_body, _parser(), ["data"]) == 1
    assert capsys.readouterr().err == "error: x.png: cannot decode image\n"
    assert run_main(_body, _parser(), ["usage"], prog="tool") == 2
    assert capsys.readouterr().err == "tool: error: input folder x does not exist\n"
    assert run_main(_body, _parser(), ["os"], prog="tool", errors=(OSError,)) == 1
    assert capsys.readouterr().err == "tool: error: disk full\n"
    with pytest.raises(OSError):
        run_main(_body, _parser(), ["os"])


def test_run_main_return_value_and_debug():
    assert run_main(_body, _parser(), ["dict"]) == 0
    assert run_main(_body, _parser(), ["three"]) == 3
    with pytest.raises(DataError):
        run_main(_body, _parser(debug=True), ["data", "--debug"])


def test_input_images_flat_and_recursive(tmp_path):
    with pytest.raises(UsageError, match="no images"):
        input_images(tmp_path)
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "notes.txt", "sub/c.png"):
        (tmp_path / name).write_bytes(b"")
    assert input_images(tmp_path) == [tmp_path / "a.JPG", tmp_path / "b.png"]
    assert input_images(tmp_path, recursive=True) == [tmp_path / n for n in ("a.JPG", "b.png", "sub/c.png")]
