"""Tests of option loading: YAML numbers, overrides, schema validation and its error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mcir.errors import OptionError
from mcir.options import apply_overrides, load_options, parse_yaml

DEMO = Path(__file__).resolve().parents[2] / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "opt.yml"
    p.write_text(text)
    return str(p)


def _demo_with(tmp_path: Path, edit) -> str:
    opt = yaml.safe_load(DEMO.read_text())
    edit(opt)
    p = tmp_path / "opt.yml"
    p.write_text(yaml.safe_dump(opt))
    return str(p)


def test_scientific_notation_is_a_number():
    assert parse_yaml("a: 2e-4\nb: 1E3\nc: '2e-4'\nd: 5") == {"a": 2e-4, "b": 1000.0, "c": "2e-4", "d": 5}


def test_demo_options_resolve_with_defaults():
    opt = load_options(str(DEMO))
    assert opt["train"]["optim_g"]["lr"] == pytest.approx(1e-3)
    assert isinstance(opt["train"]["optim_g"]["lr"], float)
    assert opt["datasets"]["train"]["use_shuffle"] is True  # default filled
    assert opt["path"]["param_key_g"] == "params"
    assert opt["val"]["metrics"]["psnr"]["better"] == "higher"


def test_set_override_parses_yaml_values():
    opt = load_options(str(DEMO), ["train.total_iter=7", "network_g.rgb_mean=[0.5, 0.5, 0.5]", "val.save_img=true"])
    assert opt["train"]["total_iter"] == 7
    assert opt["network_g"]["rgb_mean"] == [0.5, 0.5, 0.5]
    assert opt["val"]["save_img"] is True


def test_override_never_evaluates():
    tree = {"a": {}}
    out = apply_overrides(tree, ["a.b=__import__('os').system('false')"])
    assert out["a"]["b"] == "__import__('os').system('false')"
    assert tree == {"a": {}}  # the input is not changed


def test_override_needs_equals():
    with pytest.raises(OptionError, match="key.path=value"):
        apply_overrides({}, ["train.total_iter"])


def test_unknown_top_level_key_names_file_and_closest(tmp_path):
    path = _demo_with(tmp_path, lambda o: o.update(manual_sed=1))
    with pytest.raises(OptionError) as exc:
        load_options(path)
    msg = str(exc.value)
    assert path in msg and "manual_sed" in msg and "manual_seed" in msg


def test_misspelled_nested_key(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["train"].update(totl_iter=5))
    with pytest.raises(OptionError, match=r"train\.totl_iter.*total_iter"):
        load_options(path)


def test_unknown_arch_argument_suggests_closest(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["network_g"].update(num_blocks=2))
    with pytest.raises(OptionError, match=r"network_g\.num_blocks.*num_block"):
        load_options(path)


def test_unknown_registry_name(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["network_g"].update(type="EDSRR"))
    with pytest.raises(OptionError, match=r"network_g\.type.*EDSR"):
        load_options(path)


def test_wrong_type_is_reported(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["train"].update(total_iter="many"))
    with pytest.raises(OptionError, match=r"train\.total_iter: expected an integer > 0, got 'many'"):
        load_options(path)


def test_integral_float_accepted_for_int(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["val"].update(val_freq=5e3))
    assert load_options(path)["val"]["val_freq"] == 5000


def test_optimizer_kwargs_checked(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["train"]["optim_g"].update(betas1=0.9))
    with pytest.raises(OptionError, match=r"train\.optim_g\.betas1.*betas"):
        load_options(path)


def test_dataset_keys_checked(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["datasets"]["train"].update(gt_sise=96))
    with pytest.raises(OptionError, match=r"datasets\.train\.gt_sise.*gt_size"):
        load_options(path)


def test_dataset_section_names(tmp_path):
    path = _demo_with(tmp_path, lambda o: o["datasets"].update(valid=o["datasets"]["val"], extra={}))
    with pytest.raises(OptionError, match=r"datasets\.extra"):
        load_options(path)


def test_missing_required_key(tmp_path):
    path = _demo_with(tmp_path, lambda o: o.pop("name"))
    with pytest.raises(OptionError, match=r"name: missing required key"):
        load_options(path)


def test_test_options_do_not_need_train(tmp_path):
    path = _demo_with(tmp_path, lambda o: o.pop("train"))
    assert load_options(path, is_train=False)["name"] == "demo_EDSR_tiny_x4_T91"
    with pytest.raises(OptionError, match="train: missing required key"):
        load_options(path, is_train=True)


def test_malformed_yaml_names_line(tmp_path):
    path = _write(tmp_path, "name: x\nnetwork_g: [\n")
    with pytest.raises(OptionError, match=r"opt\.yml: malformed YAML: line \d+"):
        load_options(path)


def test_missing_file():
    with pytest.raises(OptionError, match="option file not found"):
        load_options("/nonexistent/opt.yml")


def test_imports_registers_user_arch(tmp_path, monkeypatch):
    pkg = tmp_path / "my_pkg_opt_test"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "my_arch.py").write_text(
        "from torch import nn\n"
        "from mcir.registry import ARCH_REGISTRY\n"
        "@ARCH_REGISTRY.register()\n"
        "class MyTinyNetForOptionsTest(nn.Module):\n"
        "    def __init__(self, width: int = 4):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 3, 3, padding=1)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def edit(o):
        o["imports"] = ["my_pkg_opt_test.my_arch"]
        o["network_g"] = {"type": "MyTinyNetForOptionsTest", "width": 8}

    opt = load_options(_demo_with(tmp_path, edit))
    assert opt["network_g"] == {"type": "MyTinyNetForOptionsTest", "width": 8}


def test_bad_import_is_an_option_error(tmp_path):
    path = _demo_with(tmp_path, lambda o: o.update(imports=["no_such_module_xyz"]))
    with pytest.raises(OptionError, match=r"imports\[0\].*no_such_module_xyz"):
        load_options(path)


BASICSR_EDSR = """
name: 201_EDSR_Mx2_f64b16_DIV2K_300k_B16G1_wandb
model_type: SRModel
scale: 2
num_gpu: 1
manual_seed: 10
datasets:
  train:
    name: DIV2K
    type: PairedImageDataset
    dataroot_gt: datasets/DIV2K/DIV2K_train_HR_sub
    dataroot_lq: datasets/DIV2K/DIV2K_train_LR_bicubic/X2_sub
    filename_tmpl: '{}'
    io_backend:
      type: disk
    gt_size: 96
    use_hflip: true
    use_rot: true
    use_shuffle: true
    num_worker_per_gpu: 6
    batch_size_per_gpu: 16
    dataset_enlarge_ratio: 1000
    prefetch_mode: ~
  val:
    name: Set5
    type: PairedImageDataset
    dataroot_gt: datasets/Set5/GTmod12
    dataroot_lq: datasets/Set5/LRbicx2
    io_backend:
      type: disk
network_g:
  type: EDSR
  num_in_ch: 3
  num_out_ch: 3
  num_feat: 64
  num_block: 16
  upscale: 2
  res_scale: 1
  img_range: 255.
  rgb_mean: [0.4488, 0.4371, 0.4040]
path:
  pretrain_network_g: ~
  strict_load_g: true
  resume_state: ~
train:
  ema_decay: 0.999
  optim_g:
    type: Adam
    lr: !!float 1e-4
    weight_decay: 0
    betas: [0.9, 0.99]
  scheduler:
    type: MultiStepLR
    milestones: [200000]
    gamma: 0.5
  total_iter: 300000
  warmup_iter: -1
  pixel_opt:
    type: L1Loss
    loss_weight: 1.0
    reduction: mean
val:
  val_freq: !!float 5e3
  save_img: false
  metrics:
    psnr:
      type: calculate_psnr
      crop_border: 2
      test_y_channel: false
logger:
  print_freq: 100
  save_checkpoint_freq: !!float 5e3
  use_tb_logger: true
  wandb:
    project: ~
    resume_id: ~
dist_params:
  backend: nccl
  port: 29500
"""


def test_a_basicsr_option_file_validates_unchanged(tmp_path):
    """The layout of BasicSR's own EDSR recipe (current key names) is accepted as it is."""
    opt = load_options(_write(tmp_path, BASICSR_EDSR))
    assert opt["val"]["val_freq"] == 5000 and opt["train"]["optim_g"]["lr"] == pytest.approx(1e-4)


def test_older_basicsr_key_names_get_a_suggestion(tmp_path):
    path = _write(tmp_path, BASICSR_EDSR.replace("use_hflip:", "use_flip:"))
    with pytest.raises(OptionError, match=r"datasets\.train\.use_flip.*use_hflip"):
        load_options(path)


def test_wandb_project_is_refused_not_ignored(tmp_path):
    path = _write(tmp_path, BASICSR_EDSR.replace("project: ~", "project: my_proj"))
    with pytest.raises(OptionError, match=r"logger\.wandb\.project"):
        load_options(path)
