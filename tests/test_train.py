"""End-to-end tests of train.py: a short real run, exact stop-and-resume, and bad-input behaviour."""

from __future__ import annotations

from pathlib import Path
import pytest
import torch

from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"


@pytest.fixture
def tiny(tmp_path, short_run_args):
    """Arguments for a seconds-long run of the demo recipe in ``tmp_path``."""
    return lambda name, *extra: short_run_args(DEMO, tmp_path, name, "datasets.train.batch_size_per_gpu=4",
                                               "val.val_freq=3", *extra)


def _weights(root: Path, it: int) -> dict:
    return torch.load(root / "models" / f"net_g_{it}.pth", weights_only=True)


def test_short_run_writes_basicsr_weights_and_states(tiny, tmp_path):
    assert train_main(tiny("run")) == 0
    root = tmp_path / "run"
    w = _weights(root, 6)
    assert set(w) == {"params", "params_ema"}
    assert "conv_first.weight" in w["params"]
    assert sorted(p.name for p in (root / "training_states").iterdir()) == [
        "3.state", "3.state.sha256", "6.state", "6.state.sha256"
    ]
    assert any(p.name.startswith("options_") for p in (root / "logs").iterdir())
    assert (root / "models" / "net_g_latest.pth").is_file()


def test_stop_and_resume_is_bit_identical(tiny, tmp_path):
    assert train_main(tiny("full")) == 0
    # "Stop" after 3 iterations, then continue to 6 with --auto_resume.
    assert train_main(tiny("split", "train.total_iter=3")) == 0
    assert train_main(tiny("split") + ["--auto_resume"]) == 0
    full, split = _weights(tmp_path / "full", 6), _weights(tmp_path / "split", 6)
    for key in ("params", "params_ema"):
        for name, tensor in full[key].items():
            assert torch.equal(tensor, split[key][name]), f"{key}.{name} differs after resume"
    # and the run really moved: weights at 3 and 6 differ
    assert not torch.equal(_weights(tmp_path / "full", 3)["params"]["conv_first.weight"],
                           full["params"]["conv_first.weight"])


def test_new_run_archives_the_old_folder(tiny, tmp_path):
    args = tiny("again", "train.total_iter=1", "logger.save_checkpoint_freq=1", "val.val_freq=0")
    assert train_main(args) == 0
    assert train_main(args) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "again" and names[1].startswith("again_archived_") and len(names) == 2


def test_bad_input_exits_nonzero_with_one_line_and_leaves_nothing(tiny, tmp_path, capsys):
    args = tiny("bad", "datasets.train.gt_size=400")
    assert train_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gt_size 400 is larger than the GT image" in err[0] and "T91" in err[0]
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("network_g.type=EDSRR", "network_g.type"),
        ("datasets.train.dataroot_gt=/no/such/folder", "/no/such/folder"),
        ("train.optim_g.lrr=1", "train.optim_g.lrr"),
        ("network_g.type=Bicubic", "nothing to train"),
    ],
)
def test_bad_options_fail_cleanly(tiny, tmp_path, capsys, override, expected):
    if override.endswith("Bicubic"):
        override_args = [override, "network_g={type: Bicubic, upscale: 4}"]
    else:
        override_args = [override]
    assert train_main(tiny("bad", *override_args)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "bad").exists()


def test_corrupt_resume_state_is_reported(tiny, tmp_path, capsys):
    state = tmp_path / "broken.state"
    state.write_bytes(b"\x00garbage")
    assert train_main(tiny("bad", f"path.resume_state={state}")) == 1
    assert "broken.state: cannot load checkpoint" in capsys.readouterr().err
