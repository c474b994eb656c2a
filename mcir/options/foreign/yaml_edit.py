"""Rewrite a YAML file's text to hold a new option tree, keeping the original lines, comments and order."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, recursively (``1``, ``1.0`` and ``True`` differ; key order does not matter)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def duplicate_key(text: str) -> Optional[str]:
    """The first key that appears twice in one mapping of ``text`` (dotted), or None."""

    def walk(node: Node, path: str) -> Optional[str]:
        if isinstance(node, SequenceNode):
            return next((d for d in (walk(n, path) for n in node.value) if d), None)
        if not isinstance(node, MappingNode):
            return None
        seen = set()
        for knode, vnode in node.value:
            full = f"{path}.{knode.value}" if path else str(knode.value)
            if knode.value in seen:
                return full
            seen.add(knode.value)
            found = walk(vnode, full)
            if found:
                return found
        return None

    return walk(yaml.compose(text, Loader=yaml.SafeLoader), "")


def _last_line(node: Node) -> int:
    """Index of the last line holding ``node``'s content."""
    if isinstance(node, (MappingNode, SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        return _last_line(last[1] if isinstance(node, MappingNode) else last)
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def _flow(value: Any) -> str:
    """``value`` as one line of YAML."""
    if value is None:
        return "~"
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True).strip()
    return text[: -len("\n...")] if text.endswith("\n...") else text


def value_lines(key: str, value: Any, indent: str, step: int) -> List[str]:
    """``key: value`` as YAML lines at ``indent``: mappings in block style, everything else on one line.

    Args:
        key: The key.
        value: Its value.
        indent: Leading spaces of the key.
        step: Indentation of nested levels.

    Returns:
        The lines.
    """
    if isinstance(value, dict) and value:
        lines = [f"{indent}{_flow(key)}:"]
        for k, v in value.items():
            lines += value_lines(str(k), v, indent + " " * step, step)
        return lines
    return [f"{indent}{_flow(key)}: {_flow(value)}"]


class _Rewriter:
    """Walks the original mapping nodes next to the new tree and writes the output lines."""

    def __init__(self, text: str, renames: Mapping[str, str], note: Callable[[str], str]):
        self.lines = text.splitlines()
        self.renames = renames
        self.note = note
        self.out: List[str] = []
        self.cursor = 0
        self.step = 2

    def _key_line(self, line: int, knode: Node, new_key: str) -> str:
        text = self.lines[line]
        if new_key == knode.value or knode.end_mark.line != line:
            return text
        return text[: knode.start_mark.column] + new_key + text[knode.end_mark.column:]

    def walk(self, node: MappingNode, old: Dict[str, Any], new: Dict[str, Any], path: str, bound: int) -> None:
        consumed = set()
        items = node.value
        indent = " " * items[0][0].start_mark.column if items else ""
        for i, (knode, vnode) in enumerate(items):
            key = str(knode.value)
            start = knode.start_mark.line
            following = items[i + 1][0].start_mark.line if i + 1 < len(items) else bound
            end = max(start, min(_last_line(vnode), following - 1))
            self.out.extend(self.lines[self.cursor:start])
            full = f"{path}.{key}" if path else key
            new_key = self.renames.get(full, key)
            if new_key not in new or new_key in consumed:  # dropped, or renamed onto a key written already
                self.out.append(f"{indent}# {self.note(full)}")
            else:
                consumed.add(new_key)
                self._item(knode, vnode, old.get(key), new[new_key], new_key, full, start, end, indent)
            self.cursor = max(self.cursor, end + 1)
        for key, value in new.items():
            if key not in consumed:
                self.out.extend(value_lines(key, value, indent, self.step))

    def _item(self, knode: Node, vnode: Node, old: Any, new: Any, new_key: str, full: str, start: int, end: int,
              indent: str) -> None:
        nested = isinstance(vnode, MappingNode) and not vnode.flow_style and bool(vnode.value)
        if nested and isinstance(old, dict) and isinstance(new, dict):
            first = vnode.value[0][0].start_mark.line
            self.step = max(1, vnode.value[0][0].start_mark.column - knode.start_mark.column)
            self.out.append(self._key_line(start, knode, new_key))
            self.out.extend(self.lines[start + 1:first])
            self.cursor = first
            self.walk(vnode, old, new, full, end + 1)
        elif same(old, new):
            self.out.append(self._key_line(start, knode, new_key))
            self.out.extend(self.lines[start + 1:end + 1])
        else:
            self.out.extend(value_lines(new_key, new, indent, self.step))


def rewrite_yaml(
    text: str, old: Dict[str, Any], new: Dict[str, Any], renames: Mapping[str, str], note: Callable[[str], str]
) -> str:
    """The original YAML text edited to hold ``new``: unchanged entries keep their lines and comments.

    Args:
        text: The original file's text (a block mapping at the top).
        old: Its parsed tree.
        new: The tree the output must hold.
        renames: Dotted original key -> new key name, for keys renamed in place (same parent).
        note: Comment text left where a key was removed (given the dotted key).

    Returns:
        The new text (it parses to ``new``; callers should check).
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, MappingNode):
        raise ValueError("the file is not a YAML mapping")
    writer = _Rewriter(text, renames, note)
    writer.walk(root, old, new, "", len(writer.lines))
    writer.out.extend(writer.lines[writer.cursor:])
    return "\n".join(writer.out) + "\n"
