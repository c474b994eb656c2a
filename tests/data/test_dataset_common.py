"""Tests for the set-up helpers the image datasets share."""

import numpy as np
import pytest

from mcir.data.dataset_common import backend_config, check_folder, check_patch_options, folder_images, to_color
from mcir.errors import DataError, OptionError


def test_backend_config_picks_lmdb_only_when_every_root_is_one(tmp_path):
    roots = {"lq": str(tmp_path / "lq.lmdb"), "gt": str(tmp_path / "gt.lmdb")}
    cfg = backend_config(None, roots)
    assert cfg == {"type": "lmdb", "db_paths": list(roots.values()), "client_keys": ["lq", "gt"]}
    assert backend_config(None, {"lq": "a.lmdb", "gt": "b"}) == {"type": "disk"}
    option = {"type": "lmdb"}
    with pytest.raises(DataError, match="b: the lmdb io_backend needs a folder ending in .lmdb"):
        backend_config(option, {"lq": "a.lmdb", "gt": "b"})
    assert option == {"type": "lmdb"}


def test_check_folder_and_folder_images(tmp_path):
    with pytest.raises(OptionError, match="is required"):
        check_folder(None, "dataroot_gt")
    with pytest.raises(DataError, match="dataroot_lq folder does not exist"):
        check_folder(str(tmp_path / "missing"), "dataroot_lq")
    (tmp_path / "db.lmdb").mkdir()
    assert check_folder(str(tmp_path / "db.lmdb") + "/", "dataroot_gt") == str(tmp_path / "db.lmdb")
    with pytest.raises(DataError, match="no images"):
        folder_images(str(tmp_path))
    (tmp_path / "b.png").write_bytes(b"")
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert folder_images(str(tmp_path)) == ["a.jpg", "b.png"]


def test_check_patch_options_rejects_bad_values():
    check_patch_options("train", 4, 96, "y")
    with pytest.raises(OptionError, match="not a multiple of scale 4"):
        check_patch_options("train", 4, 90, None)
    with pytest.raises(OptionError, match="unknown color"):
        check_patch_options("val", 1, None, "bgr")


def test_to_color_modes():
    gray = np.full((2, 3, 1), 0.5, dtype=np.float32)
    assert to_color(gray, None).shape == (2, 3, 3)
    assert to_color(gray, "gray").shape == (2, 3, 1)
    bgr = np.zeros((2, 3, 3), dtype=np.float32)
    bgr[..., 1] = 1.0
    y = to_color(bgr, "y")
    assert y.shape == (2, 3, 1) and np.all(y > 0.5)
