"""Tests for the pairing rules on file-name lists: each benchmark layout, auto choice, forced rules, errors."""

import pytest

from mcir.data.pairing import PAIRING_CHOICES, find_pairs, get_rule, list_images, split_ext
from mcir.errors import DataError, OptionError


def _pair(lq, gt, **kw):
    return find_pairs(lq, gt, lq_where=lambda n: f"LQ/{n}", gt_where=lambda n: f"GT/{n}", **kw)


@pytest.mark.parametrize(
    "lq, gt, tmpl, rule, expected",
    [
        (
            ["babyx4.png", "birdx4.png"],
            ["baby.png", "bird.png"],
            "{}x4",
            "filename_tmpl",
            [("babyx4.png", "baby.png"), ("birdx4.png", "bird.png")],
        ),
        (["1.png", "10.png"], ["1.png", "10.png"], "{}", "same_name", [("1.png", "1.png"), ("10.png", "10.png")]),
        # SOTS outdoor: hazy jpg, GT png
        (
            ["0001_0.8_0.2.jpg", "0002_0.8_0.08.jpg"],
            ["0001.png", "0002.png"],
            "{}",
            "id_prefix",
            [("0001_0.8_0.2.jpg", "0001.png"), ("0002_0.8_0.08.jpg", "0002.png")],
        ),
        # ITS: <id>_<k>_<beta>, ten hazy per clear
        (
            ["1_1_0.90179.png", "1_2_0.7.png", "2_1_0.8.png"],
            ["1.png", "2.png"],
            "{}",
            "id_prefix",
            [("1_1_0.90179.png", "1.png"), ("1_2_0.7.png", "1.png"), ("2_1_0.8.png", "2.png")],
        ),
        # DDN-Data / Rain1400: 14 rainy versions per clean image
        (
            [f"901_{k}.jpg" for k in (1, 2, 14)],
            ["901.jpg"],
            "{}",
            "id_prefix",
            [("901_1.jpg", "901.jpg"), ("901_14.jpg", "901.jpg"), ("901_2.jpg", "901.jpg")],
        ),
        (
            ["rain-001.png", "rain-002.png"],
            ["norain-001.png", "norain-002.png"],
            "{}",
            "rain_prefix",
            [("rain-001.png", "norain-001.png"), ("rain-002.png", "norain-002.png")],
        ),
        (["rain-x001.png"], ["norain-x001.png"], "{}", "rain_prefix", [("rain-x001.png", "norain-x001.png")]),
        # JORDER's Rain100/200 training tree: rain/X2/norain-<n>x2.png
        (
            ["norain-1x2.png", "norain-2x2.png"],
            ["norain-1.png", "norain-2.png"],
            "{}",
            "rain_prefix",
            [("norain-1x2.png", "norain-1.png"), ("norain-2x2.png", "norain-2.png")],
        ),
        (
            ["000.png", "001.png"],
            ["000gt.png", "001gt.png"],
            "{}",
            "spa",
            [("000.png", "000gt.png"), ("001.png", "001gt.png")],
        ),
        (
            ["000/000-3/000-3_1_2.png", "000/000-7/000-7_1_2.png", "001/001-3/001-3_4_5.png"],
            ["000/000_1_2.png", "001/001_4_5.png"],
            "{}",
            "spa",
            [
                ("000/000-3/000-3_1_2.png", "000/000_1_2.png"),
                ("000/000-7/000-7_1_2.png", "000/000_1_2.png"),
                ("001/001-3/001-3_4_5.png", "001/001_4_5.png"),
            ],
        ),
        # EDSR/DIV2K LR names without a filename_tmpl
        (
            ["0001x4.png", "babyx4.png"],
            ["0001.png", "baby.png"],
            "{}",
            "scale_suffix",
            [("0001x4.png", "0001.png"), ("babyx4.png", "baby.png")],
        ),
        # BasicSR-style GoPro trees (blur/<scene>/..., sharp/<scene>/...) pair by relative path
        (
            ["GOPR0384_11_00/000001.png", "GOPR0385_11_01/000001.png"],
            ["GOPR0384_11_00/000001.png", "GOPR0385_11_01/000001.png"],
            "{}",
            "same_name",
            [
                ("GOPR0384_11_00/000001.png", "GOPR0384_11_00/000001.png"),
                ("GOPR0385_11_01/000001.png", "GOPR0385_11_01/000001.png"),
            ],
        ),
    ],
)
def test_auto_picks_the_layout_rule(lq, gt, tmpl, rule, expected):
    pairing = _pair(lq, gt, filename_tmpl=tmpl)
    assert pairing.rule.name == rule
    assert list(pairing.pairs) == expected
    assert len(set(pairing.sample_names)) == len(expected)


def test_several_lq_per_gt_are_named_after_the_lq_one_to_one_after_the_gt():
    assert _pair(["1400_1.png", "1400_2.png"], ["1400.png"]).sample_names == ("1400_1", "1400_2")
    assert _pair(["babyx4.png"], ["baby.png"], filename_tmpl="{}x4").sample_names == ("baby",)


def test_gopro_split_folder_is_one_root_for_lq_and_gt():
    names = ["A/blur/1.png", "A/blur_gamma/1.png", "A/sharp/1.png", "B/blur/1.png", "B/sharp/1.png"]
    pairing = _pair(names, names, shared_root=True)
    assert pairing.rule.name == "gopro"
    assert list(pairing.pairs) == [("A/blur/1.png", "A/sharp/1.png"), ("B/blur/1.png", "B/sharp/1.png")]
    assert pairing.sample_names == ("A/1", "B/1")
    with pytest.raises(DataError, match=r"no LQ for GT/B/sharp/2\.png \(looked for LQ/B/blur/2\.png\)"):
        _pair(names + ["B/sharp/2.png"], names + ["B/sharp/2.png"], shared_root=True)


def test_rain_pairs_in_one_folder_ignore_other_files():
    names = ["norain-1.png", "norain-2.png", "rain-1.png", "rain-2.png", "rainregion-1.png", "rainstreak-1.png"]
    pairing = _pair(names, names, shared_root=True)
    assert pairing.rule.name == "rain_prefix"
    assert list(pairing.pairs) == [("rain-1.png", "norain-1.png"), ("rain-2.png", "norain-2.png")]


def test_same_folder_never_pairs_a_file_with_itself():
    names = ["a.png", "b.png"]
    with pytest.raises(DataError, match="no pairing rule matched"):
        _pair(names, names, shared_root=True)
    with pytest.raises(DataError, match="same folder, which the 'same_name' layout cannot pair"):
        _pair(names, names, shared_root=True, rule="same_name")


def test_did_side_by_side_pairs_each_file_with_itself_only_when_forced():
    names = ["1.jpg", "2.jpg"]
    pairing = _pair(names, names, shared_root=True, rule="did")
    assert pairing.rule.side_by_side and list(pairing.pairs) == [("1.jpg", "1.jpg"), ("2.jpg", "2.jpg")]
    with pytest.raises(DataError, match="set dataroot_lq and dataroot_gt to the same folder"):
        _pair(names, names, rule="did")


def test_missing_partner_names_the_file_and_what_was_looked_for():
    with pytest.raises(DataError, match=r"^no GT for LQ/rain-017\.png \(looked for GT/norain-017\.png\)$"):
        _pair(["rain-001.png", "rain-017.png"], ["norain-001.png"])
    with pytest.raises(DataError, match=r"^no GT for LQ/1401_3\.png \(looked for GT/1401\.png\)$"):
        _pair(["1400_1.png", "1401_3.png"], ["1400.png"])
    # one-to-one layouts also need every GT used
    with pytest.raises(DataError, match=r"^no LQ for GT/c\.png \(looked for LQ/cx4\.png\)$"):
        _pair(["ax4.png"], ["a.png", "c.png"], filename_tmpl="{}x4")
    with pytest.raises(DataError, match=r"LQ/a\.jpg and LQ/a\.png both pair with GT/a\.png"):
        _pair(["a.jpg", "a.png"], ["a.png"])


def test_forced_rule_is_used_and_reports_its_own_failures():
    # DehazeFormer's SOTS names follow the RESIDE pattern too; auto pairs same names, a forced rule does not.
    assert _pair(["1_2.png"], ["1_2.png"]).rule.name == "same_name"
    with pytest.raises(DataError, match=r"^no GT for LQ/1_2\.png \(looked for GT/1\.png\)$"):
        _pair(["1_2.png"], ["1_2.png"], rule="reside")
    with pytest.raises(DataError, match=r"^no LQ for GT/1\.png \(looked for LQ/1\.png\)$"):
        _pair(["1_2.png"], ["1.png", "1_2.png"], rule="same_name")  # one-to-one: every GT needs its LQ
    with pytest.raises(DataError, match=r"LQ/x\.png does not follow the 'rain_prefix' layout"):
        _pair(["x.png"], ["norain-x.png"], rule="rain_prefix")
    with pytest.raises(OptionError, match="did you mean 'reside'") as err:
        get_rule("resid")
    assert err.value.key == "pairing"
    assert {"auto", "reside", "ddn", "gopro", "spa", "did", "rain_prefix"} <= set(PAIRING_CHOICES)


def test_sub_images_keep_their_suffix():
    pairing = _pair(["1400_1_s001.png", "1400_1_s002.png"], ["1400_s001.png", "1400_s002.png"])
    assert pairing.rule.name == "id_prefix"
    assert [g for _, g in pairing.pairs] == ["1400_s001.png", "1400_s002.png"]
    pairing = _pair(["0001x4_s001.png"], ["0001_s001.png"], filename_tmpl="{}x4")
    assert list(pairing.pairs) == [("0001x4_s001.png", "0001_s001.png")]
    assert _pair(["0001x4_s001.png"], ["0001_s001.png"]).rule.name == "scale_suffix"


def test_listed_gt_selects_samples_and_keeps_list_order():
    lq = ["1400_1.png", "1400_2.png", "1401_1.png", "1402_1.png"]
    pairing = _pair(lq, ["1402.png", "1400.png"], gt_listed=True)
    assert list(pairing.pairs) == [("1402_1.png", "1402.png"), ("1400_1.png", "1400.png"), ("1400_2.png", "1400.png")]
    with pytest.raises(DataError, match=r"no LQ for GT/1403\.png \(looked for LQ/1403_<k>\.png\)"):
        _pair(lq, ["1400.png", "1403.png"], gt_listed=True)


def test_gt_of_another_extension_and_ambiguous_stems():
    assert list(_pair(["a.jpg"], ["a.png"]).pairs) == [("a.jpg", "a.png")]
    assert list(_pair(["1_1.png", "1_2.jpg"], ["1.jpg", "1.png"]).pairs) == [("1_2.jpg", "1.jpg"), ("1_1.png", "1.png")]
    with pytest.raises(DataError, match="ambiguous GT: GT/a.bmp, GT/a.jpg share the stem 'a'"):
        _pair(["a.png"], ["a.bmp", "a.jpg"])


def test_lmdb_keys_with_dots_are_not_split():
    assert split_ext("0025_0.8_0.2") == ("0025_0.8_0.2", "")
    assert split_ext("sub/0025_0.8_0.2.jpg") == ("sub/0025_0.8_0.2", ".jpg")
    assert list(_pair(["0025_0.8_0.2"], ["0025"]).pairs) == [("0025_0.8_0.2", "0025")]


def test_list_images_is_recursive_sorted_and_skips_other_files(tmp_path):
    for rel in ("b/2.png", "b/1.PNG", "a.jpg", "notes.txt", "c/d/3.tif", ".hidden.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert list_images(str(tmp_path)) == ["a.jpg", "b/1.PNG", "b/2.png", "c/d/3.tif"]
