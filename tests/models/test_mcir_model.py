"""Tests of MCIRModel: λ = 0 equals plain training, exact resume with negatives, Eq. 4 wiring, λ modes, guard."""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import List

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.engine.guard import LossNotFinite, StepGuard, TrainingCollapsed
from mcir.losses.pixel_loss import L1Loss
from mcir.method.eq1_negatives import NegativeBank
from mcir.method.eq2_4_spn import SPNLoss
from mcir.models.mcir_model import MCIRModel
from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
PLAIN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
SPN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91_SPN.yml"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


@pytest.fixture
def run_args(tmp_path, short_run_args):
    """A seconds-long run; the two option files are made identical except for the negatives."""

    def make(opt: Path, name: str, *extra: str) -> List[str]:
        common = ["path.pretrain_network_g=null", "datasets.train.batch_size_per_gpu=2", "train.optim_g.lr=1e-3",
                  "val.val_freq=0"]
        if opt == SPN:
            common += ["train.neg_opt.vgg_weights=random", "train.negatives.steps=[1, 2]"]
        return short_run_args(opt, tmp_path, name, *common, *extra)

    return make


def _state(root: Path, it: int) -> dict:
    return torch.load(root / "training_states" / f"{it}.state", weights_only=True)


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what}.{k} differs"


def test_lambda_zero_trains_exactly_like_the_plain_model(run_args, tmp_path):
    assert train_main(run_args(PLAIN, "plain")) == 0
    assert train_main(run_args(SPN, "spn0", "train.neg_opt.loss_weight=0")) == 0
    plain, spn0 = _state(tmp_path / "plain", 6)["model"], _state(tmp_path / "spn0", 6)["model"]
    _assert_same(plain["net_g"], spn0["net_g"], "net_g")
    # and the negative term is really computed and would change training when λ > 0
    assert train_main(run_args(SPN, "spn", "train.neg_opt.loss_weight=0.1")) == 0
    spn = _state(tmp_path / "spn", 6)["model"]
    assert not torch.equal(plain["net_g"]["conv_first.weight"], spn["net_g"]["conv_first.weight"])


def test_re_seeding_at_start_iter_does_not_shift_the_random_stream(run_args, tmp_path):
    assert train_main(run_args(PLAIN, "plain")) == 0
    late = ("train.neg_opt.loss_weight=0", "train.negatives.start_iter=2", "train.negatives.init=blend")
    assert train_main(run_args(SPN, "late0", *late)) == 0
    plain, late0 = _state(tmp_path / "plain", 6)["model"], _state(tmp_path / "late0", 6)["model"]
    _assert_same(plain["net_g"], late0["net_g"], "net_g")  # fresh weights came from their own seeded stream
    assert int(late0["negatives"]["negatives.0.num_updates"]) == 4  # updates at 3..6 only


@pytest.mark.parametrize("fused", [False, True], ids=["adam", "fused_adam"])
def test_stop_and_resume_with_negatives_is_bit_identical(run_args, tmp_path, fused):
    # fused: the watching guard judges each step one step late; the saved guard state must still be complete
    extra = ("train.neg_opt.loss_weight=0.05", f"train.optim_g.fused={str(fused).lower()}")
    assert train_main(run_args(SPN, "full", *extra)) == 0
    assert train_main(run_args(SPN, "split", *extra, "train.total_iter=3")) == 0
    assert train_main(run_args(SPN, "split", *extra) + ["--auto_resume"]) == 0
    full, split = _state(tmp_path / "full", 6)["model"], _state(tmp_path / "split", 6)["model"]
    _assert_same(full["net_g"], split["net_g"], "net_g")
    _assert_same(full["negatives"], split["negatives"], "negatives")
    assert int(full["negatives"]["negatives.0.num_updates"]) == 6
    assert int(full["negatives"]["negatives.1.num_updates"]) == 3
    assert full["guard"] == split["guard"] and full["guard"]["rec_level"] is not None
    split3 = _state(tmp_path / "split", 3)["model"]["guard"]
    assert split3 != full["guard"]  # the level moved after iteration 3: comparing them means something


def test_offline_imagenet_vgg_is_one_clear_line(run_args, tmp_path, capsys, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    args = run_args(SPN, "offline")
    args[args.index("train.neg_opt.vgg_weights=random")] = "train.neg_opt.vgg_weights=imagenet"
    assert train_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vgg16-397923af.pth" in err[0] and "vgg_weights" in err[0]
    assert not (tmp_path / "offline").exists()


def test_bf16_negatives_train_and_bad_precision_is_a_one_line_error(run_args, tmp_path, capsys):
    assert train_main(run_args(SPN, "bf16", "train.negatives.precision=bf16", "train.neg_opt.loss_weight=0.1")) == 0
    state = _state(tmp_path / "bf16", 6)["model"]
    assert all(torch.isfinite(v).all() for v in state["net_g"].values())
    assert all(v.dtype != torch.bfloat16 for v in state["negatives"].values())  # weights stay fp32
    capsys.readouterr()
    assert train_main(run_args(SPN, "bad", "train.negatives.precision=fp16")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.negatives.precision" in err[0] and "bf16" in err[0]


# ---- unit tests on a directly built model -----------------------------------------------------
def _model(loss_weight: float = 1e-2, neg_ratio=None) -> MCIRModel:
    torch.manual_seed(0)
    net = EDSR(num_feat=8, num_block=1, upscale=2)
    return MCIRModel(
        net,
        negatives=NegativeBank(net, steps=[1, 2], init="target"),
        spn=SPNLoss(loss_weight=loss_weight, vgg_weights="random"),
        neg_ratio=neg_ratio,
        pixel_loss=L1Loss(),
    )


def _batch():
    torch.manual_seed(1)
    return {"lq": torch.rand(2, 3, 12, 12), "gt": torch.rand(2, 3, 24, 24)}


def test_total_loss_is_rec_minus_lambda_times_eq4(make_step):
    model = _model(loss_weight=0.5)
    b = _batch()
    make_step(model)(b, 1)  # the target moves away from its copies: L_neg > 0 below
    out = model.net_g(b["lq"])
    total, logs = model.compute_losses(b["lq"], b["gt"], out, iteration=1)
    negs = model.negatives(b["lq"])
    direct = torch.stack([
        sum(w * (model.spn.vgg(out)[l] - model.spn.vgg(negs[i])[l]).abs().mean()
            for l, w in {"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5}.items())
        for i in range(len(negs))
    ]).mean()
    l1 = (out - b["gt"]).abs().mean()
    assert direct > 1e-3 * l1
    torch.testing.assert_close(total, l1 - 0.5 * direct, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logs["neg_ratio"], (0.5 * direct / l1).detach(), rtol=1e-5, atol=1e-7)


def test_adaptive_lambda_keeps_the_ratio(make_step):
    step = make_step(_model(neg_ratio=0.05))
    logs = step(_batch(), 1)  # negatives start as copies: L_neg = 0, no push
    assert float(logs["neg_ratio"]) == 0.0 and float(logs["lambda"]) == 0.0
    logs = step(_batch(), 2)
    assert float(logs["l_neg"]) > 0
    assert float(logs["neg_ratio"]) == pytest.approx(0.05, rel=1e-5)


def test_guard_skips_bad_steps_then_halves_lambda(make_step):
    model = _model(loss_weight=0.2)
    step = make_step(model, guard=StepGuard("halve", patience=2, snapshot_freq=1))
    step(_batch(), 1)
    good = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    nan_batch = {"lq": _batch()["lq"], "gt": torch.full((2, 3, 24, 24), float("nan"))}
    step(nan_batch, 2)  # skipped: weights unchanged
    for k, v in model.net_g.state_dict().items():
        assert torch.equal(v, good[k])
    step(nan_batch, 3)  # second bad step in a row: restore + halve
    assert model.neg_lambda == pytest.approx(0.1)
    for k, v in model.net_g.state_dict().items():
        assert torch.equal(v, good[k])


def test_guard_halves_the_ratio_under_adaptive_lambda(make_step):
    model = _model(neg_ratio=0.08)
    step = make_step(model, guard=StepGuard("halve", patience=1, snapshot_freq=1))
    step(_batch(), 1)
    step({"lq": _batch()["lq"], "gt": torch.full((2, 3, 24, 24), float("nan"))}, 2)
    assert model.neg_ratio == pytest.approx(0.04)
    logs = step(_batch(), 3)  # λ is chosen from the halved ratio, not overwritten back
    assert float(logs["neg_ratio"]) == pytest.approx(0.04, rel=1e-5)


def test_guard_can_stop_with_a_clear_message(make_step):
    step = make_step(_model(), guard=StepGuard("stop", patience=1))
    step(_batch(), 1)
    with pytest.raises(TrainingCollapsed, match="collapsed at iteration 2"):
        step({"lq": _batch()["lq"], "gt": torch.full((2, 3, 24, 24), float("inf"))}, 2)


def test_watching_guard_takes_every_finite_step_and_stops_on_a_non_finite_loss(make_step):
    model = _model(loss_weight=0.2)
    step = make_step(model, guard=StepGuard("watch", explode_factor=1.5))
    step(_batch(), 1)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    big = {"lq": _batch()["lq"], "gt": torch.full((2, 3, 24, 24), 50.0)}
    step(big, 2)  # exploding, but a faithful run takes it: only counted
    assert step.suspicious_steps == 1
    assert not torch.equal(before["conv_first.weight"], model.net_g.state_dict()["conv_first.weight"])
    with pytest.raises(LossNotFinite, match="not finite at iteration 3"):
        step({"lq": _batch()["lq"], "gt": torch.full((2, 3, 24, 24), float("nan"))}, 3)


def test_guard_flags_an_exploding_reconstruction_loss():
    guard = StepGuard("skip", explode_factor=5, patience=3)
    assert guard.check(torch.tensor(1.0), torch.tensor(1.0)) == "ok"
    assert guard.check(torch.tensor(1.0), torch.tensor(1.2)) == "ok"
    assert guard.check(torch.tensor(9.0), torch.tensor(9.0)) == "exploding"
    assert guard.bad_in_a_row == 1


def test_bad_guard_threshold_is_a_one_line_error_naming_the_key(run_args, capsys):
    assert train_main(run_args(SPN, "badguard", "train.guard.explode_factor=0.5")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.guard.explode_factor" in err[0] and "demo_EDSR_tiny_x4_T91_SPN.yml" in err[0]
    assert "expected a number > 1, got 0.5" in err[0]


def test_the_old_neg_guard_key_says_where_it_went(run_args, capsys):
    assert train_main(run_args(SPN, "oldguard", "train.neg_guard.enabled=true")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.neg_guard" in err[0] and "renamed to train.guard" in err[0]
