"""Tests for meta_info parsing and writing."""

import pytest

from mcir.data.meta_info import MetaEntry, is_image_file, read_meta_info, write_meta_info
from mcir.errors import DataError


def test_parses_basicsr_lines_with_and_without_shape_and_level(tmp_path):
    meta = tmp_path / "meta_info.txt"
    meta.write_text("baby.png (512,512,3) 1\n\n0001_s001.png (480,480,3)\nsub/bird.PNG\n")
    entries = read_meta_info(meta)
    assert [e.name for e in entries] == ["baby.png", "0001_s001.png", "sub/bird.PNG"]
    assert entries[0].shape == (512, 512, 3) and entries[0].compress_level == 1
    assert entries[1].shape == (480, 480, 3) and entries[1].compress_level is None
    assert entries[2].shape is None
    assert [e.key for e in entries] == ["baby", "0001_s001", "sub/bird"]


@pytest.mark.parametrize(
    "bad",
    ["baby (512,512,3) 1", "baby.png 512x512x3 1", "baby.png (512,512,3) one", "baby.png (1,2,3) 1 extra"],
)
def test_malformed_line_names_file_and_line_number(tmp_path, bad):
    meta = tmp_path / "meta_info.txt"
    meta.write_text(f"ok.png (2,2,3) 1\n\n{bad}\n")
    with pytest.raises(DataError, match=r"meta_info\.txt:3: malformed meta_info line"):
        read_meta_info(meta)


def test_empty_duplicate_and_missing_files_are_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="lists no images"):
        read_meta_info(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("a.png\na.png\n")
    with pytest.raises(DataError, match="listed twice"):
        read_meta_info(tmp_path / "dup.txt")
    with pytest.raises(DataError, match="nothere.txt"):
        read_meta_info(tmp_path / "nothere.txt")


def test_write_then_read_roundtrip(tmp_path):
    entries = [MetaEntry("a.png", (4, 5, 3), 1), MetaEntry("b.png", (6, 7, 1), 0), MetaEntry("c.png")]
    write_meta_info(tmp_path / "m.txt", entries)
    assert (tmp_path / "m.txt").read_text().splitlines() == ["a.png (4,5,3) 1", "b.png (6,7,1) 0", "c.png"]
    assert read_meta_info(tmp_path / "m.txt") == entries


def test_is_image_file_is_case_insensitive():
    assert is_image_file("a.PNG") and is_image_file("b.TiFf") and is_image_file("c.jpeg")
    assert not is_image_file("meta_info.txt") and not is_image_file("data.mdb")
