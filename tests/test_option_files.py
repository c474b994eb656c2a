"""Every option file shipped in options/ validates (keys, types, registered names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcir.options import load_options

OPTIONS = Path(__file__).resolve().parents[1] / "options"
FILES = sorted(OPTIONS.rglob("*.yml"))


def test_there_are_option_files():
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(OPTIONS)) for p in FILES])
def test_option_file_validates(path):
    is_train = path.relative_to(OPTIONS).parts[0] == "train"
    opt = load_options(str(path), is_train=is_train)
    assert opt["name"]
    if is_train:
        assert opt["train"]["total_iter"] > 0
