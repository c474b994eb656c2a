"""Table-driven: every validated option value, fed a wrong type or an out-of-range value, is a one-line error
naming its key -- the core schema's leaves and every argument of every registered component."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from mcir.components import load_components
from mcir.constraints import Range
from mcir.errors import OptionError
from mcir.options import load_options
from mcir.options.schema import root_schema
from mcir.options.spec import Leaf, Section
from mcir.options.values import check_value, is_checkable
from mcir.registry import (
    ARCH_REGISTRY,
    DATASET_REGISTRY,
    LOSS_REGISTRY,
    METRIC_REGISTRY,
    OPTIMIZER_REGISTRY,
    SCHEDULER_REGISTRY,
)

REPO = Path(__file__).resolve().parents[2]
SPN_DEMO = str(REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91_SPN.yml")
TEST_DEMO = str(REPO / "options" / "test" / "SR" / "test_demo_EDSR_tiny_x4.yml")
BASE = ["path.pretrain_network_g=null", "train.neg_opt.vgg_weights=random"]
# Candidates for a wrong value: the first one an annotation rejects is fed to the loader.
WRONG = ["fast", [1, 2], {"a": 1}, True, 7, -1]

load_components()


def _leaves(spec: Any, key: str = "") -> Iterator[Tuple[str, Any]]:
    if isinstance(spec, Leaf):
        yield key, spec.hint
    elif isinstance(spec, Section):
        for k, sub in spec.fields.items():
            yield from _leaves(sub, f"{key}.{k}" if key else k)


def _wrong(hint: Any) -> Any:
    for value in WRONG:
        try:
            check_value(hint, value, "k")
        except OptionError:
            return value
    raise AssertionError(f"no wrong value found for {hint}: the annotation accepts anything")


def _ranges(hint: Any) -> List[Range]:
    """Every Range inside ``hint`` (through Optional, Union and Sequence)."""
    found = [a for a in getattr(hint, "__metadata__", ()) if isinstance(a, Range)]
    for arg in typing.get_args(hint):
        if not isinstance(arg, (int, float, str)):
            found += _ranges(arg)
    return found


def _outside(r: Range) -> float:
    if r.gt is not None:
        return r.gt
    if r.ge is not None:
        return r.ge - 1
    return r.lt if r.lt is not None else r.le + 1


def _out_of_range(hint: Any) -> Optional[Any]:
    """A value of the right type but outside the first range, shaped like the hint (a list for sequences)."""
    ranges = _ranges(hint)
    if not ranges:
        return None
    bad = _outside(ranges[0])
    for shape in (bad, [bad], [bad, bad]):
        try:
            check_value(hint, shape, "k")
        except OptionError:
            return shape
    return None


def _yaml(value: Any) -> str:
    return json.dumps(value)


def _expect_error(opt: str, sets: List[str], key: str, is_train: bool = True) -> str:
    with pytest.raises(OptionError) as err:
        load_options(opt, sets, is_train=is_train)
    line = str(err.value)
    assert err.value.key == key, f"{line!r} does not name {key}"
    assert "\n" not in line and line.startswith(f"{opt}: {key}: expected ") and ", got " in line, line
    return line


# ---- the core schema's leaves -------------------------------------------------------------------
CORE = [(k, h) for k, h in _leaves(root_schema("MCIRModel", "EDSR", is_train=True))]


def test_the_walk_covers_the_schema():
    keys = {k for k, _ in CORE}
    assert {"train.total_iter", "train.negatives.decay", "train.guard.action", "logger.keep_last", "scale"} <= keys
    assert len(CORE) > 45


@pytest.mark.parametrize("key, hint", CORE, ids=[k for k, _ in CORE])
def test_core_leaf_rejects_a_wrong_type(key, hint):
    if key == "name":
        pytest.skip("any string is a name; checked below for its type")
    bad = _wrong(hint)
    _expect_error(SPN_DEMO, [*BASE, f"{key}={_yaml(bad)}"], key)


RANGED = [(k, h) for k, h in CORE if _out_of_range(h) is not None]


@pytest.mark.parametrize("key, hint", RANGED, ids=[k for k, _ in RANGED])
def test_core_leaf_rejects_an_out_of_range_value(key, hint):
    _expect_error(SPN_DEMO, [*BASE, f"{key}={_yaml(_out_of_range(hint))}"], key)


# ---- every argument of every registered component ------------------------------------------------
def _example(hint: Any) -> Any:
    """A valid value for ``hint`` (for required arguments)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        ranges = _ranges(hint)
        base = args[0]
        if base in (int, float):
            low = ranges[0].ge if ranges and ranges[0].ge is not None else 1
            return base(max(low, 1))
        return _example(base)
    if origin is typing.Literal:
        return args[0]
    if origin is typing.Union:
        return _example(next(a for a in args if a is not type(None)))
    if hint is str:
        return "x"
    if hint is bool:
        return True
    if hint in (int, float):
        return hint(1)
    if origin in (list, tuple, typing.Sequence.__origin__) or hint in (list, tuple):
        return [_example(args[0])] if args else []
    if origin is dict or (origin is not None and getattr(origin, "__name__", "") == "Mapping"):
        return {"relu1_1": _example(args[1])} if len(args) == 2 else {}
    return None


HOSTS = {
    "arch": ("network_g", ARCH_REGISTRY, ()),
    "loss": ("train.pixel_opt", LOSS_REGISTRY, ()),
    "optimizer": ("train.optim_g", OPTIMIZER_REGISTRY, ("params",)),
    "scheduler": ("train.scheduler", SCHEDULER_REGISTRY, ("optimizer",)),
    "dataset": ("datasets.train", DATASET_REGISTRY, ("phase",)),
    "metric": ("val.metrics.psnr", METRIC_REGISTRY, ("img", "img2", "input_order")),
}
# Valid sections for components whose required arguments have no obvious example.
KNOWN: Dict[str, Dict[str, Any]] = {
    "MixedDataset": {"datasets": {"a": {"dataroot_gt": "x"}}},
    "SyntheticDegradationDataset": {"dataroot_gt": "x", "degradations": [{"type": "noise"}]},
    "MultiStepLR": {"milestones": [10]},
    "MultiStepRestartLR": {"milestones": [10]},
    "CosineAnnealingRestartLR": {"periods": [3000]},
}


def _components() -> List[Tuple[str, str, str, Any]]:
    cases = []
    for kind, (host, registry, injected) in HOSTS.items():
        for name in registry.list():
            for arg, param in registry.option_params(name).items():
                if arg not in injected:
                    cases.append((kind, name, arg, param.annotation))
    return cases


COMPONENTS = _components()


def _section(kind: str, name: str) -> Dict[str, Any]:
    host, registry, injected = HOSTS[kind]
    section: Dict[str, Any] = {"type": name, **KNOWN.get(name, {})}
    for arg, param in registry.option_params(name).items():
        if arg not in injected and arg not in section and param.default is param.empty:
            section[arg] = _example(param.annotation)
    params = registry.option_params(name)
    section.update({k: v for k, v in (("dataroot_gt", "x"), ("gt_size", 64)) if kind == "dataset" and k in params})
    if kind == "optimizer":
        section.setdefault("lr", 1e-3)
    return section


def test_every_component_argument_has_a_checkable_annotation():
    unchecked = [f"{kind} {name}.{arg}: {hint}" for kind, name, arg, hint in COMPONENTS if not is_checkable(hint)]
    assert not unchecked, "add a type annotation the schema can check:\n" + "\n".join(unchecked)


@pytest.mark.parametrize("kind, name", sorted({(k, n) for k, n, _, _ in COMPONENTS}))
def test_a_valid_component_section_loads(kind, name):
    host = HOSTS[kind][0]
    if kind == "arch" and not getattr(ARCH_REGISTRY.get(name), "requires_training", True):
        load_options(TEST_DEMO, [f"{host}={_yaml(_section(kind, name))}"], is_train=False)  # nothing to train
        return
    load_options(SPN_DEMO, [*BASE, f"{host}={_yaml(_section(kind, name))}"])


@pytest.mark.parametrize("kind, name, arg, hint", COMPONENTS, ids=[f"{n}.{a}" for _, n, a, _ in COMPONENTS])
def test_component_argument_rejects_a_wrong_type_and_an_out_of_range_value(kind, name, arg, hint):
    host = HOSTS[kind][0]
    section = _section(kind, name)
    bads = [_wrong(hint)] + ([_out_of_range(hint)] if _out_of_range(hint) is not None else [])
    for bad in bads:
        _expect_error(SPN_DEMO, [*BASE, f"{host}={_yaml({**section, arg: bad})}"], f"{host}.{arg}")


# ---- relations between keys -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "sets, key, words",
    [
        (["train.negatives.decay=[0.1, 0.2]"], "train.negatives.decay", "expected 4 values (one per steps entry)"),
        (["train.negatives.init=pretrained_fixed"], "train.negatives.pretrained_path", "expected a weights file"),
        (["train.scheduler={type: MultiStepLR, milestones: [100, 5000]}"], "train.scheduler.milestones",
         "expected iterations in [1, total_iter = 400]"),
        (["train.scheduler={type: CosineAnnealingRestartLR, periods: [200, 200], restart_weights: [1]}"],
         "train.scheduler.restart_weights", "expected 2 values"),
        (["datasets.train.gt_size=62"], "datasets.train.gt_size", "expected a multiple of the scale 4, got 62"),
        (["val.suffix=_x4"], "val.suffix", "expected null in training options"),
        (["logger.wandb.project=mcir"], "logger.wandb.project", "Weights & Biases logging is not supported"),
        (["datasets.train.prefetch_mode=cpu"], "datasets.train.num_worker_per_gpu", "expected num_worker_per_gpu > 0"),
        (["datasets.train2={dataroot_gt: x}"], "datasets", "expected exactly one 'datasets.train' section"),
    ],
)
def test_relations_between_keys_are_one_line_errors(sets, key, words):
    line = _expect_error(SPN_DEMO, [*BASE, *sets], key)
    assert words in line


def test_halving_lambda_needs_a_model_with_negatives():
    plain = str(REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml")
    line = _expect_error(plain, ["train.guard.action=halve"], "train.guard.action")
    assert "without negatives" in line
    assert load_options(plain, ["train.guard.action=skip"])["train"]["guard"]["action"] == "skip"


def test_test_options_are_checked_the_same_way():
    _expect_error(TEST_DEMO, ["val.tile=-5"], "val.tile", is_train=False)
    _expect_error(TEST_DEMO, ["models.a.network_g.num_feat=zero"], "models.a.network_g.num_feat", is_train=False)
