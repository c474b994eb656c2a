"""mcir-convert-options: the written file loads like the auto path, names its source, keeps comments."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mcir.cli.convert_options import in_place_renames, main
from mcir.options.foreign import Change
from mcir.options import load_options, parse_yaml

FIXTURES = Path(__file__).resolve().parents[1] / "options" / "fixtures_foreign"
REPO = Path(__file__).resolve().parents[2]


def _with_comments(tmp_path: Path) -> Path:
    """The published MCIR file's keys with comments of our own on kept, changed and dropped keys."""
    text = (FIXTURES / "mclir_FFANet_RESIDE_IN_fromScratch.yml").read_text()
    text = text.replace("  ema_decay: 0.999\n", "  ema_decay: 0.999  # kept-comment-1\n")
    text = text.replace("\ntrain:\n", "\n# kept-comment-2\ntrain:\n")
    text = text.replace("  use_grad_norm: 0.05\n", "  use_grad_norm: 0.05  # dropped-comment\n")
    path = tmp_path / "in.yml"
    path.write_text(text)
    return path


def test_converted_file_loads_like_the_auto_path_and_keeps_comments(tmp_path, capsys):
    src, dst = _with_comments(tmp_path), tmp_path / "out.yml"
    assert main([str(src), str(dst)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 15 and printed[-1].startswith(f"wrote {dst} (14 changes")
    assert any("dropped train.use_grad_norm: never read" in line for line in printed)
    text = dst.read_text()
    assert f"#   {src.resolve()}" in text and f"sha256 {hashlib.sha256(src.read_bytes()).hexdigest()}" in text
    assert "kept-comment-1" in text and "kept-comment-2" in text and "dropped-comment" not in text
    assert "# [mcir] dropped train.use_grad_norm" in text and "neg_iter:" not in text
    assert "'relu1_2': 0.2" in text  # the kept lines are the original text, quotes and all
    quiet = dict(notify=lambda _: None)
    auto, converted = load_options(str(src), **quiet), load_options(str(dst), **quiet)
    assert {k: v for k, v in converted.items() if k != "opt_path"} == {k: v for k, v in auto.items() if k != "opt_path"}


def test_half_ported_file_needs_from_model_type(tmp_path, capsys):
    # MCIRModel with the published code's keys left in: the loader stops at path_neg; the converter translates
    # it when told the original model type.
    text = (FIXTURES / "mclir_FFANet_RESIDE_IN_fromScratch.yml").read_text()
    src = tmp_path / "in.yml"
    src.write_text(text.replace("ImageRestorationModel_FFANet_Neg_Multi", "MCIRModel"))
    notes = []
    with pytest.raises(Exception, match="path_neg: unknown key"):
        load_options(str(src), notify=notes.append)
    assert len(notes) == 1 and "path_neg, train.neg_iter, train.neg_decay: keys of the published MCIR" in notes[0]
    assert main([str(src), str(tmp_path / "a.yml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{src}: model_type: 'MCIRModel' is mcir's own" in err[0] and "path_neg" in err[0]
    assert "--from_model_type" in err[0] and not (tmp_path / "a.yml").exists()
    assert main([str(src), str(tmp_path / "b.yml"), "--from_model_type", "ImageRestorationModel_FFANet_Neg_Multi"]) == 0
    assert load_options(str(tmp_path / "b.yml"))["train"]["negatives"]["steps"] == [100, 200, 500, 1000]


def test_edsr_file_is_copied_with_a_nothing_translated_header(tmp_path, capsys):
    src = FIXTURES / "basicsr_train_EDSR_Mx4.yml"
    assert main([str(src), str(tmp_path / "out.yml")]) == 0
    text = (tmp_path / "out.yml").read_text()
    assert "Nothing was translated" in text and parse_yaml(text) == parse_yaml(src.read_text())
    assert "nothing to translate" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fixture, edit, message",
    [
        ("basicsr_train_SwinIR_SRx4_scratch.yml", ("SwinIRModel", "ESRGANModel"),
         "model_type: BasicSR's 'ESRGANModel' has no mcir equivalent: adversarial"),
        ("mclir_FFANet_RESIDE_IN_fromScratch.yml", ("TrueCosineAnnealingLR", "LinearLR"),
         "train.scheduler.type: 'LinearLR' (a schedule over total_iter) has no mcir equivalent"),
        ("mclir_FFANet_RESIDE_IN_fromScratch.yml", ("neg_decay: [0.1, 0.1, 0.1, 0.1]", "neg_decay: [0.1, 0.1]"),
         "train.neg_decay: needs a list with one decay per neg_iter entry (4)"),
    ],
)
def test_no_equivalent_is_one_line_naming_the_key(tmp_path, capsys, fixture, edit, message):
    src = tmp_path / "in.yml"
    src.write_text((FIXTURES / fixture).read_text().replace(*edit))
    assert main([str(src), str(tmp_path / "out.yml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mcir-convert-options: error: {src}: {message}")
    assert not (tmp_path / "out.yml").exists()


def test_refuses_to_overwrite(tmp_path, capsys):
    src, dst = FIXTURES / "basicsr_train_SwinIR_SRx4_scratch.yml", tmp_path / "out.yml"
    dst.write_text("mine\n")
    assert main([str(src), str(dst)]) == 2 and dst.read_text() == "mine\n"
    assert "--force" in capsys.readouterr().err
    assert main([str(src), str(dst), "--force"]) == 0 and load_options(str(dst))["model_type"] == "SRModel"


def test_in_place_renames_follow_a_renamed_parent():
    changes = [
        Change("train.perceptual_opt", "move", "", new_key="train.neg_opt"),
        Change("train.perceptual_opt.perceptual_weight", "move", "", new_key="train.neg_opt.loss_weight"),
        Change("train.neg_iter", "move", "", new_key="train.negatives.steps"),
    ]
    assert in_place_renames(changes) == {"train.perceptual_opt": "neg_opt",
                                         "train.perceptual_opt.perceptual_weight": "loss_weight"}


def test_console_script_and_script_wrapper(load_script):
    setup = (REPO / "setup.py").read_text()
    assert '"mcir-convert-options=mcir.cli.convert_options:main"' in setup
    assert load_script("convert_options").main is main
