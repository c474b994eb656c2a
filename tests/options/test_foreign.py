"""Option files of BasicSR, the published MCIR code, NAFNet and Restormer: translated into the same network,
schedule and negatives (fixtures: the published files' keys and values, see tests/options/fixtures_foreign/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import torch
from torch import nn

from mcir.method.eq1_negatives import NegativeBank
from mcir.errors import OptionError
from mcir.options.foreign import MODEL_ALIASES, translate
from mcir.options import load_options, parse_yaml

FIXTURES = Path(__file__).resolve().parents[1] / "options" / "fixtures_foreign"
REPO = Path(__file__).resolve().parents[2]
# Parameter counts of the original networks, counted by building each repository's own arch class with the
# file's network_g (BasicSR 1.4.2 SwinIR / EDSR, MCLIR FFANet, NAFNet NAFNetLocal, Restormer Restormer).
ORIGINAL_PARAMS = {"SwinIR": 11_900_199, "EDSR": 1_517_571, "FFANet": 4_455_913, "NAFNetLocal": 17_111_907,
                   "Restormer": 26_126_644}


def _fixture(name: str) -> Dict[str, Any]:
    return parse_yaml((FIXTURES / name).read_text())


def _load(name: str, overrides: List[str] = (), is_train: bool = True, notes: List[str] = None) -> Dict[str, Any]:
    return load_options(str(FIXTURES / name), overrides, is_train=is_train,
                        notify=(notes.append if notes is not None else lambda _: None))


def _params(cfg: Dict[str, Any]) -> int:
    """Parameter count of the network ``cfg`` describes (built on the meta device: no memory, no init time)."""
    from mcir.archs import build_network

    with torch.device("meta"):
        return sum(p.numel() for p in build_network(cfg).parameters())


def _schedule(opt: Dict[str, Any]) -> tuple:
    """The optimizer and scheduler that mcir builds from ``opt['train']`` (on a dummy parameter)."""
    import mcir.core.optimizers  # noqa: F401 - registers the optimizers
    import mcir.core.schedulers  # noqa: F401 - registers the schedulers
    from mcir.registry import OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY, construct

    optimizer = construct(OPTIMIZER_REGISTRY, opt["train"]["optim_g"], params=[nn.Parameter(torch.zeros(1))])
    return optimizer, construct(SCHEDULER_REGISTRY, opt["train"]["scheduler"], optimizer=optimizer)


def test_basicsr_edsr_files_load_unchanged():
    for name, is_train in (("basicsr_train_EDSR_Mx4.yml", True), ("basicsr_test_EDSR_Mx4.yml", False)):
        raw = _fixture(name)
        assert translate(raw).changes == [] and translate(raw).options == raw
        notes: List[str] = []
        opt = _load(name, is_train=is_train, notes=notes)
        assert notes == [] and opt["model_type"] == "SRModel"
    assert _params(opt["network_g"]) == ORIGINAL_PARAMS["EDSR"]


def test_basicsr_swinir_scratch_same_network_and_schedule():
    notes: List[str] = []
    opt = _load("basicsr_train_SwinIR_SRx4_scratch.yml", notes=notes)
    assert opt["model_type"] == "SRModel"
    assert len(notes) == 1 and "model_type: SwinIRModel -> SRModel" in notes[0]
    assert _params(opt["network_g"]) == ORIGINAL_PARAMS["SwinIR"]
    optimizer, scheduler = _schedule(opt)
    group = optimizer.param_groups[0]
    assert type(optimizer).__name__ == "Adam" and group["lr"] == 2e-4 and group["betas"] == (0.9, 0.99)
    assert dict(scheduler.milestones) == {250000: 1, 400000: 1, 450000: 1, 475000: 1} and scheduler.gamma == 0.5
    assert opt["train"]["total_iter"] == 500000 and opt["train"]["ema_decay"] == 0.999


def test_mclir_ffanet_file_same_network_schedule_negatives_and_lambda():
    notes: List[str] = []
    name = "mclir_FFANet_RESIDE_IN_fromScratch.yml"
    opt = _load(name, notes=notes)
    assert opt["model_type"] == "MCIRModel" and opt["network_g"]["input_norm"] is True  # their model normalises
    assert _params(opt["network_g"]) == ORIGINAL_PARAMS["FFANet"]
    from mcir.build import build_training

    # The model itself with one block per group (the five FFA-Net copies take a minute to clone here).
    small = _load(name, ["train.neg_opt.vgg_weights=random", "network_g.blocks=1"])
    with pytest.warns(UserWarning, match="random"):
        step = build_training(small, torch.device("cpu"))
    model = step.model
    bank = model.negatives
    assert bank.steps == [100, 200, 500, 1000] and bank.decays == [0.1] * 4
    assert bank.init == "blend" and bank.neg_start == 0.1
    assert model.neg_lambda == 0.001  # λ = perceptual_opt.perceptual_weight, the weight of the subtracted term
    assert model.spn.layer_weights == {"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5}
    assert model.spn.vgg.vgg_type == "vgg16"
    assert model.perceptual_loss is None  # their perceptual_opt is the negative term, not a positive one
    assert step.optim.clip_grad_norm is None  # use_grad_norm is never read by their code: no clipping
    optimizer = step.optim.optimizer
    group = optimizer.param_groups[0]
    assert type(optimizer).__name__ == "AdamW" and group["lr"] == 2e-4 and group["betas"] == (0.9, 0.9)
    assert type(step.scheduler).__name__ == "CosineAnnealingLR"
    assert (step.scheduler.T_max, step.scheduler.eta_min) == (100000, 1e-8)
    assert opt["train"]["total_iter"] == 500000 and opt["val"]["use_ema"] is False
    assert any("dropped path_neg" in n for n in notes) and any("dropped train.use_grad_norm" in n for n in notes)


def _original_negatives(neg_iter: List[int], neg_decay: List[float], thetas: List[float]) -> Dict[int, float]:
    """What the published multi-negative model does (sr_neg_multi_model.py, after each optimizer step): negative
    ``idx`` is updated when ``t % neg_iter[::-1][idx] == 0`` as ``θ'_idx ← d·θ'_idx + (1 − d)·θ`` with
    ``d = neg_decay[idx]``. Returns {update interval: final weight} of a one-weight network."""
    negs = [thetas[0]] * len(neg_iter)
    for t, theta in enumerate(thetas[1:], start=1):
        for idx, every in enumerate(neg_iter[::-1]):
            if t % every == 0:
                negs[idx] = neg_decay[idx] * negs[idx] + (1 - neg_decay[idx]) * theta
    return {every: negs[idx] for idx, every in enumerate(neg_iter[::-1])}


def test_mclir_decay_pairing_is_the_one_the_code_runs():
    # The published file has four equal decays, so any pairing reads the same there. With distinct decays the
    # published code pairs neg_decay[i] with neg_iter[N-1-i] (it walks neg_iter reversed); the paper gives one
    # w for all negatives, so nothing says otherwise: the translation keeps the pairs the code actually runs,
    # and the EMA roles are the same (w is the share the negative keeps of itself, as mcir's decay).
    raw = _fixture("mclir_FFANet_RESIDE_IN_fromScratch.yml")
    raw["train"]["neg_iter"] = [2, 3, 5, 7]
    raw["train"]["neg_decay"] = [0.1, 0.2, 0.3, 0.4]
    neg = translate(raw).options["train"]["negatives"]
    assert neg["steps"] == [2, 3, 5, 7] and neg["decay"] == [0.4, 0.3, 0.2, 0.1]
    thetas = [float((t * 37) % 11) for t in range(60)]  # target weights over 59 iterations
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(thetas[0])
    bank = NegativeBank(net, steps=neg["steps"], decay=neg["decay"], init="target")
    for t, theta in enumerate(thetas[1:], start=1):
        with torch.no_grad():
            net.weight.fill_(theta)
        bank.update(net, t)
    ours = {s: n.module.weight.item() for s, n in zip(bank.steps, bank.negatives)}
    expected = _original_negatives([2, 3, 5, 7], [0.1, 0.2, 0.3, 0.4], thetas)
    assert ours == pytest.approx(expected)


def test_mclir_defaults_and_keys_without_equivalent():
    raw = _fixture("mclir_FFANet_RESIDE_IN_fromScratch.yml")
    del raw["train"]["neg_start"], raw["train"]["perceptual_opt"]
    out = translate(raw).options["train"]
    assert out["negatives"]["neg_start"] == 0.01  # the multi-negative model's default share of random weights
    assert out["neg_opt"]["loss_weight"] == 0.0  # no perceptual_opt: the original has no negative term
    raw = _fixture("mclir_FFANet_RESIDE_IN_fromScratch.yml")
    raw["train"]["use_grad_clip"] = 0.05
    assert translate(raw).options["train"]["clip_grad_norm"] == 0.05  # this key is read: max gradient norm
    raw["train"]["perceptual_opt"]["criterion"] = "fro"
    with pytest.raises(OptionError, match=r"x\.yml: train\.perceptual_opt\.criterion: SPNLoss"):
        translate(raw, file="x.yml")
    raw["model_type"] = "ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP"
    with pytest.raises(OptionError, match="model_type: .* has no mcir equivalent: it updates a negative"):
        translate(raw)


def test_mclir_single_negative_model():
    # SRNegModel (sr_neg_model.py): one negative with scalar neg_iter / neg_decay, neg_start defaulting to 0.999,
    # and a style term that is subtracted too (no SPNLoss equivalent).
    raw = _fixture("mclir_FFANet_RESIDE_IN_fromScratch.yml")
    raw["model_type"] = "SRNegModel"
    raw["train"].update(neg_iter=500, neg_decay=0.3)
    del raw["train"]["neg_start"]
    out = translate(raw).options
    assert out["train"]["negatives"] == {"steps": [500], "decay": 0.3, "neg_start": 0.999, "init": "blend"}
    assert "input_norm" not in out["network_g"] and "use_ema" not in out["val"]  # FFA-Net model only
    raw["train"]["perceptual_opt"]["style_weight"] = 1.0
    with pytest.raises(OptionError, match="train.perceptual_opt.style_weight: SRNegModel subtracts a style term"):
        translate(raw)


def test_nafnet_gopro_width32_same_network_schedule_and_clipping():
    opt = _load("nafnet_train_GoPro_NAFNet-width32.yml")
    assert opt["model_type"] == "RestorationModel" and opt["network_g"]["type"] == "NAFNetLocal"
    assert _params(opt["network_g"]) == ORIGINAL_PARAMS["NAFNetLocal"]
    optimizer, scheduler = _schedule(opt)
    group = optimizer.param_groups[0]
    assert type(optimizer).__name__ == "AdamW" and group["lr"] == 1e-3 and group["betas"] == (0.9, 0.9)
    assert group["weight_decay"] == 1e-3
    assert type(scheduler).__name__ == "CosineAnnealingLR" and (scheduler.T_max, scheduler.eta_min) == (200000, 1e-7)
    train = opt["train"]
    assert train["total_iter"] == 200000 and train["clip_grad_norm"] == 0.01 and train["ema_decay"] == 0.0
    assert opt["datasets"]["train"]["use_hflip"] is True  # their use_flip


def test_nafnet_test_grids_become_tiles_where_equivalent():
    raw = _fixture("nafnet_test_GoPro_NAFNet-width32.yml")
    assert "grids" not in translate(raw).options["val"]  # grids: false is mcir's whole-image default
    raw["val"].update(grids=True, crop_size_h=256, crop_size_w=256)
    val = translate(raw).options["val"]
    assert (val["tile"], val["tile_overlap"]) == (256, 0) and "crop_size_w" not in val
    raw["scale"] = 2  # their crops are in ground-truth pixels, mcir's tiles in input pixels
    assert translate(raw).options["val"]["tile"] == 128
    raw["val"].update(crop_size_w=320)
    assert "tile" not in translate(raw).options["val"]  # non-square crops: dropped with the reason


def test_restormer_deraining_schedule_progressive_phases_and_network():
    notes: List[str] = []
    opt = _load("restormer_Deraining_Restormer.yml", notes=notes)
    assert opt["model_type"] == "RestorationModel" and opt["network_g"]["type"] == "Restormer"
    optimizer, scheduler = _schedule(opt)
    group = optimizer.param_groups[0]
    assert type(optimizer).__name__ == "AdamW" and group["lr"] == 3e-4 and group["betas"] == (0.9, 0.999)
    assert type(scheduler).__name__ == "CosineAnnealingRestartCyclicLR"
    assert (scheduler.periods, scheduler.restart_weights, scheduler.eta_mins) == ([92000, 208000], [1, 1], [3e-4, 1e-6])
    train, data = opt["train"], opt["datasets"]["train"]
    assert train["total_iter"] == 300000 and train["clip_grad_norm"] == 0.01
    assert (data["type"], data["gt_size"], data["batch_size_per_gpu"]) == ("PairedImageDataset", 384, 8)
    # the published stages, as mcir's progressive phases (per-process batches, like batch_size_per_gpu)
    assert data["progressive"] == {"iters": [92000, 64000, 48000, 36000, 36000, 24000],
                                   "gt_sizes": [128, 160, 192, 256, 320, 384], "batch_sizes": [8, 5, 4, 2, 1, 1]}
    assert not {"mini_batch_sizes", "iters", "gt_sizes"} & set(data)
    assert any("datasets.train.progressive" in n for n in notes)
    assert data["use_hflip"] and data["use_rot"] and "mixing_augs" not in train
    assert not {"window_size", "max_minibatch", "rgb2bgr", "use_image"} & set(opt["val"])  # dropped with reasons
    assert _params(opt["network_g"]) == ORIGINAL_PARAMS["Restormer"]
    raw = _fixture("restormer_Deraining_Restormer.yml")
    del raw["datasets"]["train"]["iters"]
    with pytest.raises(OptionError, match=r"datasets\.train\.mini_batch_sizes: progressive training needs iters"):
        translate(raw)


def test_every_alias_targets_a_registered_model():
    from mcir.components import load_components
    from mcir.registry import MODEL_REGISTRY

    load_components()
    assert all(alias.target in MODEL_REGISTRY for alias in MODEL_ALIASES.values())


def _cli_args(opt: str, sets: List[str], *flags: str) -> List[str]:
    args = ["-opt", str(FIXTURES / opt), *flags]
    for item in sets:
        args += ["--set", item]
    return args


def _pair_folders(root: Path) -> None:
    """``root/gt`` and ``root/lq``: two 40x40 crops of a Set5 image as input and target (a same-size pair set)."""
    import cv2

    image = cv2.imread(str(REPO / "datasets" / "Set5" / "HR" / "head.png"))
    for folder in ("gt", "lq"):
        (root / folder).mkdir()
        for i in range(2):
            cv2.imwrite(str(root / folder / f"{i}.png"), image[40 * i:40 * i + 40, :40])


def test_train_translates_a_published_mcir_file_with_a_notice_per_change(tmp_path, capsys):
    from mcir.train import main as train_main

    _pair_folders(tmp_path)
    sets = [f"path.experiments_root={tmp_path / 'run'}", *(f"datasets.{s}.dataroot_{k}={tmp_path / k}"
                                                           for s in ("train", "val") for k in ("gt", "lq")),
            "datasets.train.gt_size=16", "datasets.train.batch_size_per_gpu=1", "datasets.train.num_worker_per_gpu=0",
            "datasets.train.pin_memory=false", "network_g.blocks=1", "network_g.dim=16", "train.total_iter=1",
            "train.negatives.steps=[1]", "train.negatives.decay=[0.1]", "train.neg_opt.vgg_weights=random",
            "val.val_freq=1",
            "logger.print_freq=1", "logger.save_checkpoint_freq=1", "logger.use_tb_logger=false", "num_gpu=0"]
    with pytest.warns(UserWarning, match="random"):
        assert train_main(_cli_args("mclir_FFANet_RESIDE_IN_fromScratch.yml", sets)) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    expected = translate(_fixture("mclir_FFANet_RESIDE_IN_fromScratch.yml")).changes
    assert len(notes) == len(expected) == 14
    assert all(n.endswith(c.line()) for n, c in zip(notes, expected))
    assert list((tmp_path / "run").rglob("net_g_1.pth"))  # trained an iteration, validated, saved


def test_test_py_translates_a_nafnet_test_file(tmp_path, capsys):
    from mcir.test import main as test_main

    _pair_folders(tmp_path)
    sets = [f"path.results_root={tmp_path / 'res'}", "path.pretrain_network_g=null", "num_gpu=0",
            f"datasets.test.dataroot_gt={tmp_path / 'gt'}", f"datasets.test.dataroot_lq={tmp_path / 'lq'}",
            "datasets.test.io_backend.type=disk",
            "network_g.width=8", "network_g.enc_blk_nums=[1]", "network_g.dec_blk_nums=[1]", "val.save_img=false"]
    assert test_main(_cli_args("nafnet_test_GoPro_NAFNet-width32.yml", sets)) == 0
    err = capsys.readouterr().err
    assert "model_type: ImageRestorationModel -> RestorationModel" in err and "dropped val.grids: off" in err
    assert (tmp_path / "res" / "metrics.json").is_file()


def test_strict_options_refuses_in_one_line(capsys):
    from mcir.train import main as train_main

    assert train_main(_cli_args("basicsr_train_SwinIR_SRx4_scratch.yml", [], "--strict_options")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model_type: BasicSR's model type 'SwinIRModel'" in err[0]
    assert "mcir-convert-options" in err[0]
