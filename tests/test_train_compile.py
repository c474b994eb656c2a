"""train.compile / val.compile through train.py: plain checkpoint names, resume across compiled and plain runs.

torch.compile runs with dynamo's ``eager`` backend here (real graph capture, no C++ build: inductor takes
about 40 s for a tiny EDSR on the 2-core CPU with a cold cache), so a compiled run computes exactly what a
plain run does and the runs can be compared bit for bit.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import List

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.build import build_training
from mcir.core.compile import CompiledModule
from mcir.options import load_options
from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
SPN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91_SPN.yml"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


@pytest.fixture
def compiled_modules(monkeypatch) -> List[str]:
    """torch.compile with the eager backend; returns the class names of the modules it was asked to compile."""
    real, names = torch.compile, []

    def compile_eager(module, **kwargs):
        names.append(type(module).__name__)
        return real(module, backend="eager")

    monkeypatch.setattr(torch, "compile", compile_eager)
    return names


def _weights(root: Path, it: int) -> dict:
    return torch.load(root / "models" / f"net_g_{it}.pth", weights_only=True)


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k][n], b[k][n]) for k in ("params", "params_ema") for n in a[k])


def test_compiled_runs_save_plain_names_and_resume_both_ways(short_run_args, tmp_path, compiled_modules):
    run = functools.partial(short_run_args, DEMO, tmp_path)
    base = ["train.total_iter=4", "train.scheduler.periods=[4]", "logger.save_checkpoint_freq=2",
            "datasets.train.batch_size_per_gpu=2", "val.val_freq=2"]
    on = ["train.compile=true", "val.compile=true"]
    assert train_main(run("plain", *base)) == 0
    assert compiled_modules == []
    # compiled, stopped after 2 iterations; then resumed without compiling
    assert train_main(run("split", *base, *on, "train.total_iter=2")) == 0
    assert compiled_modules == ["EDSR", "EDSR"]  # the training forward and the validation (EMA) network
    weights = _weights(tmp_path / "split", 2)
    for key in ("params", "params_ema"):
        EDSR(num_feat=8, num_block=1, upscale=4).load_state_dict(weights[key], strict=True)
    states = [torch.load(tmp_path / r / "training_states" / "2.state", weights_only=True)["model"]
              for r in ("split", "plain")]
    for part in ("net_g", "ema", "optimizer"):
        assert str(list(states[0][part])) == str(list(states[1][part])), part
    assert "_orig_mod" not in str(list(states[0]["net_g"]) + list(states[0]["ema"]))
    assert train_main(run("split", *base) + ["--auto_resume"]) == 0
    assert _same(_weights(tmp_path / "plain", 4), _weights(tmp_path / "split", 4))
    # the plain run's state at 2, resumed compiled
    state2 = tmp_path / "plain" / "training_states" / "2.state"
    assert train_main(run("resumed", *base, *on, f"path.resume_state={state2}")) == 0
    assert _same(_weights(tmp_path / "plain", 4), _weights(tmp_path / "resumed", 4))
    assert not _same(_weights(tmp_path / "plain", 2), _weights(tmp_path / "plain", 4))


def test_unavailable_compile_warns_once_and_trains_plain(short_run_args, tmp_path, monkeypatch):
    def no_compiler(module, **kwargs):
        raise RuntimeError("Compiler: cc is not found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    args = short_run_args(DEMO, tmp_path, "nocc", "train.total_iter=1", "logger.save_checkpoint_freq=1",
                          "val.val_freq=0", "datasets.train.batch_size_per_gpu=2", "train.compile=true")
    with pytest.warns(RuntimeWarning, match=r"torch.compile of the target network failed \(RuntimeError: Compiler"):
        assert train_main(args) == 0
    assert "conv_first.weight" in _weights(tmp_path / "nocc", 1)["params"]


def test_spn_compiles_target_negatives_and_vgg_keeping_the_state(compiled_modules):
    sets = ["path.pretrain_network_g=null", "train.neg_opt.vgg_weights=random", "network_g.num_feat=8",
            "network_g.num_block=1", "num_gpu=0"]
    plain = build_training(load_options(str(SPN), sets, is_train=True), torch.device("cpu"))
    step = build_training(load_options(str(SPN), sets + ["train.compile=true"], is_train=True), torch.device("cpu"))
    model = step.model
    assert isinstance(step.train_net, CompiledModule) and step.train_net.module is model.net_g
    assert all(isinstance(f, CompiledModule) for f in model.negatives._forwards)
    assert len(model.negatives._forwards) == len(model.negatives) and isinstance(model.spn._features, CompiledModule)
    assert sorted(compiled_modules) == ["EDSR"] * (1 + len(model.negatives)) + ["VGGFeatureExtractor"]
    assert list(step.state_dict()["net_g"]) == list(plain.state_dict()["net_g"])
    assert list(step.state_dict()["negatives"]) == list(plain.state_dict()["negatives"])
    step.load_state_dict(plain.state_dict())  # a plain run's state loads into a compiled step
    model.spn.load_state_dict(plain.model.spn.state_dict())  # the random VGG is not part of the state
    torch.manual_seed(0)
    batch = {"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 32, 32)}
    logs_c, logs_p = step(batch, 1), plain(batch, 1)
    assert torch.equal(logs_c["l_neg"], logs_p["l_neg"]) and logs_c["l_neg"] > 0
    assert all(torch.equal(a, b) for a, b in zip(model.net_g.parameters(), plain.model.net_g.parameters()))
