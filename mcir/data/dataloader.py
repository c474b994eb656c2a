"""DataLoader construction with per-epoch deterministic sample order and worker seeds.

Reproducibility (exact resume) rests on two things that depend only on ``(seed, epoch)``:

* the sample order: :class:`EnlargedSampler` permutes with ``torch.Generator().manual_seed(seed + epoch)``;
* the workers' RNG: the loader's own generator is re-seeded with ``seed + epoch`` (plus ``rank · 2**32``
  in distributed training, so ranks draw different crops) by :meth:`EnlargedSampler.set_epoch`. PyTorch
  draws each epoch's worker base seed from that generator and seeds ``torch``, ``random`` and ``numpy`` in
  worker ``i`` with ``base_seed + i``; datasets draw their crops and flips from that per-worker torch RNG
  (see :mod:`mcir.data.transforms`).

In distributed training every rank builds the same epoch order and takes every ``num_replicas``-th sample
from position ``rank``, so iteration ``t`` of K ranks with batch B sees exactly the samples of iteration
``t`` of one process with batch K·B. Validation shards take every ``num_replicas``-th image, unpadded.

So a run resumed at an epoch boundary (``set_epoch(e)`` before iterating) gets the same batches as the
original run. ``set_epoch(e, start=k)`` resumes mid-epoch at sample ``k`` without loading the skipped
samples: the sample order is still exact, but with workers the crops/flips of the rest of that epoch differ
(each worker's RNG stream depends on which batches it served). Outside this scheme: ``num_worker_per_gpu=0``
(the dataset draws from the main process's torch RNG, which the trainer saves and restores, so this case is
exact even mid-epoch) and ``persistent_workers=True`` (workers keep their RNG across epochs).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mcir.errors import OptionError


class EnlargedSampler(Sampler):
    """Sample indices of ``dataset`` repeated ``ratio`` times per epoch, in a per-epoch deterministic order.

    For epoch ``e`` the order is ``torch.randperm(len * ratio, generator=Generator().manual_seed(seed + e))
    % len``, split across replicas as ``order[rank::num_replicas]`` (padded to equal length).

    Args:
        dataset: The dataset (only its length is used).
        ratio: How many times each sample appears per epoch (makes epochs longer for small sets).
        seed: Base seed.
        shuffle: False gives ``0, 1, ..., len-1`` repeated ``ratio`` times.
        num_replicas: Number of processes sharing the epoch (distributed training).
        rank: This process's index.
        generator: A generator to re-seed with ``seed + epoch + rank·2**32`` in :meth:`set_epoch` (the
            DataLoader's, which seeds the workers).
    """

    def __init__(
        self,
        dataset: Dataset,
        ratio: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        generator: Optional[torch.Generator] = None,
    ):
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise OptionError(f"must be an integer >= 1, got {ratio!r}", key="dataset_enlarge_ratio")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.dataset_len = len(dataset)
        self.ratio = ratio
        self.seed = int(seed)
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.generator = generator
        self.epoch = 0
        self.start = 0
        self.num_samples = math.ceil(self.dataset_len * ratio / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.set_epoch(0)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch whose order :meth:`__iter__` yields and re-seed the worker-seed generator.

        Args:
            epoch: Epoch number (0-based).
            start: Skip this many samples of the epoch (this replica's share), to resume mid-epoch.
        """
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start {start} is outside the epoch's {self.num_samples} samples")
        self.epoch = int(epoch)
        self.start = int(start)
        if self.generator is not None:
            self.generator.manual_seed(self.seed + self.epoch + (self.rank << 32))

    def __iter__(self) -> Iterator[int]:
        n = self.dataset_len * self.ratio
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(n)
        order = order % self.dataset_len
        if self.total_size > n:
            order = torch.cat([order, order[: self.total_size - n]])
        mine = order[self.rank : self.total_size : self.num_replicas]
        return iter(mine[self.start :].tolist())

    def __len__(self) -> int:
        """Samples left in the current pass (all of them unless ``set_epoch`` got a ``start``)."""
        return self.num_samples - self.start


def build_dataloader(
    dataset: Dataset,
    phase: str,
    batch_size_per_gpu: int = 16,
    num_worker_per_gpu: int = 0,
    dataset_enlarge_ratio: int = 1,
    use_shuffle: bool = True,
    pin_memory: bool = False,
    prefetch_factor: Optional[int] = None,
    seed: int = 0,
    persistent_workers: bool = False,
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """Build a DataLoader: training uses :class:`EnlargedSampler` and drops the last partial batch;
    validation/testing uses batch size 1 in dataset order (this rank's shard when ``num_replicas > 1``).

    Call ``loader.sampler.set_epoch(e)`` (or ``set_epoch(e, start=k)`` to resume mid-epoch) before each
    training epoch (see the module docstring).

    Args:
        dataset: The dataset.
        phase: ``train``, ``val`` or ``test``.
        batch_size_per_gpu: Training batch size.
        num_worker_per_gpu: Worker processes (0 loads in the main process).
        dataset_enlarge_ratio: Repeats of the dataset per training epoch.
        use_shuffle: Shuffle training samples.
        pin_memory: Pin batches in page-locked memory.
        prefetch_factor: Batches each worker loads ahead (None: torch's default; needs workers).
        seed: Base seed of the sample order and the worker seeds.
        persistent_workers: Keep workers alive between epochs (breaks exact per-epoch reseeding).
        num_replicas: Processes sharing the data (distributed training).
        rank: This process's index among them.

    Returns:
        The DataLoader (its ``sampler`` is the :class:`EnlargedSampler` in training).
    """
    workers: Dict[str, Any] = {
        "num_workers": num_worker_per_gpu,
        "pin_memory": pin_memory,
        "persistent_workers": persistent_workers and num_worker_per_gpu > 0,
    }
    if prefetch_factor is not None and num_worker_per_gpu > 0:
        workers["prefetch_factor"] = prefetch_factor
    generator = torch.Generator().manual_seed(int(seed))
    if phase != "train":
        shard = range(rank, len(dataset), num_replicas) if num_replicas > 1 else None
        return DataLoader(dataset, batch_size=1, shuffle=False, sampler=shard, generator=generator, **workers)
    sampler = EnlargedSampler(dataset, dataset_enlarge_ratio, seed, shuffle=use_shuffle, num_replicas=num_replicas,
                              rank=rank, generator=generator)
    if len(sampler) < batch_size_per_gpu:
        per_rank = f" / {num_replicas} processes" if num_replicas > 1 else ""
        raise OptionError(
            f"{batch_size_per_gpu} is more than the {len(sampler)} samples per epoch "
            f"({len(dataset)} images x dataset_enlarge_ratio {dataset_enlarge_ratio}{per_rank}); no full batch",
            key="batch_size_per_gpu",
        )
    return DataLoader(
        dataset, batch_size=batch_size_per_gpu, sampler=sampler, drop_last=True, generator=generator, **workers
    )
