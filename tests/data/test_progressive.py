"""Tests of progressive training: phase lookup, per-phase loaders, exact resume, and option errors."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Dict, List, Tuple

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from mcir.data.dataloader import build_dataloader
from mcir.data.progressive import ProgressiveLoader, ProgressiveSchedule, build_progressive
from mcir.errors import OptionError
from mcir.options import load_options
from mcir.options.schema import loader_fields
from mcir.options.validate import validate

SECTION = {"iters": [3, 2, 4], "gt_sizes": [8, 12, 16], "batch_sizes": [4, 3, 2]}


class _Patches(Dataset):
    """Item ``i``: a ``gt_size`` square filled with ``i`` plus a random draw (the crop position stand-in)."""

    def __init__(self, n: int = 10, gt_size: int = 16, scale: int = 1):
        self.n, self.gt_size, self.scale = n, gt_size, scale

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Dict[str, Any]:
        return {"gt": torch.full((1, self.gt_size, self.gt_size), float(i)), "index": i, "draw": torch.rand(())}


def _loader(dataset: Dataset, workers: int = 0, num_replicas: int = 1, rank: int = 0):
    return build_dataloader(dataset, "train", batch_size_per_gpu=2, num_worker_per_gpu=workers, seed=5,
                            num_replicas=num_replicas, rank=rank)


def _run(state: SimpleNamespace, until: int, workers: int = 0, accumulate: int = 1,
         section: Dict[str, Any] = SECTION) -> List[Tuple[int, int, int, Tuple[int, ...]]]:
    """Drive a ProgressiveLoader like the trainer: ``accumulate`` batches per iteration up to ``until``.

    Returns:
        ``(iteration, gt side, batch size, sample indices)`` per batch.
    """
    prog = ProgressiveLoader(_loader(_Patches(), workers), ProgressiveSchedule.from_options(section, "p"))
    batches = prog.batches(state)
    seen = []
    while state.iteration < until:
        it = state.iteration + 1
        for _ in range(accumulate):
            b = next(batches)
            seen.append((it, b["gt"].shape[-1], b["gt"].shape[0], tuple(b["index"].tolist())))
        state.iteration = it
    return seen


def _state(iteration: int = 0, epoch: int = 0, batch_in_epoch: int = 0) -> SimpleNamespace:
    return SimpleNamespace(iteration=iteration, epoch=epoch, batch_in_epoch=batch_in_epoch)


def test_phase_lookup_follows_restormer_phase_lengths() -> None:
    sched = ProgressiveSchedule.from_options(SECTION, "p")
    got = [sched.phase_at(t).index for t in range(1, 13)]
    assert got == [0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2]  # 1-3, 4-5, 6-9, and the last phase continues
    assert [(p.first_iter, p.last_iter) for p in sched.phases] == [(1, 3), (4, 5), (6, 9)]


@pytest.mark.parametrize("workers", [0, 1])
def test_patch_and_batch_size_switch_at_exactly_the_phase_boundaries(workers: int) -> None:
    seen = _run(_state(), 8, workers=workers)
    sizes = [(it, side, n) for it, side, n, _ in seen]
    assert sizes == [(1, 8, 4), (2, 8, 4), (3, 8, 4), (4, 12, 3), (5, 12, 3), (6, 16, 2), (7, 16, 2), (8, 16, 2)]


def test_a_phase_starts_a_fresh_epoch_and_epochs_cover_the_set() -> None:
    seen = _run(_state(), 8)
    # phase 1: 10 samples, batch 4 -> batches 1-2 epoch 0, batch 3 epoch 1; phase 2 starts epoch 2, ...
    epoch1 = [i for it, _, _, idx in seen if it in (4, 5) for i in idx]
    order = torch.randperm(10, generator=torch.Generator().manual_seed(5 + 2)).tolist()
    assert epoch1 == order[:6]


@pytest.mark.parametrize("accumulate", [1, 2])
def test_resume_at_any_iteration_continues_the_same_batches(accumulate: int) -> None:
    full_state = _state()
    full = _run(full_state, 11, accumulate=accumulate)
    for stop in range(1, 11):  # every stop, including the last iteration of a phase (3 and 5)
        state = _state()
        head = _run(state, stop, accumulate=accumulate)
        saved = _state(state.iteration, state.epoch, state.batch_in_epoch)  # what a checkpoint keeps
        tail = _run(saved, 11, accumulate=accumulate)
        assert head + tail == full, f"resumed after iteration {stop}"
    assert (full_state.epoch, full_state.batch_in_epoch) == (saved.epoch, saved.batch_in_epoch)


def test_ranks_switch_together_and_share_the_one_process_batches() -> None:
    sched = ProgressiveSchedule.from_options(SECTION, "p")
    per_rank = []
    for rank in (0, 1):
        prog = ProgressiveLoader(_loader(_Patches(), num_replicas=2, rank=rank), sched)
        state, batches, seen = _state(), None, []
        batches = prog.batches(state)
        for it in range(1, 8):
            seen.append((it, next(batches)["gt"].shape))
            state.iteration = it
        per_rank.append(seen)
    assert per_rank[0] == per_rank[1]
    assert [s[0] for _, s in per_rank[0]] == [4, 4, 4, 3, 3, 2, 2]


@pytest.mark.parametrize(
    "change, key, message",
    [
        ({"iters": [3, 2]}, "p.gt_sizes", "expected 2 values (one per iters entry), got 3"),
        ({"batch_sizes": [4, 0, 2]}, "p.batch_sizes", "expected a list of integers > 0 not empty, got [4, 0, 2]"),
        ({"iters": 5}, "p.iters", "expected a list of integers > 0 not empty, got 5"),
        ({"iters": []}, "p.iters", "got []"),
        ({"gt_sizes": [8, 12.5, 16]}, "p.gt_sizes", "expected a list of integers > 0"),
        ({"mini_batch_sizes": [1, 1, 1]}, "p.mini_batch_sizes", "unknown key"),
    ],
)
def test_bad_sections_give_one_line_errors_naming_the_key(change: Dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(OptionError) as info:  # the option schema's progressive section
        validate(loader_fields()["progressive"], dict(SECTION, **change), "p", "x.yml")
    assert info.value.key == key and info.value.file == "x.yml"
    assert message in str(info.value) and "\n" not in str(info.value)


def test_gt_sizes_must_suit_the_network_size_multiple() -> None:
    with pytest.raises(OptionError, match="size multiple 8") as info:
        ProgressiveSchedule.from_options(dict(SECTION, gt_sizes=[8, 16, 20]), "p", size_multiple=8, scale=1)
    assert info.value.key == "p.gt_sizes"
    ProgressiveSchedule.from_options(dict(SECTION, gt_sizes=[16, 32, 48]), "p", size_multiple=8, scale=2)


@pytest.mark.parametrize(
    "sets, key",
    [
        (["datasets.train.gt_size=12"], "datasets.train.gt_size"),  # below the largest phase patch 16
        (["datasets.train.progressive.gt_sizes=[8, 16, 18]"], "datasets.train.progressive.gt_sizes"),  # scale 4
        ([f"datasets.val.progressive={SECTION}"], "datasets.val.progressive"),
    ],
)
def test_the_option_schema_checks_progressive_against_the_datasets(repo_root, sets, key) -> None:
    demo = str(repo_root / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml")
    base = [f"datasets.train.progressive={SECTION}", "datasets.train.gt_size=16"]
    load_options(demo, base)
    with pytest.raises(OptionError) as info:
        load_options(demo, base + sets)
    assert info.value.key == key and "\n" not in str(info.value)


class _NoPatch(Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int) -> int:
        return i


def test_build_progressive_checks_that_every_phase_has_a_full_batch() -> None:
    opt = {"datasets": {"train": {"progressive": SECTION}}, "scale": 1, "opt_path": "x.yml"}
    loader = build_dataloader(_Patches(n=3), "train", batch_size_per_gpu=1)  # 4 > 3 samples per epoch
    with pytest.raises(OptionError) as info:
        build_progressive(opt, "train", loader, nn.Identity())
    assert info.value.key == "datasets.train.progressive.batch_sizes" and "\n" not in str(info.value)
