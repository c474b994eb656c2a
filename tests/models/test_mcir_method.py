"""Guards of the MCIR method itself (Eq. 1–4) through ``MCIRModel`` steps: the sign of the SPN term, the
negatives' update rule and schedule, the VGG distance against an independent formula, and resume.

Every VGG here is random (no ImageNet weights offline): either ``vgg_weights: random`` or a file holding a
randomly initialised torchvision VGG16 ``features`` stack, which the independent formula loads too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import pytest
import torch
import torchvision
import yaml
from torch import nn

from mcir.archs import ARCH_REGISTRY
from mcir.archs.arch_util import ArchBase
from mcir.build import build_training
from mcir.options import load_options
from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
SPN_DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91_SPN.yml"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")

EDSR_TINY = {"type": "EDSR", "num_feat": 8, "num_block": 1, "upscale": 2}
BN_NET = {"type": "TinyBNNetForTests", "num_feat": 8}  # registered by the ``build`` fixture

# Eq. 3–4 as published, written out here (not imported), so a changed default is caught.
LAYER_WEIGHTS = (0.2, 0.3, 0.5)  # relu1_2, relu2_2, relu3_3
TV_VGG16_PREFIX = (4, 9, 16)  # torchvision vgg16().features[:k] ends at relu1_2, relu2_2, relu3_3
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


class TinyBNNetForTests(ArchBase):
    """conv → BatchNorm → ReLU → conv, plus the input: its BatchNorm running statistics change on every
    training forward, so averaging buffers (and leaving them alone) can be observed.

    Args:
        num_feat: Hidden channels.
    """

    def __init__(self, num_feat: int = 8):
        super().__init__()
        self.conv_in = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.bn = nn.BatchNorm2d(num_feat)
        self.conv_out = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch (same size as the input)."""
        return x + self.conv_out(torch.relu(self.bn(self.conv_in(x))))


# ---- the two places that know how a model is built and stepped ---------------------------------
def _deep_update(base: Dict[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``build(train=..., network=..., seed=...)``: an MCIRModel from a tiny option file, through
    ``load_options`` and ``build_training`` (SGD, no EMA, random VGG unless ``train`` says otherwise): the
    training step, whose ``model`` is the MCIRModel."""
    # Registered for this test only (as tests/metrics/test_metric_set.py does): no arch outlives it.
    monkeypatch.setitem(ARCH_REGISTRY._obj_map, "TinyBNNetForTests", TinyBNNetForTests)
    count = iter(range(1000))

    def make(train: Optional[Mapping[str, Any]] = None, network: Mapping[str, Any] = EDSR_TINY,
             seed: int = 0) -> Any:
        opt = {
            "name": "method",
            "model_type": "MCIRModel",
            "scale": int(network.get("upscale", 1)),
            "num_gpu": 0,
            "network_g": dict(network),
            "datasets": {"train": {"dataroot_gt": "not/read/here", "gt_size": 24}},  # built by train.py only
            "train": _deep_update(
                {
                    "optim_g": {"type": "SGD", "lr": 1e-2},
                    "total_iter": 100,
                    "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0},
                    "negatives": {"steps": [2, 3]},
                    "neg_opt": {"type": "SPNLoss", "loss_weight": 1.0, "vgg_weights": "random"},
                },
                copy.deepcopy(dict(train or {})),
            ),
        }
        path = tmp_path / f"opt_{next(count)}.yml"
        path.write_text(yaml.safe_dump(opt), encoding="utf-8")
        torch.manual_seed(seed)
        return build_training(load_options(str(path), is_train=True), torch.device("cpu"))

    return make


def _step(model: Any, batch: Any, it: int) -> Dict[str, torch.Tensor]:
    """One training iteration (one optimizer step) of ``model`` on ``batch`` (a dict or micro-batches)."""
    return model(batch, it)


def _target(model: Any) -> nn.Module:
    """The network being trained (θ)."""
    return model.model.net_g


def _negatives(model: Any) -> List[nn.Module]:
    """The negative networks (θ'_i), in the order of ``train.negatives.steps``."""
    return [avg.module for avg in model.model.negatives.negatives]


# ---- helpers ------------------------------------------------------------------------------------
def _batch(seed: int, b: int = 3, size: int = 12, scale: int = 2) -> Dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(b, 3, size, size, generator=gen),
            "gt": torch.rand(b, 3, size * scale, size * scale, generator=gen)}


def _snapshot(net: nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _snapshots(model: Any) -> List[Dict[str, torch.Tensor]]:
    return [_snapshot(n) for n in _negatives(model)]


def _equal(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _updated(before: List[Dict[str, torch.Tensor]], model: Any) -> List[bool]:
    """Which negatives changed at all since ``before``."""
    return [not _equal(old, _snapshot(neg)) for old, neg in zip(before, _negatives(model))]


def _flat(tensors: Any) -> torch.Tensor:
    return torch.cat([t.detach().flatten().double() for t in tensors])


def _norm(sd: Mapping[str, torch.Tensor]) -> float:
    return float(torch.sqrt(sum((v.double() ** 2).sum() for v in sd.values() if v.is_floating_point())))


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised torchvision VGG16 ``features`` state_dict saved as a .pth (58 MB)."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    torch.random.set_rng_state(gen_state)
    path = tmp_path_factory.mktemp("vgg") / "vgg16_features_random.pth"
    torch.save(features.state_dict(), path)
    return path


def _reference_vgg(path: Path) -> nn.Sequential:
    """torchvision's VGG16 ``features`` with the weights of ``path``, frozen."""
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    features.load_state_dict(torch.load(path, weights_only=True))
    return features.eval().requires_grad_(False)


def _reference_distance(
    features: nn.Sequential,
    out: torch.Tensor,
    negs: Sequence[torch.Tensor],
    mean: Sequence[float] = IMAGENET_MEAN_RGB,
    std: Sequence[float] = IMAGENET_STD_RGB,
) -> torch.Tensor:
    """Eq. 4 from scratch: (1/N) Σ_i Σ_l c_l · mean|φ_l(out) − φ_l(neg_i)|, φ on ImageNet-normalised RGB."""

    def phi(x: torch.Tensor) -> List[torch.Tensor]:
        z = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        return [features[:k](z) for k in TV_VGG16_PREFIX]

    f_out = phi(out)
    per_negative = []
    for neg in negs:
        f_neg = phi(neg.detach())
        per_negative.append(sum(c * (a - b).abs().mean() for c, a, b in zip(LAYER_WEIGHTS, f_out, f_neg)))
    return sum(per_negative) / len(per_negative)


def _negative_outputs(model: Any, lq: torch.Tensor) -> List[torch.Tensor]:
    with torch.no_grad():
        return [neg(lq) for neg in _negatives(model)]


# ---- the sign of the SPN term --------------------------------------------------------------------
def test_spn_step_moves_the_output_away_from_the_negatives(build, vgg_file):
    """With L_rec weighted 0, one SGD step on −λ·L_neg is gradient *ascent* of the feature distance to the
    negatives: the update points along +∇θ d (d written out independently), with the size λ·lr·|∇θ d|.
    A flipped sign (L_rec + λ·L_neg) points the other way. (The distance itself is a poor witness: an L1
    distance grows at first order for either sign, from elements crossing zero.)"""
    lr = 1e-2
    model = build({"pixel_opt": {"loss_weight": 0.0}, "optim_g": {"lr": lr},
                   "neg_opt": {"vgg_weights": str(vgg_file)}})
    vgg = _reference_vgg(vgg_file)
    batch = _batch(1)
    negs = _negative_outputs(model, batch["lq"])
    ref = copy.deepcopy(_target(model))
    d = _reference_distance(vgg, ref(batch["lq"]), negs)
    assert float(d.detach()) > 0  # blend init: the negatives differ from the target from the start
    grad_d = torch.autograd.grad(d, list(ref.parameters()))
    before = [p.detach().clone() for p in _target(model).parameters()]
    _step(model, batch, 1)  # steps [2, 3]: no negative moves at iteration 1
    update = _flat(_target(model).parameters()) - _flat(before)
    along = float(update @ _flat(grad_d)) / (lr * float(_flat(grad_d).norm()) ** 2)
    assert along == pytest.approx(1.0, rel=1e-3), along  # +lr·∇d: ascent, at the expected scale


def test_loss_and_update_equal_an_independent_eq2_to_eq4(build, vgg_file):
    """L_rec − λ·(1/N)Σ_i Σ_l c_l·mean|φ_l(out) − φ_l(neg_i)| with torchvision's VGG16 sliced by index,
    the ImageNet RGB mean/std and B ≠ N: its value is logged, and one SGD step follows its gradient."""
    lam, lr = 1.0, 1.0  # lr 1: the update stands well above the rounding of the weights
    model = build({"optim_g": {"lr": lr}, "neg_opt": {"loss_weight": lam, "vgg_weights": str(vgg_file)}})
    vgg = _reference_vgg(vgg_file)
    batch = _batch(2)  # B = 3 images, N = 2 negatives
    assert len(_negatives(model)) != batch["lq"].shape[0]
    negs = _negative_outputs(model, batch["lq"])
    ref_net = copy.deepcopy(_target(model))
    out = ref_net(batch["lq"])
    l_rec = (out - batch["gt"]).abs().mean()
    l_neg = _reference_distance(vgg, out, negs)
    params = list(ref_net.parameters())
    g_rec = torch.autograd.grad(l_rec, params, retain_graph=True)
    g_neg = torch.autograd.grad(l_neg, params)
    grads = [a - lam * b for a, b in zip(g_rec, g_neg)]
    before = [p.detach().clone() for p in _target(model).parameters()]

    logs = _step(model, batch, 1)

    torch.testing.assert_close(logs["l_rec"], l_rec.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(logs["l_neg"], l_neg.detach(), rtol=1e-5, atol=0)
    update = _flat(_target(model).parameters()) - _flat(before)
    expected = -lr * _flat(grads)
    assert float((update - expected).norm()) < 1e-4 * float(expected.norm())
    # the SPN part of the gradient is not negligible next to L_rec's, or the check above would not see it
    assert float((lam * _flat(g_neg)).norm() / _flat(g_rec).norm()) > 0.2


@pytest.mark.parametrize(
    "mean, std",
    [
        (IMAGENET_MEAN_RGB[::-1], IMAGENET_STD_RGB[::-1]),  # BGR order
        (IMAGENET_STD_RGB, IMAGENET_MEAN_RGB),  # mean and std swapped
    ],
    ids=["bgr", "swapped"],
)
def test_the_reference_formula_tells_normalisation_mixups_apart(build, vgg_file, mean, std):
    """The random VGG makes the colour order matter: a mix-up changes the distance well beyond the
    tolerance of the check above (so that check would catch one in the model)."""
    model = build({"neg_opt": {"vgg_weights": str(vgg_file)}})
    vgg = _reference_vgg(vgg_file)
    batch = _batch(2)
    negs = _negative_outputs(model, batch["lq"])
    with torch.no_grad():
        out = _target(model)(batch["lq"])
        right = float(_reference_distance(vgg, out, negs))
        wrong = float(_reference_distance(vgg, out, negs, mean, std))
    assert abs(wrong - right) > 1e-3 * right, (right, wrong)


# ---- Eq. 1: the negatives' update rule ----------------------------------------------------------
def test_eq1_moves_due_negatives_to_w_old_plus_1_minus_w_target_and_nothing_else_moves_them(build):
    """After step t, negative i with t % s_i == 0 is w·θ'_old + (1 − w)·θ (w = 0.1, parameters and
    BatchNorm buffers, integer buffers copied), hence nearer θ than θ'_old; the others stay bit-equal
    although their forward ran in that step."""
    w = 0.1
    model = build(network=BN_NET)  # default decay
    steps = (2, 3)
    for t in range(1, 7):
        old = _snapshots(model)
        _step(model, _batch(t, scale=1), t)
        theta = _snapshot(_target(model))
        for i, (s, neg) in enumerate(zip(steps, _negatives(model))):
            new = _snapshot(neg)
            if t % s:
                assert _equal(new, old[i]), f"negative {i} changed at iteration {t}"
                continue
            assert any(k.endswith("running_mean") for k in new)  # buffers that really move are compared
            for k, v in new.items():
                if v.is_floating_point():
                    torch.testing.assert_close(v, w * old[i][k] + (1 - w) * theta[k], rtol=1e-6, atol=1e-7,
                                               msg=f"negative {i}, {k}, iteration {t}")
                else:
                    assert torch.equal(v, theta[k]), k
            to_target = _norm({k: new[k] - theta[k] for k in new if new[k].is_floating_point()})
            to_old = _norm({k: new[k] - old[i][k] for k in new if new[k].is_floating_point()})
            assert to_target < 0.5 * to_old, (i, t, to_target, to_old)


def test_a_skipped_step_does_not_move_the_negatives(build):
    """A non-finite loss makes an acting guard skip the step; at an iteration that is no multiple of any s_i
    the negatives stay bit-equal (their forward ran, the bad batch reached them)."""
    model = build({"guard": {"action": "skip"}}, network=BN_NET)
    _step(model, _batch(1, scale=1), 1)
    before, theta = _snapshots(model), _snapshot(_target(model))
    bad = _batch(5, scale=1)
    bad["gt"] = torch.full_like(bad["gt"], float("nan"))
    logs = _step(model, bad, 5)  # 5 is no multiple of 2 or 3
    assert not torch.isfinite(logs["l_rec"])
    assert all(torch.equal(v, theta[k]) for k, v in _target(model).named_parameters())  # the step was skipped
    assert _updated(before, model) == [False, False]


def _update_iterations(model: Any, batches: Sequence[Any], first: int = 1) -> List[List[int]]:
    """Run ``batches`` as iterations ``first``, ``first + 1``, ... and list, per negative, the iterations
    that changed it."""
    updates: List[List[int]] = [[] for _ in _negatives(model)]
    for t, batch in enumerate(batches, start=first):
        before = _snapshots(model)
        _step(model, batch, t)
        for i, moved in enumerate(_updated(before, model)):
            if moved:
                updates[i].append(t)
    return updates


def test_negatives_move_at_the_multiples_of_their_steps_only(build):
    model = build({"negatives": {"steps": [2, 3]}})
    assert _update_iterations(model, [_batch(t) for t in range(1, 8)]) == [[2, 4, 6], [3, 6]]


def test_with_accumulation_the_schedule_counts_optimizer_steps(build):
    """accumulate_steps = 2: an iteration consumes two micro-batches and is one optimizer step."""
    model = build({"accumulate_steps": 2, "negatives": {"steps": [2, 3]}})
    batches = [[_batch(10 * t), _batch(10 * t + 1)] for t in range(1, 8)]
    assert _update_iterations(model, batches) == [[2, 4, 6], [3, 6]]


def test_start_iter_delays_the_term_and_the_updates_and_reseeds_from_the_target(build):
    """start_iter = 2: iterations 1–2 train exactly like λ = 0; the first update is at 3 (a multiple of
    s = 3); at iteration 3 the negatives are first re-seeded from the target (init: target)."""
    train = {"negatives": {"steps": [2, 3], "start_iter": 2, "init": "target"}}
    model = build(train)
    plain = build({**train, "neg_opt": {"loss_weight": 0.0}})
    batches = [_batch(t) for t in range(1, 8)]
    for t in (1, 2):
        _step(model, batches[t - 1], t)
        _step(plain, batches[t - 1], t)
        assert _equal(_snapshot(_target(model)), _snapshot(_target(plain))), f"iteration {t} used the SPN term"
    theta_2 = _snapshot(_target(model))
    old = _snapshots(model)
    _step(model, batches[2], 3)
    theta_3 = _snapshot(_target(model))
    # negative 0 (s = 2) is not due at 3: it is the re-seeded copy of θ after step 2
    assert _equal(_snapshot(_negatives(model)[0]), theta_2)
    assert not _equal(old[0], theta_2)  # ... which the initial copy was not
    # negative 1 (s = 3) is due: Eq. 1 from the re-seeded θ_2
    for k, v in _snapshot(_negatives(model)[1]).items():
        torch.testing.assert_close(v, 0.1 * theta_2[k] + 0.9 * theta_3[k], rtol=1e-6, atol=1e-7)
    updates = _update_iterations(model, batches[3:], first=4)
    assert updates == [[4, 6], [6]]


# ---- state: save/load -------------------------------------------------------------------------
def test_state_dict_through_a_file_resumes_bit_identically(build, vgg_file, tmp_path):
    """A model saved after 3 steps and loaded into a differently seeded one continues exactly like the
    original: same weights, same negatives, same update counters."""
    batches = [_batch(t) for t in range(1, 7)]
    a = build({"neg_opt": {"vgg_weights": str(vgg_file)}}, seed=0)  # the same VGG for both: a file
    for t in (1, 2, 3):
        _step(a, batches[t - 1], t)
    torch.save(a.state_dict(), tmp_path / "a.state")
    b = build({"neg_opt": {"vgg_weights": str(vgg_file)}}, seed=1)
    assert not _equal(_snapshot(_negatives(a)[0]), _snapshot(_negatives(b)[0]))
    b.load_state_dict(torch.load(tmp_path / "a.state", weights_only=True))
    for t in (4, 5, 6):
        _step(a, batches[t - 1], t)
        _step(b, batches[t - 1], t)
    assert _equal(_snapshot(_target(a)), _snapshot(_target(b)))
    for na, nb in zip(_negatives(a), _negatives(b)):
        assert _equal(_snapshot(na), _snapshot(nb))
    sa, sb = a.state_dict()["negatives"], b.state_dict()["negatives"]
    assert _equal(sa, sb)
    counters = sorted(k for k in sa if k.endswith("num_updates"))
    assert [int(sa[k]) for k in counters] == [3, 2]  # s = 2: 2, 4, 6; s = 3: 3, 6


# ---- through mcir/train.py ------------------------------------------------------------------------
def test_train_py_counts_optimizer_steps_from_start_iter_with_accumulation(tmp_path, short_run_args):
    """``python mcir/train.py`` with accumulate_steps = 2 and start_iter = 2 (6 iterations = 12 batches):
    the checkpoints hold the updates at the multiples after start_iter, counted in optimizer steps."""
    args = short_run_args(
        SPN_DEMO, tmp_path, "acc",
        "path.pretrain_network_g=null", "datasets.train.batch_size_per_gpu=2", "val.val_freq=0",
        "train.neg_opt.vgg_weights=random", "train.negatives.steps=[2, 3]", "train.negatives.start_iter=2",
        "train.accumulate_steps=2",
    )
    assert train_main(args) == 0

    def counts(it: int) -> List[int]:
        state = torch.load(tmp_path / "acc" / "training_states" / f"{it}.state", weights_only=True)
        negs = state["model"]["negatives"]
        return [int(negs[k]) for k in sorted(k for k in negs if k.endswith("num_updates"))]

    assert counts(3) == [0, 1]  # s = 2: none yet (2 <= start_iter); s = 3: iteration 3
    assert counts(6) == [2, 2]  # s = 2: 4, 6; s = 3: 3, 6
