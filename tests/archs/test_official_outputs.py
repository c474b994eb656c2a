"""Every registered paper architecture gives the official code's output, recorded in ``fixtures/*.npz``.

A fixture holds what the official implementation had and computed (repositories, commits and configurations
in ``fixtures/README.md``): its state-dict layout, its buffers, the input and the output. Parameters are not
stored: :func:`seeded_parameters` regenerates them from the recorded seed, they are loaded into mcir's network
with ``strict=True`` (together with the official buffers, as a released checkpoint would be), and mcir's
output must equal the official one to ``ATOL`` in fp32.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import pytest
import torch

from mcir.archs import ARCH_REGISTRY, build_network
from mcir.archs.nafnet_arch import LocalAvgPool2d

FIXTURES = Path(__file__).resolve().parent / "fixtures"
def _has_meta(path: Path) -> bool:
    with np.load(path, allow_pickle=False) as data:
        return "meta" in data.files


# This file's format (``meta``); HAT and RCAN record theirs in tests/archs/test_hat.py / test_rcan.py.
NAMES = sorted(p.stem for p in FIXTURES.glob("*.npz") if _has_meta(p))
WEIGHT_SEED = 1234  # seeds the fixtures were generated with (each fixture records its own)
INPUT_SEED = 4321
ATOL = 1e-5


def seeded_parameters(shapes: Mapping[str, Sequence[int]], seed: int, std: float,
                      overrides: Sequence[Sequence[Any]] = ()) -> Dict[str, torch.Tensor]:
    """The weight rule the fixtures were generated with.

    One ``torch.Generator`` seeded with ``seed``; for every parameter name in sorted order, draw
    ``randn(shape)`` in float64 (the scalar CPU path, identical with or without AVX2), map it to
    ``mean + sd * randn`` and cast to float32. ``(mean, sd)`` is that of the first ``overrides`` entry
    ``(regex, mean, sd)`` whose regex ``re.search``-es the name, else ``(0, std)``. The overrides put the
    weights of normalisation layers (and DehazeFormer's RLN re-scale bias) around 1, as the official
    initialisation and training do, and give NAFNet's branch scales and channel attention weight; without
    them those gates are near zero and whole branches (TLC's local statistics among them) barely reach the
    output. Only parameters are drawn: buffers (SwinIR's masks and index tables, DehazeFormer's relative
    positions) keep the values the module computes.

    Args:
        shapes: Parameter name -> shape.
        seed: Generator seed.
        std: Standard deviation of parameters no override matches (weights and biases alike).
        overrides: ``(regex, mean, sd)`` triples, first match wins.

    Returns:
        Name -> float32 tensor, in sorted name order.
    """
    gen = torch.Generator().manual_seed(seed)
    rules = [(re.compile(pattern), float(mean), float(sd)) for pattern, mean, sd in overrides]
    out = {}
    for name in sorted(shapes):
        mean, sd = next(((m, s) for rx, m, s in rules if rx.search(name)), (0.0, std))
        out[name] = (torch.randn(tuple(shapes[name]), generator=gen, dtype=torch.float64) * sd + mean).float()
    return out


def seeded_input(shape: Sequence[int], seed: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Uniform float32 input in [low, high) drawn (in float64) from a generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(tuple(shape), generator=gen, dtype=torch.float64) * (high - low) + low).float()


def weight_checksum(weights: Mapping[str, torch.Tensor]) -> List[float]:
    """Sum and sum of squares of all parameters (float64), to tell a drifted generator from a wrong network."""
    total = squares = 0.0
    for key in sorted(weights):
        value = weights[key].double()
        total += float(value.sum())
        squares += float(value.square().sum())
    return [total, squares]


@functools.lru_cache(maxsize=1)
def _cached_parameters(shapes: Tuple[Tuple[str, Tuple[int, ...]], ...], seed: int, std: float,
                       overrides: Tuple[Tuple[Any, ...], ...]) -> Dict[str, torch.Tensor]:
    """:func:`seeded_parameters`, kept for the next case: NAFNet with and without TLC share ~20M of them."""
    return seeded_parameters(dict(shapes), seed, std, overrides)


def load_fixture(name: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """Metadata and arrays (``input``, ``output``, ``buffer_<i>``) of ``fixtures/<name>.npz``."""
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


# Fixtures in the format of tests/archs/test_{hat,rcan,restormer}.py, by file-name prefix.
OTHER_FORMAT = {"hat": "HAT", "rcan": "RCAN", "restormer": "Restormer"}


def _other_format_types() -> set:
    """Arch types of the official-output fixtures that the per-arch test files read."""
    return {OTHER_FORMAT[p.stem.split("_")[0]] for p in FIXTURES.glob("*.npz")
            if not _has_meta(p) and p.stem.split("_")[0] in OTHER_FORMAT}


def test_every_trainable_arch_has_an_official_fixture() -> None:
    covered = {load_fixture(name)[0]["mcir_config"]["type"] for name in NAMES} | _other_format_types()
    builtin = [n for n in ARCH_REGISTRY.list() if ARCH_REGISTRY.get(n).__module__.startswith("mcir.")]
    paper_archs = {n for n in builtin if getattr(ARCH_REGISTRY.get(n), "requires_training", True)}
    missing = sorted(paper_archs - covered)
    assert not missing, f"no official-output fixture for {missing} (see tests/archs/fixtures/README.md)"


@pytest.mark.parametrize("name", NAMES)
def test_output_equals_official(name: str) -> None:
    meta, arrays = load_fixture(name)
    net = build_network(meta["mcir_config"]).eval()
    official = {key: (shape, dtype, kind) for key, shape, dtype, kind in meta["state_dict"]}
    ours = net.state_dict()
    assert {k: (list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in ours.items()} == {
        k: (shape, dtype) for k, (shape, dtype, _) in official.items()}
    shapes = {k: shape for k, (shape, _, kind) in official.items() if kind == "param"}
    assert {k for k, _ in net.named_parameters()} == set(shapes)
    assert sum(p.numel() for p in net.parameters()) == meta["official_num_params"]

    key = tuple(sorted((k, tuple(v)) for k, v in shapes.items()))
    overrides = tuple(tuple(o) for o in meta["weight_overrides"])
    weights = _cached_parameters(key, meta["weight_seed"], meta["weight_std"], overrides)
    assert weight_checksum(weights) == pytest.approx(meta["weight_checksum"], rel=1e-12), "weight rule drifted"
    buffers = {k: torch.from_numpy(arrays[kind]) for k, (_, _, kind) in official.items() if kind != "param"}
    for bkey, value in buffers.items():  # what mcir computes itself equals what the official module stores
        torch.testing.assert_close(ours[bkey], value, rtol=0, atol=1e-6, msg=bkey)
    net.load_state_dict({**weights, **buffers}, strict=True)

    x = seeded_input(meta["input_shape"], meta["input_seed"], *meta["input_range"])
    assert torch.equal(x, torch.from_numpy(arrays["input"])), "input rule drifted"
    with torch.no_grad():
        out = net(x)
    expected = torch.from_numpy(arrays["output"])
    assert out.shape == expected.shape
    err = (out - expected).abs().max().item()
    assert err <= ATOL, f"{name}: max abs error {err:.3g} vs official {meta['official_repo']}"
    if any(isinstance(m, LocalAvgPool2d) for m in net.modules()):
        # The case tells TLC from plain NAFNet: global pooling (what training mode uses) is well off.
        with torch.no_grad():
            assert (net.train()(x) - expected).abs().max().item() > 10 * ATOL
