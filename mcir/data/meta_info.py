"""Read and write BasicSR meta_info files: one ``<name> [(h,w,c) [compress_level]]`` line per image."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

from mcir.errors import DataError

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_SHAPE_RE = re.compile(r"^\((\d+),(\d+),(\d+)\)$")


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends with a supported image extension (case-insensitive).

    Args:
        name: File name or path.

    Returns:
        True for png, jpg, jpeg, bmp, tif and tiff files.
    """
    return name.lower().endswith(IMG_EXTENSIONS)


@dataclass(frozen=True)
class MetaEntry:
    """One meta_info line.

    Args:
        name: Image file name relative to the data root (``baby.png``; may contain ``/``).
        shape: ``(h, w, c)`` if the line gives it.
        compress_level: PNG compression level if the line gives it.
    """

    name: str
    shape: Optional[Tuple[int, int, int]] = None
    compress_level: Optional[int] = None

    @property
    def key(self) -> str:
        """The LMDB key: the name without its extension (``baby.png`` -> ``baby``)."""
        return self.name[: -len(Path(self.name).suffix)] if Path(self.name).suffix else self.name

    def to_line(self) -> str:
        """Format as a meta_info line (no newline)."""
        parts = [self.name]
        if self.shape is not None:
            parts.append("({},{},{})".format(*self.shape))
            if self.compress_level is not None:
                parts.append(str(self.compress_level))
        return " ".join(parts)


def _parse_line(line: str, where: str) -> MetaEntry:
    tokens = line.split()
    if len(tokens) > 3:
        raise DataError(f"{where}: malformed meta_info line {line!r} (expected '<name> [(h,w,c) [level]]')")
    name = tokens[0]
    if not is_image_file(name):
        raise DataError(f"{where}: malformed meta_info line {line!r} ('{name}' is not an image file name)")
    shape = None
    level = None
    if len(tokens) >= 2:
        m = _SHAPE_RE.match(tokens[1])
        if m is None:
            raise DataError(f"{where}: malformed meta_info line {line!r} (bad shape '{tokens[1]}', want (h,w,c))")
        shape = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if len(tokens) == 3:
        if not tokens[2].isdigit():
            raise DataError(f"{where}: malformed meta_info line {line!r} (bad compress level '{tokens[2]}')")
        level = int(tokens[2])
    return MetaEntry(name, shape, level)


def read_meta_info(path: Union[str, Path]) -> List[MetaEntry]:
    """Parse a meta_info file; blank lines are skipped.

    Args:
        path: The meta_info text file.

    Returns:
        Entries in file order.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read meta_info file ({exc})") from exc
    entries = [_parse_line(line, f"{path}:{i}") for i, line in enumerate(lines, 1) if line.strip()]
    if not entries:
        raise DataError(f"{path}: meta_info file lists no images")
    seen = set()
    for entry in entries:
        if entry.name in seen:
            raise DataError(f"{path}: '{entry.name}' is listed twice")
        seen.add(entry.name)
    return entries


def write_meta_info(path: Union[str, Path], entries: Iterable[MetaEntry]) -> None:
    """Write entries as a meta_info file, one line each.

    Args:
        path: Output text file.
        entries: Entries to write, in order.
    """
    Path(path).write_text("".join(e.to_line() + "\n" for e in entries), encoding="utf-8")
