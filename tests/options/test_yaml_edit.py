"""Rewriting YAML text to a new tree: unchanged lines and comments stay, edits land in place."""

from __future__ import annotations

import yaml

from mcir.options.foreign.yaml_edit import duplicate_key, rewrite_yaml, same

TEXT = """# top comment
a: 1  # one
sec:
  # inside
  x: [1, 2]  # list
  y: old
  gone: 3

  z: {k: 1}
tail: true
"""


def _rewrite(new, renames=None):
    return rewrite_yaml(TEXT, yaml.safe_load(TEXT), new, renames or {}, lambda k: f"removed {k}")


def test_unchanged_tree_is_the_same_text():
    assert _rewrite(yaml.safe_load(TEXT)) == TEXT


def test_edits_in_place_and_comments_kept():
    new = {"a": 1, "sec": {"x": [1, 2], "why": "old", "z": {"k": 2}, "added": {"p": [1], "q": 0.5}}, "tail": False}
    out = _rewrite(new, {"sec.y": "why"})
    assert same(yaml.safe_load(out), new)
    lines = out.splitlines()
    assert lines[:5] == ["# top comment", "a: 1  # one", "sec:", "  # inside", "  x: [1, 2]  # list"]
    assert lines[5:8] == ["  why: old", "  # removed sec.gone", ""]
    assert lines[8:] == ["  z:", "    k: 2", "  added:", "    p: [1]", "    q: 0.5", "tail: false"]


def test_rename_onto_an_existing_key_leaves_one_key():
    new = {"a": 1, "sec": {"x": [1, 2], "z": "from y"}, "tail": True}
    out = _rewrite(new, {"sec.y": "z"})
    assert duplicate_key(out) is None and same(yaml.safe_load(out), new)


def test_same_and_duplicate_key():
    assert not same({"a": 1}, {"a": 1.0}) and not same([True], [1]) and same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert duplicate_key("a:\n  b: 1\n  b: 2\n") == "a.b" and duplicate_key("a: 1\n") is None
