"""Tests of ``_base_`` inheritance: merge rules, deletion, relative paths, cycles, and the +SPN twins."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from mcir.errors import OptionError
from mcir.options import dump_options, load_options, parse_yaml
from mcir.options.inherit import load_with_bases, merge

REPO = Path(__file__).resolve().parents[2]
TRAIN_OPTIONS = REPO / "options" / "train"
#: What a +SPN file may add to its baseline twin: "one YAML switch" (plus a run name of its own).
MCIR_KEYS = {"name", "model_type", "train.negatives", "train.neg_opt"}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_mappings_merge_key_by_key_and_other_values_replace():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    child = {"a": {"y": [3], "z": 2}, "c": 3}
    assert merge(base, child) == {"a": {"x": 1, "y": [3], "z": 2}, "b": 1, "c": 3}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # not changed


def test_delete_marker_removes_a_key_and_a_marked_mapping_replaces():
    base = {"a": {"x": 1, "y": 2}, "b": {"p": 1, "q": 2}, "c": 3}
    merged = merge(base, {"a": {"x": "_delete_"}, "b": {"_delete_": True, "r": 5}, "c": "_delete_"})
    assert merged == {"a": {"y": 2}, "b": {"r": 5}}


def test_deleting_what_the_base_does_not_set_is_an_error_naming_the_key():
    with pytest.raises(OptionError) as err:
        merge({"a": {"x": 1}}, {"a": {"xx": "_delete_"}}, file="child.yml")
    assert err.value.key == "a.xx" and err.value.file == "child.yml"


def test_bases_are_relative_to_the_including_file_and_merged_in_order(tmp_path):
    _write(tmp_path, "common/one.yml", "a: 1\nb: {x: 1}\n")
    _write(tmp_path, "common/two.yml", "_base_: one.yml\nb: {y: 2}\n")
    _write(tmp_path, "other.yml", "a: 5\nc: 3\n")
    top = _write(tmp_path, "runs/top.yml", "_base_: [../common/two.yml, ../other.yml]\nc: 4\n")
    assert load_with_bases(top) == {"a": 5, "b": {"x": 1, "y": 2}, "c": 4}


def test_a_cycle_is_an_error_naming_the_files(tmp_path):
    _write(tmp_path, "a.yml", "_base_: b.yml\nx: 1\n")
    b = _write(tmp_path, "b.yml", "_base_: a.yml\ny: 1\n")
    with pytest.raises(OptionError, match=r"include each other: .*b\.yml -> .*a\.yml -> .*b\.yml") as err:
        load_with_bases(b)
    assert err.value.key == "_base_"


def test_a_missing_or_malformed_base_is_an_error_naming_the_including_file(tmp_path):
    top = _write(tmp_path, "top.yml", "_base_: nowhere.yml\n")
    with pytest.raises(OptionError, match="base file not found: nowhere.yml") as err:
        load_with_bases(top)
    assert err.value.file == str(top) and err.value.key == "_base_"
    bad = _write(tmp_path, "bad.yml", "_base_: {a: 1}\n")
    with pytest.raises(OptionError, match="expected a file name or a list of file names"):
        load_with_bases(bad)


def test_the_resolved_options_written_to_logs_are_the_merged_file(tmp_path):
    spn = TRAIN_OPTIONS / "SR" / "train_EDSR_Mx2_f64b16_DIV2K_SPN.yml"
    opt = load_options(str(spn), ["train.neg_opt.vgg_weights=random"])
    out = tmp_path / "resolved.yml"
    dump_options(opt, str(out))
    dumped = parse_yaml(out.read_text())
    assert "_base_" not in dumped and "opt_path" not in dumped
    assert out.read_text().startswith(f"# resolved from {spn.resolve()}")
    assert dumped["network_g"]["num_block"] == 16  # from the base file
    assert dumped["train"]["negatives"]["steps"] == [100, 200, 500, 1000]  # from the +SPN file
    assert load_options(str(out), ["train.neg_opt.vgg_weights=random"]) == opt.__class__(
        {**opt, "opt_path": str(out.resolve())})


def _flat(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flat(v, key) if isinstance(v, dict) else {key: v})
    return out


SPN_FILES = sorted(TRAIN_OPTIONS.rglob("*_SPN.yml"))


def test_every_spn_file_has_a_baseline_twin():
    assert len(SPN_FILES) >= 19
    for spn in SPN_FILES:
        raw = parse_yaml(spn.read_text())
        assert raw.get("_base_"), f"{spn.name} repeats its baseline instead of naming it in _base_"


@pytest.mark.parametrize("spn", SPN_FILES, ids=[p.name for p in SPN_FILES])
def test_spn_file_differs_from_its_baseline_only_by_the_mcir_keys(spn):
    raw = parse_yaml(spn.read_text())
    base = spn.parent / raw["_base_"]
    assert base.name == spn.name.replace("_SPN.yml", ".yml") or "finetune" in base.name
    own = {k for k in _flat({k: v for k, v in raw.items() if k != "_base_"})}
    assert all(any(k == m or k.startswith(m + ".") for m in MCIR_KEYS) for k in own), own
    twin, merged = _flat(load_with_bases(base)), _flat(load_with_bases(spn))
    differ = {k for k in set(twin) | set(merged) if twin.get(k) != merged.get(k)}
    assert differ and all(any(k == m or k.startswith(m + ".") for m in MCIR_KEYS) for k in differ), differ
    assert merged["model_type"] == "MCIRModel" and twin.get("model_type", "RestorationModel") != "MCIRModel"
