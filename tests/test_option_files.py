"""Every option file shipped in options/ validates (keys, types, registered names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcir.options import load_options

OPTIONS = Path(__file__).resolve().parents[1] / "options"
# Study files of the reproduction harness live in options/reproduce/ and are checked in tests/repro/.
FILES = sorted(p for p in OPTIONS.rglob("*.yml") if "reproduce" not in p.relative_to(OPTIONS).parts)


def test_there_are_option_files():
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(OPTIONS)) for p in FILES])
def test_option_file_validates(path):
    is_train = path.relative_to(OPTIONS).parts[0] == "train"
    opt = load_options(str(path), is_train=is_train)
    assert opt["name"]
    if is_train:
        assert opt["train"]["total_iter"] > 0


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(OPTIONS)) for p in FILES])
def test_degradation_lists_in_option_files_build(path):
    # The schema checks a dataset's arguments by type only; the degradation names and parameter values are
    # checked when the dataset is built, so build every pipeline here without needing the images.
    from mcir.data.degradation_pipeline import build_pipeline

    opt = load_options(str(path), is_train=path.relative_to(OPTIONS).parts[0] == "train")
    for key, section in opt["datasets"].items():
        if section.get("type") == "SyntheticDegradationDataset":
            pipe = build_pipeline(section["degradations"], key=f"datasets.{key}.degradations")
            assert pipe.scale == section.get("scale", opt["scale"])


def test_restoration_option_files_exist():
    names = {str(p.relative_to(OPTIONS)) for p in FILES}
    for task in ("Denoise", "JPEG", "Deblur"):
        assert any(n.startswith(f"train/{task}/demo_") for n in names), task
        assert any(n.startswith(f"test/{task}/") for n in names), task
