"""Progressive training: patch size and batch size change by phase (Restormer's recipe), resumable exactly.

Option section (``datasets.train.progressive``), with Restormer's key meaning for ``iters``::

    progressive:
      iters: [92000, 64000, 48000, 36000, 36000, 24000]   # length of each phase, in iterations
      gt_sizes: [128, 160, 192, 256, 320, 384]           # GT patch side of each phase
      batch_sizes: [8, 5, 4, 2, 1, 1]                    # batch per GPU of each phase

Iteration ``t`` (1-based) belongs to the first phase ``i`` with ``t <= iters[0] + ... + iters[i]``; past
the sum the last phase continues (Restormer's ``train.py`` rule). The section's ``gt_size`` must be at
least every ``gt_sizes`` entry (it is the size the dataset checks its images against at start-up, as
Restormer's ``gt_size: 384``); ``batch_size_per_gpu`` only sizes the loader built before training starts.

How mcir does it (Restormer instead loads ``batch_size_per_gpu`` patches of ``gt_size`` and crops each
batch down): every phase gets its own ``DataLoader`` with the phase's batch size, over the same dataset,
sampler and worker-seed generator, and the dataset's ``gt_size`` is set to the phase's before the loader
starts (before its workers are created). So each phase loads only what it trains on, crops come from the
whole image, and any dataset with a ``gt_size`` attribute works (``PairedImageDataset``,
``SyntheticDegradationDataset``).

Exactness: a phase starts a fresh epoch of the sampler (the rest of the interrupted epoch's order is not
used). Then the data position is a function of the trainer's ``(iteration, epoch, batch_in_epoch)`` only:
inside an epoch the batch size is constant, so ``batch_in_epoch · batch_size`` is the sample offset, and a
run resumed at any iteration — including the last one of a phase — continues with the phase's sizes and the
same sample order as an uninterrupted run. Every DDP rank computes the same phase from the iteration, so all
ranks switch together (``batch_sizes`` are per rank, like ``batch_size_per_gpu``).

Integration surface (two call sites, movable as a unit):

* ``mcir/build.py`` (``build_progressive_loader``) builds ``build_progressive(opt, train_key, train_loader,
  net)`` after the network (``None`` when the section is absent); ``mcir/train.py`` passes it to the trainer.
* ``Trainer._batches`` (``mcir/engine/trainer.py``) delegates when it is set::

      if self.progressive is not None:
          yield from self.progressive.batches(self.state, self.logger.info)
          return

  ``state`` is anything with integer attributes ``iteration`` (last finished iteration; the next batch is
  for ``iteration + 1``), ``epoch`` and ``batch_in_epoch``, which ``batches`` advances as the trainer's own
  loop does; the trainer saves and restores them in its training state.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence

from torch import nn
from torch.utils.data import DataLoader

from mcir.errors import OptionError



@dataclass(frozen=True)
class Phase:
    """One phase: iterations ``first_iter .. last_iter`` (1-based, inclusive) train on ``gt_size`` patches
    in batches of ``batch_size`` per process. The last phase's ``last_iter`` is its nominal end."""

    index: int
    first_iter: int
    last_iter: int
    gt_size: int
    batch_size: int


class ProgressiveSchedule:
    """Phase lookup by iteration.

    Args:
        iters: Length of each phase (iterations, >= 1).
        gt_sizes: GT patch side of each phase.
        batch_sizes: Batch size per process of each phase.
    """

    def __init__(self, iters: Sequence[int], gt_sizes: Sequence[int], batch_sizes: Sequence[int]):
        self.ends = list(accumulate(int(n) for n in iters))
        starts = [1] + [end + 1 for end in self.ends[:-1]]
        self.phases = [Phase(i, s, e, int(g), int(b))
                       for i, (s, e, g, b) in enumerate(zip(starts, self.ends, gt_sizes, batch_sizes))]

    @classmethod
    def from_options(
        cls, section: Mapping[str, Any], key: str, size_multiple: int = 1, scale: int = 1, file: Optional[str] = None
    ) -> "ProgressiveSchedule":
        """The schedule of a validated ``progressive`` section (the option schema checked its lists).

        Args:
            section: ``{iters, gt_sizes, batch_sizes}``.
            key: Dotted option path of the section (``datasets.train.progressive``), for errors.
            size_multiple: The network's input size multiple: every LQ patch must be a multiple of it.
            scale: GT/LQ size ratio.
            file: Option file, for errors.

        Returns:
            The schedule.
        """
        for g in section["gt_sizes"]:
            if (g // scale) % size_multiple:
                raise OptionError(
                    f"expected multiples of scale {scale} x the network's size multiple {size_multiple}, "
                    f"got {list(section['gt_sizes'])}", file, f"{key}.gt_sizes",
                )
        return cls(section["iters"], section["gt_sizes"], section["batch_sizes"])

    def phase_at(self, iteration: int) -> Phase:
        """The phase iteration ``iteration`` (1-based) trains in; past the last phase, the last one.

        Args:
            iteration: Iteration number (>= 1).

        Returns:
            Its ``Phase``.
        """
        return self.phases[min(bisect_left(self.ends, iteration), len(self.phases) - 1)]


class ProgressiveLoader:
    """Batches of the current phase's size from per-phase loaders sharing one dataset and sampler.

    Args:
        base: The training loader built from the section (its dataset, sampler, generator and worker
            settings are reused; its sampler must have ``set_epoch(epoch, start=...)``).
        schedule: The phases.
    """

    def __init__(self, base: DataLoader, schedule: ProgressiveSchedule):
        self.base = base
        self.schedule = schedule

    def loader(self, phase: Phase) -> DataLoader:
        """A fresh loader for ``phase``; sets the dataset's ``gt_size`` (call before iterating it).

        Args:
            phase: The phase.

        Returns:
            A ``DataLoader`` of batch size ``phase.batch_size`` over the base loader's dataset and sampler.
        """
        base = self.base
        base.dataset.gt_size = phase.gt_size  # workers are created (and copy the dataset) on iteration
        extra: Dict[str, Any] = {}
        if base.num_workers > 0:
            extra = {"prefetch_factor": base.prefetch_factor, "persistent_workers": base.persistent_workers}
        return DataLoader(
            base.dataset, batch_size=phase.batch_size, sampler=base.sampler, drop_last=True,
            num_workers=base.num_workers, collate_fn=base.collate_fn, pin_memory=base.pin_memory,
            timeout=base.timeout, worker_init_fn=base.worker_init_fn, generator=base.generator, **extra,
        )

    def batches(self, state: Any, log: Optional[Callable[[str], None]] = None) -> Iterator[Any]:
        """Endless batches for iterations ``state.iteration + 1, ...``, advancing ``state.epoch`` and
        ``state.batch_in_epoch``; a phase starts a fresh epoch (see the module docstring).

        Args:
            state: Object with ``iteration``, ``epoch`` and ``batch_in_epoch`` (read and updated in place).
            log: Called with a line when a phase starts (or resumes).

        Returns:
            An iterator of batches.
        """
        phase = self.schedule.phase_at(state.iteration + 1)
        if state.iteration > 0 and self.schedule.phase_at(state.iteration).index != phase.index:
            # resumed right after a phase's last iteration: the uninterrupted run started an epoch here
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        sampler = self.base.sampler
        while True:
            loader = self.loader(phase)
            if log is not None:
                log(f"progressive training: phase {phase.index + 1}/{len(self.schedule.phases)} from iteration "
                    f"{phase.first_iter}: gt_size {phase.gt_size}, batch {phase.batch_size} per process")
            switched = False
            while not switched:
                sampler.set_epoch(state.epoch, start=state.batch_in_epoch * phase.batch_size)
                for batch in loader:
                    state.batch_in_epoch += 1
                    yield batch
                    upcoming = self.schedule.phase_at(state.iteration + 1)
                    if upcoming.index != phase.index:
                        phase, switched = upcoming, True
                        break
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0


def build_progressive(
    opt: Mapping[str, Any], train_key: str, loader: DataLoader, net: nn.Module
) -> Optional[ProgressiveLoader]:
    """The progressive loader of a run, or None when ``datasets.<train_key>`` has no ``progressive`` section.

    The option schema checked the section; what depends on the network (its size multiple) and on the data
    (every phase needs a full batch per epoch) is checked here.

    Args:
        opt: Validated options (``datasets``, ``scale``, ``opt_path``).
        train_key: Key of the training dataset section (``train``).
        loader: The training loader built from that section.
        net: The network (its ``size_multiple``).

    Returns:
        A ``ProgressiveLoader`` or None.
    """
    section = opt["datasets"][train_key].get("progressive")
    if section is None:
        return None
    file, key = opt.get("opt_path"), f"datasets.{train_key}.progressive"
    dataset = loader.dataset
    scale = int(getattr(dataset, "scale", opt.get("scale", 1)))
    multiple = int(getattr(getattr(net, "module", net), "size_multiple", 1))
    schedule = ProgressiveSchedule.from_options(section, key, multiple, scale, file)
    per_epoch = len(loader.sampler) if loader.sampler is not None else len(dataset)
    for p in schedule.phases:
        if p.batch_size > per_epoch:
            raise OptionError(f"{p.batch_size} is more than the {per_epoch} samples per epoch; no full batch",
                              file, f"{key}.batch_sizes")
    return ProgressiveLoader(loader, schedule)
