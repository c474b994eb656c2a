"""RestorationModel's optional loss terms: perceptual and sample-contrastive peers wired from the options."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
PLAIN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


def _net(root: Path, name: str) -> dict:
    return torch.load(root / name / "training_states" / "6.state", weights_only=True)["model"]["net_g"]


@pytest.mark.parametrize("loss_type", ["ContrastLoss", "PCLLoss"])
def test_contrast_opt_trains_and_logs_its_term(tmp_path, short_run_args, loss_type):
    common = ["path.pretrain_network_g=null", "datasets.train.batch_size_per_gpu=2", "train.optim_g.lr=1e-3",
              "val.val_freq=0"]
    assert train_main(short_run_args(PLAIN, tmp_path, "plain", *common)) == 0
    cfg = f"train.contrast_opt={{type: {loss_type}, loss_weight: 1.0, vgg_weights: random, layer_weights: {{relu1_1: 1.0}}}}"
    assert train_main(short_run_args(PLAIN, tmp_path, "peer", *common, cfg)) == 0
    log_text = "".join(p.read_text() for p in (tmp_path / "peer").rglob("*.log"))
    assert "l_contrast" in log_text
    plain, peer = _net(tmp_path, "plain"), _net(tmp_path, "peer")
    assert not torch.equal(plain["conv_first.weight"], peer["conv_first.weight"])


def test_unknown_contrast_key_is_a_one_line_error(tmp_path, short_run_args, capsys):
    cfg = "train.contrast_opt={type: ContrastLoss, vgg_weights: random, layer_weigths: {relu1_1: 1.0}}"
    assert train_main(short_run_args(PLAIN, tmp_path, "bad", cfg)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.contrast_opt" in err[0] and "layer_weights" in err[0]
