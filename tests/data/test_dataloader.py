"""Tests for EnlargedSampler and build_dataloader: per-epoch determinism and resume."""

import numpy as np
import pytest
import skimage.data
import torch
from torch.utils.data import Dataset

from mcir.data.dataloader import EnlargedSampler, build_dataloader
from mcir.data.paired_dataset import PairedImageDataset
from mcir.errors import OptionError
from mcir.utils.img_util import imwrite


class _Range(Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def test_sampler_order_is_the_documented_permutation():
    sampler = EnlargedSampler(_Range(7), ratio=3, seed=5)
    assert len(sampler) == 21
    for epoch in (0, 4):
        sampler.set_epoch(epoch)
        expected = torch.randperm(21, generator=torch.Generator().manual_seed(5 + epoch)) % 7
        assert list(sampler) == expected.tolist()
        assert sorted(list(sampler)) == sorted(list(range(7)) * 3)  # each sample exactly ratio times
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first  # rebuildable for resume


def test_sampler_without_shuffle_and_with_replicas():
    assert list(EnlargedSampler(_Range(3), ratio=2, shuffle=False)) == [0, 1, 2, 0, 1, 2]
    parts = [list(EnlargedSampler(_Range(5), 1, seed=2, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(parts[0]) == len(parts[1]) == 3
    assert set(parts[0] + parts[1]) == set(range(5))
    with pytest.raises(OptionError) as err:
        EnlargedSampler(_Range(3), ratio=0)
    assert err.value.key == "dataset_enlarge_ratio"


@pytest.fixture(scope="module")
def train_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("dl")
    src = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    for i in range(4):
        imwrite(src[i * 100 : i * 100 + 64, i * 90 : i * 90 + 64], root / "gt" / f"{i}.png")
    return PairedImageDataset(str(root / "gt"), None, phase="train", scale=2, gt_size=16,
                              use_hflip=True, use_rot=True, lq_from_gt="bicubic")


def _epoch(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return [(b["gt"].clone(), list(b["gt_path"])) for b in loader]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))


def test_train_loader_batches_are_reproducible_per_epoch_with_workers(train_set):
    kw = dict(batch_size_per_gpu=3, num_worker_per_gpu=2, dataset_enlarge_ratio=2, seed=11)
    loader = build_dataloader(train_set, "train", **kw)
    assert loader.drop_last and len(loader) == 2  # 8 samples -> 2 full batches of 3
    run = [_epoch(loader, e) for e in range(3)]
    assert run[0][0][0].shape == (3, 3, 16, 16)
    assert not _same(run[0], run[1])
    resumed = build_dataloader(train_set, "train", **kw)  # a fresh process resuming at epoch 2
    assert _same(_epoch(resumed, 2), run[2])
    other_seed = build_dataloader(train_set, "train", **{**kw, "seed": 12})
    assert not _same(_epoch(other_seed, 2), run[2])


def test_val_loader_is_sequential_batch_one(train_set):
    loader = build_dataloader(_Range(5), "val", batch_size_per_gpu=8, use_shuffle=True)
    assert loader.batch_size == 1 and [int(b) for b in loader] == [0, 1, 2, 3, 4]


def test_batch_larger_than_epoch_is_an_option_error():
    with pytest.raises(OptionError) as err:
        build_dataloader(_Range(3), "train", batch_size_per_gpu=4)
    assert err.value.key == "batch_size_per_gpu" and "3 samples" in str(err.value)
    assert len(build_dataloader(_Range(3), "train", batch_size_per_gpu=4, dataset_enlarge_ratio=2)) == 1


def test_set_epoch_start_skips_samples_and_shortens_len():
    sampler = EnlargedSampler(_Range(6), ratio=2, seed=1)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.set_epoch(3, start=5)
    assert len(sampler) == 7 and list(sampler) == full[5:]
    with pytest.raises(ValueError, match="outside"):
        sampler.set_epoch(3, start=13)


def test_mid_epoch_resume_without_workers_is_exact_given_torch_rng(train_set):
    kw = dict(batch_size_per_gpu=2, num_worker_per_gpu=0, dataset_enlarge_ratio=2, seed=4)
    loader = build_dataloader(train_set, "train", **kw)
    torch.manual_seed(0)
    loader.sampler.set_epoch(1)
    original, saved_rng = [], None
    for i, batch in enumerate(loader):
        original.append((batch["gt"].clone(), list(batch["gt_path"])))
        if i == 1:
            saved_rng = torch.get_rng_state()  # what a checkpoint after two batches stores
    resumed = build_dataloader(train_set, "train", **kw)
    torch.set_rng_state(saved_rng)
    resumed.sampler.set_epoch(1, start=2 * 2)
    assert len(resumed) == len(original) - 2
    tail = [(b["gt"].clone(), list(b["gt_path"])) for b in resumed]
    assert _same(tail, original[2:])


def _batches(loader, epoch, start=0):
    loader.sampler.set_epoch(epoch, start=start)
    return [b.tolist() for b in loader]


def test_ranks_split_every_batch_of_one_process_with_the_total_batch():
    data = _Range(10)
    one = build_dataloader(data, "train", batch_size_per_gpu=4, dataset_enlarge_ratio=2, seed=3)
    ranks = [build_dataloader(data, "train", batch_size_per_gpu=2, dataset_enlarge_ratio=2, seed=3,
                              num_replicas=2, rank=r) for r in (0, 1)]
    for epoch in (0, 1):
        single = _batches(one, epoch)
        parts = [_batches(loader, epoch) for loader in ranks]
        assert len(single) == len(parts[0]) == len(parts[1]) == 5
        for i, batch in enumerate(single):  # iteration i: the same samples, split across the two ranks
            assert sorted(parts[0][i] + parts[1][i]) == sorted(batch)
    # mid-epoch resume is per rank: start counts this rank's samples
    assert _batches(ranks[1], 1, start=2 * 3) == parts[1][3:]


def test_ranks_get_their_own_worker_seeds_but_the_same_order():
    loaders = [build_dataloader(_Range(8), "train", batch_size_per_gpu=2, seed=7, num_replicas=2, rank=r)
               for r in (0, 1)]
    for loader in loaders:
        loader.sampler.set_epoch(3)
    assert loaders[0].generator.initial_seed() == 7 + 3  # a lone process's seed, unchanged
    assert loaders[1].generator.initial_seed() == 7 + 3 + 2**32
    order = torch.randperm(8, generator=torch.Generator().manual_seed(7 + 3)).tolist()
    assert list(loaders[0].sampler) == order[0::2] and list(loaders[1].sampler) == order[1::2]


def test_val_shards_are_unpadded_and_disjoint():
    shards = [[int(b) for b in build_dataloader(_Range(5), "val", num_replicas=2, rank=r)] for r in (0, 1)]
    assert shards == [[0, 2, 4], [1, 3]]
