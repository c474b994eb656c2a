"""The reproduction harness end to end on seconds-long runs: report, skip-on-rerun, collapse, bad studies."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

from mcir.errors import OptionError
from mcir.repro.study import load_study

REPO = Path(__file__).resolve().parents[2]
PLAIN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
SET5 = REPO / "datasets" / "Set5"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


def _main():
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "scripts" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _study(tmp_path: Path, **extra) -> Path:
    study = {
        "name": "tiny",
        "runs_root": str(tmp_path / "runs"),
        "report_dir": str(tmp_path / "report"),
        "seeds": [0, 1],
        "total_iter": 4,
        "baseline": "baseline",
        "common_set": [
            "path.pretrain_network_g=null", f"datasets.train.dataroot_gt={REPO / 'datasets/T91/HR'}",
            f"datasets.val.dataroot_gt={SET5 / 'HR'}", f"datasets.val.dataroot_lq={SET5 / 'LR_bicubic/X4'}",
            "datasets.train.gt_size=32", "datasets.train.batch_size_per_gpu=2", "network_g.num_feat=8",
            "network_g.num_block=1", "train.scheduler.periods=[4]", "val.val_freq=2", "logger.print_freq=1",
            "logger.save_checkpoint_freq=2", "logger.use_tb_logger=false", "num_gpu=0",
        ],
        "methods": {
            "baseline": {"opt": str(PLAIN)},
            "+CR": {"opt": str(PLAIN), "set": [
                "train.contrast_opt={type: ContrastLoss, vgg_weights: random, layer_weights: {relu1_1: 1.0}}"]},
        },
        "benchmarks": {"Set5": {"dataroot_gt": str(SET5 / "HR"), "dataroot_lq": str(SET5 / "LR_bicubic/X4"),
                                "filename_tmpl": "{}x4"},
                       "Missing": {"dataroot_gt": str(tmp_path / "nope"), "dataroot_lq": str(tmp_path / "nope")}},
    }
    study.update(extra)
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_harness_writes_the_report_and_skips_finished_runs(tmp_path, capsys):
    main = _main()

    study = _study(tmp_path)
    assert main([str(study)]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| baseline |" in report and "| +CR |" in report and "Set5 PSNR / SSIM" in report
    assert "Missing" not in report  # absent benchmarks are skipped
    assert "over 2 seeds" in report and (tmp_path / "report" / "curves.png").stat().st_size > 1000
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    psnrs = {s: r["metrics"]["Set5"]["psnr"] for s, r in results["baseline"].items()}
    per_image = json.loads(next((tmp_path / "report" / "eval").glob("*baseline__seed0/metrics.json")).read_text())
    assert psnrs["0"] == pytest.approx(per_image["Set5"]["average"]["psnr"])
    assert psnrs["0"] != psnrs["1"]  # seeds really differ
    assert all(r["train_seconds"] is not None and r["train_seconds"] >= 0 for r in results["baseline"].values())
    assert "Training time in the runs' logs:" in report and "| training min |" in report
    capsys.readouterr()
    assert main([str(study)]) == 0
    out = capsys.readouterr().out
    assert out.count("skip ") == 4 and "train " not in out


def test_collapse_is_reported_as_such(tmp_path):
    main = _main()

    study = _study(tmp_path, seeds=[0], methods={
        "baseline": {"opt": str(PLAIN)},
        "+SPN huge": {"opt": str(PLAIN), "set": [
            "model_type=MCIRModel", "train.negatives={steps: [1, 2]}",
            "train.neg_opt={type: SPNLoss, vgg_weights: random, loss_weight: .inf}",  # a non-finite loss
            "train.guard={patience: 1, action: stop}"]},
    })
    assert main([str(study)]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "seed 0: collapsed" in report
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert "training collapsed" in results["+SPN huge"]["0"]["message"]


def test_sweeps_expand_and_bad_studies_name_the_key(tmp_path):
    study = load_study(str(_study(tmp_path, sweeps={"lambda": {"base": "+CR", "key": "train.contrast_opt.loss_weight",
                                                              "values": [0.01, 0.001]}})))
    names = [m.name for m in study.methods]
    assert names[-2:] == ["+CR lambda=0.01", "+CR lambda=0.001"]
    assert study.methods[-1].overrides[-1] == "train.contrast_opt.loss_weight=0.001"
    with pytest.raises(OptionError, match="baseline"):
        load_study(str(_study(tmp_path, baseline="nope")))
    with pytest.raises(OptionError, match="methods.x.opt"):
        load_study(str(_study(tmp_path, methods={"baseline": {"opt": str(PLAIN)}, "x": {"opt": "missing.yml"}})))
    with pytest.raises(OptionError, match="unknown key"):
        load_study(str(_study(tmp_path, seed=[1])))


def test_bad_study_is_one_line_error(tmp_path, capsys):
    main = _main()

    assert main([str(tmp_path / "missing.yml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.yml" in err[0]


@pytest.mark.parametrize("path", sorted((REPO / "options" / "reproduce").glob("*.yml")), ids=lambda p: p.name)
def test_committed_studies_and_every_run_option_validate(path, monkeypatch):
    from mcir.options import load_options
    from mcir.repro.study import study_overrides

    monkeypatch.chdir(REPO)
    study = load_study(str(path.relative_to(REPO)))
    assert study.baseline in [m.name for m in study.methods]
    for method in study.methods:
        opt = load_options(method.opt, study_overrides(study, method, study.seeds[0]), is_train=True)
        assert opt["manual_seed"] == study.seeds[0]
        if study.total_iter:
            assert opt["train"]["total_iter"] == study.total_iter


def _prep_study(tmp_path: Path, **extra) -> Path:
    """A study whose +CCR row uses a prep run's weights as a frozen negative network."""
    ccr = ("train.contrast_opt={type: CCRLoss, vgg_weights: random, layer_weights: {relu1_1: 1.0}, negatives: "
           "{weak: {type: EDSR, num_feat: 8, num_block: 1, upscale: 4, weights: '${prep.weak}'}}}")
    fields = {
        "seeds": [0],
        "methods": {"baseline": {"opt": str(PLAIN)}, "+CCR": {"opt": str(PLAIN), "set": [ccr]}},
        "prep": {"weak": {"opt": str(PLAIN), "seed": 7, "total_iter": 2, "set": ["train.scheduler.periods=[2]"]},
                 "unused": {"opt": str(PLAIN), "seed": 8, "total_iter": 2}},
        "benchmarks": {"Set5": {"dataroot_gt": str(SET5 / "HR"), "dataroot_lq": str(SET5 / "LR_bicubic/X4"),
                                "filename_tmpl": "{}x4"}},
    }
    fields.update(extra)
    return _study(tmp_path, **fields)


def test_prep_runs_train_once_feed_a_row_and_are_reported(tmp_path, capsys):
    # One real prep run (train + evaluate subprocesses); the rows themselves are covered above.
    from mcir.losses import build_loss
    from mcir.options import load_options
    from mcir.repro.harness import run_preps, write_report
    from mcir.repro.study import prep_weights, study_overrides

    study = load_study(str(_prep_study(tmp_path)))
    preps = run_preps(study)
    assert list(preps) == ["weak"] and preps["weak"]["status"] == "finished", preps  # "unused" is not trained
    assert preps["weak"]["metrics"]["Set5"]["psnr"] > 0 and preps["weak"]["seed"] == 7
    # The +CCR row's options point at the prep's final weights, which load into its frozen negative network.
    ccr = study.method("+CCR")
    opt = load_options(ccr.opt, study_overrides(study, ccr, 0), is_train=True)
    loss = build_loss(opt["train"]["contrast_opt"], key="train.contrast_opt")
    saved = torch.load(prep_weights(study, "weak"), weights_only=True)["params"]
    assert all(torch.equal(v, saved[k]) for k, v in loss.networks["weak"].state_dict().items())
    capsys.readouterr()
    assert run_preps(study)["weak"]["status"] == "finished"
    assert "skip tiny__prep_weak: finished" in capsys.readouterr().out
    report = write_report(study, {}, ["cmd"], 1.0, {}, preps)
    assert "## Prep runs" in report and "| weak | 2 | 7 | finished |" in report
    assert json.loads((tmp_path / "report" / "prep.json").read_text())["weak"]["total_iter"] == 2


def test_prep_references_resolve_and_bad_preps_name_the_key(tmp_path):
    from mcir.repro.study import prep_weights, study_overrides

    study = load_study(str(_prep_study(tmp_path)))
    assert [p.name for p in study.preps] == ["weak"]
    ccr = next(s for s in study_overrides(study, study.method("+CCR"), 0) if s.startswith("train.contrast_opt="))
    assert f"weights: '{prep_weights(study, 'weak')}'" in ccr and "${prep" not in ccr
    bad_ref = {"baseline": {"opt": str(PLAIN)}, "x": {"opt": str(PLAIN), "set": ["train.a='${prep.nope}'"]}}
    with pytest.raises(OptionError, match=r"methods\.x\.set.*prep\.nope"):
        load_study(str(_prep_study(tmp_path, methods=bad_ref)))
    for prep, key in [({"w": {"opt": str(PLAIN), "seed": 1}}, "prep.w"),
                      ({"w": {"opt": str(PLAIN), "seed": 1, "total_iter": 0}}, "prep.w.total_iter"),
                      ({"w": {"opt": "missing.yml", "seed": 1, "total_iter": 2}}, "prep.w.opt"),
                      ({"w.x": {"opt": str(PLAIN), "seed": 1, "total_iter": 2}}, "prep.w.x")]:
        with pytest.raises(OptionError, match=key.replace(".", r"\.")):
            load_study(str(_prep_study(tmp_path, prep=prep, methods={"baseline": {"opt": str(PLAIN)}})))


def test_the_harness_trains_prep_runs_before_the_rows(tmp_path, monkeypatch):
    import mcir.repro.harness as harness

    calls = []
    monkeypatch.setattr(harness, "run_preps", lambda study: calls.append("prep") or {})
    monkeypatch.setattr(harness, "run_study", lambda study: calls.append("rows") or {})
    monkeypatch.setattr("mcir.repro.curves.curves_section", lambda study: {})
    assert _main()([str(_prep_study(tmp_path))]) == 0
    assert calls == ["prep", "rows"]
