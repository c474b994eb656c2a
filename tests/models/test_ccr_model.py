"""CCR wired through the model: folder negatives from the batch, frozen-network negatives from the options."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.build import build_training
from mcir.data.paired_dataset import PairedImageDataset
from mcir.errors import OptionError
from mcir.losses.ccr_loss import CCRLoss
from mcir.losses.pixel_loss import L1Loss
from mcir.models.restoration_model import RestorationModel
from mcir.options import load_options
from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
PLAIN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
LAYERS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16}

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


def _folder_data(root: Path) -> PairedImageDataset:
    """x2 pairs whose negative ``inv`` (255 - GT, named after the LQ file) must stay aligned with the GT."""
    rng = np.random.default_rng(0)
    for sub in ("gt", "lq", "inv"):
        (root / sub).mkdir(parents=True)
    for n in ("a", "b"):
        gt = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "gt" / f"{n}.png"), gt)
        cv2.imwrite(str(root / "lq" / f"{n}x2.png"), cv2.resize(gt, (16, 16), interpolation=cv2.INTER_AREA))
        cv2.imwrite(str(root / "inv" / f"{n}x2.png"), 255 - gt)
    return PairedImageDataset(dataroot_gt=str(root / "gt"), dataroot_lq=str(root / "lq"), filename_tmpl="{}x2",
                              scale=2, phase="train", gt_size=16, use_hflip=True, use_rot=True,
                              dataroot_neg={"inv": str(root / "inv")})


def _model(contrast: CCRLoss) -> RestorationModel:
    torch.manual_seed(0)
    net = EDSR(num_feat=8, num_block=1, upscale=2)
    return RestorationModel(net, pixel_loss=L1Loss(), contrast_loss=contrast)


def test_folder_negatives_travel_from_the_batch_to_the_loss(tmp_path, make_step):
    ds = _folder_data(tmp_path)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["negs"]["inv"].shape == batch["gt"].shape
    torch.testing.assert_close(batch["negs"]["inv"], 1 - batch["gt"], atol=1e-6, rtol=0)
    model = _model(CCRLoss({"inv": {"psnr": 10.0}}, vgg_weights="random", layer_weights=LAYERS))
    out = model.net_g(batch["lq"])
    _, logs = model.compute_losses(batch["lq"], batch["gt"], out, 1, negs=batch["negs"])
    direct = model.contrast_loss(out, batch["gt"], batch["lq"], negs=batch["negs"])
    torch.testing.assert_close(logs["l_contrast"], direct.detach())
    before = model.net_g.conv_first.weight.clone()
    step = make_step(model)
    logs = step(batch, 1)
    assert torch.isfinite(logs["l_contrast"]) and not torch.equal(before, model.net_g.conv_first.weight)
    with pytest.raises(OptionError, match="dataroot_neg.inv"):
        step({"lq": batch["lq"], "gt": batch["gt"]}, 2)


def test_frozen_network_negatives_from_options_are_never_updated(tmp_path):
    torch.manual_seed(1)
    weak = EDSR(num_feat=8, num_block=1, upscale=4)
    torch.save({"params": weak.state_dict()}, tmp_path / "weak.pth")
    ccr = (f"train.contrast_opt={{type: CCRLoss, vgg_weights: random, layer_weights: {{relu1_1: 1.0}}, negatives: "
           f"{{weak: {{type: EDSR, num_feat: 8, num_block: 1, upscale: 4, weights: {tmp_path / 'weak.pth'}}}, "
           f"bicubic: {{type: Bicubic, upscale: 4}}}}}}")
    opt = load_options(str(PLAIN), ["num_gpu=0", "network_g.num_feat=8", "network_g.num_block=1", "train.ema_decay=0",
                                    "train.warmup_iter=-1", ccr], is_train=True)
    step = build_training(opt, torch.device("cpu"))
    model = step.model
    frozen = model.contrast_loss.networks["weak"]
    before_g = model.net_g.conv_first.weight.clone()
    for it in (1, 2):
        torch.manual_seed(it)
        logs = step({"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 32, 32)}, it)
        assert torch.isfinite(logs["l_contrast"])
    assert not torch.equal(before_g, model.net_g.conv_first.weight)  # the target network trains ...
    assert all(torch.equal(a, b) for a, b in zip(frozen.state_dict().values(), weak.state_dict().values()))
    assert not frozen.training  # ... the negative network neither trains nor leaves eval mode


def test_ccr_option_trains_from_the_command_line(tmp_path, short_run_args):
    cfg = ("train.contrast_opt={type: CCRLoss, vgg_weights: random, layer_weights: {relu1_1: 1.0}, "
           "negatives: {bicubic: {type: Bicubic, upscale: 4}}}")
    assert train_main(short_run_args(PLAIN, tmp_path, "ccr", "path.pretrain_network_g=null", "val.val_freq=0",
                                     "datasets.train.batch_size_per_gpu=2", "train.total_iter=2", cfg)) == 0
    log_text = "".join(p.read_text() for p in (tmp_path / "ccr").rglob("*.log"))
    assert "l_contrast" in log_text
