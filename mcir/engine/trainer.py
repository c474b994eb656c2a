"""The iteration-based training loop: steps, logging, validation and checkpoints (no option parsing here)."""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Tuple

import torch
from torch.utils.data import DataLoader

from mcir.core.dist import gather_to_main, get_rank, get_world_size, is_main_process, mean_across_ranks
from mcir.core.rng import get_rng_state, set_rng_state
from mcir.engine.checkpointer import Checkpointer
from mcir.engine.logger import TensorBoardWriter
from mcir.engine.validation import Validation
from mcir.engine.preemption import SignalFlag, TrainingPreempted, stop_requested
from mcir.engine.train_step import TrainStep
from mcir.errors import StopTraining

if TYPE_CHECKING:
    from mcir.data.progressive import ProgressiveLoader


@dataclass
class LoopState:
    """Where the loop is: the last finished iteration, the epoch, and batches consumed in that epoch."""

    iteration: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


@dataclass(frozen=True)
class Schedule:
    """How often things happen (iterations; ``<= 0`` disables)."""

    total_iter: int
    print_freq: int = 100
    val_freq: int = 5000
    save_checkpoint_freq: int = 5000
    accumulate_steps: int = 1

    @property
    def host_read_freqs(self) -> Tuple[int, int]:
        """The frequencies at which the loop reads the step's state on the host (logging, checkpoints)."""
        return self.print_freq, self.save_checkpoint_freq


class Trainer:
    """Runs a :class:`TrainStep` until ``total_iter``, validating and checkpointing on schedule.

    In distributed training every rank runs the loop (they meet in collectives), loss logs are averaged
    over ranks, and only rank 0 writes checkpoints (with every rank's RNG state in them).

    Args:
        step: The training step (model, optimizer, scheduler, EMA, guard).
        train_loader: Training loader whose sampler has ``set_epoch(epoch, start=0)``.
        schedule: Frequencies and the iteration budget. One iteration is one optimizer step: with
            ``accumulate_steps = k`` it consumes k batches, and the scheduler, EMA and negatives advance once.
        checkpointer: Writes weights and training states.
        logger: Run logger.
        tb: TensorBoard writer (may be disabled).
        validation: What runs every ``val_freq`` (sets, metrics, sample images, best weights); None: nothing.
        progress: Show a tqdm bar.
        progressive: Per-phase patch and batch sizes (:mod:`mcir.data.progressive`); None: ``train_loader``'s.
    """

    def __init__(
        self,
        step: TrainStep,
        train_loader: DataLoader,
        schedule: Schedule,
        checkpointer: Checkpointer,
        logger: logging.Logger,
        tb: TensorBoardWriter,
        validation: Optional[Validation] = None,
        progress: bool = True,
        progressive: Optional[ProgressiveLoader] = None,
    ):
        self.step = step
        self.train_loader = train_loader
        self.schedule = schedule
        self.checkpointer = checkpointer
        self.logger = logger
        self.tb = tb
        self.progress = progress
        self.progressive = progressive
        self.state = LoopState()
        self.validation = validation
        self._best_without_validation: Dict[str, Dict[str, Any]] = {}

    # ---- state ------------------------------------------------------------------------------
    def training_state(self) -> Dict[str, Any]:
        """Everything to resume exactly: loop position, model state and RNG states.

        Called on every rank in distributed training (it gathers the ranks' RNG states on rank 0).
        """
        rng = get_rng_state()
        state = {
            "iteration": self.state.iteration,
            "epoch": self.state.epoch,
            "batch_in_epoch": self.state.batch_in_epoch,
            "samples_per_step": self._samples_per_step(),
            "model": self.step.state_dict(),
            "rng": rng,
            "best": dict(self.best),
        }
        if get_world_size() > 1:
            state["rng_per_rank"] = gather_to_main(rng)
        return state

    def load_training_state(self, state: Dict[str, Any]) -> None:
        """Restore a state written by :meth:`training_state` (the same state on every rank).

        Resuming with another number of processes or batch size keeps the epoch and continues at the
        first batch not fully seen yet (exactness needs the same world size).
        """
        self.step.load_state_dict(state["model"])
        per_step = self._samples_per_step()
        batch = int(state["batch_in_epoch"]) * int(state.get("samples_per_step", per_step)) // per_step
        self.state = LoopState(int(state["iteration"]), int(state["epoch"]), batch)
        per_rank = state.get("rng_per_rank")
        if per_rank is not None and len(per_rank) == get_world_size():
            set_rng_state(per_rank[get_rank()])
        elif get_rank() == 0:
            set_rng_state(state["rng"])
        # other ranks of a resized job keep their fresh per-rank seeds rather than copy rank 0's stream
        self.best.clear()
        self.best.update(state.get("best", {}))

    def save_checkpoint(self) -> Optional[str]:
        """Write weights and the training state for the current iteration (collective; rank 0 writes).

        Returns:
            The state's path on rank 0, None on other ranks.
        """
        state = self.training_state()
        if is_main_process():
            return str(self.checkpointer.save(self.state.iteration, self.step.weights(), state))
        return None

    def _samples_per_step(self) -> int:
        """Samples one iteration consumes over all ranks."""
        replicas = getattr(self.train_loader.sampler, "num_replicas", 1)
        return int(self.train_loader.batch_size or 1) * int(replicas)

    # ---- loop -------------------------------------------------------------------------------
    def _batches(self) -> Iterator[Dict[str, Any]]:
        """Endless batches, resuming mid-epoch at the sampler level (no data is loaded to skip)."""
        if self.progressive is not None:  # phases of patch/batch sizes: mcir/data/progressive.py
            yield from self.progressive.batches(self.state, self.logger.info)
            return
        sampler = self.train_loader.sampler
        while True:
            sampler.set_epoch(self.state.epoch, start=self.state.batch_in_epoch * self.train_loader.batch_size)
            for batch in self.train_loader:
                self.state.batch_in_epoch += 1
                yield batch
            self.state.epoch += 1
            self.state.batch_in_epoch = 0

    def run(self) -> Dict[str, Dict[str, float]]:
        """Train to ``total_iter``.

        Returns:
            The last validation averages per dataset (empty without validation).
        """
        sched = self.schedule
        if self.state.iteration >= sched.total_iter:
            self.logger.info("nothing to do: iteration %d >= total_iter %d", self.state.iteration, sched.total_iter)
            return self.history
        pbar = _progress_bar(self.progress, sched.total_iter, self.state.iteration)
        self.logger.info("start training from iteration %d to %d", self.state.iteration, sched.total_iter)
        t_data = t_iter = time.perf_counter()
        running: Dict[str, torch.Tensor] = {}
        n_running = 0
        batches = self._batches()
        micro = max(1, sched.accumulate_steps)
        sigterm = SignalFlag(signal.SIGTERM).install()
        try:
            while self.state.iteration < sched.total_iter:
                batch = next(batches) if micro == 1 else [next(batches) for _ in range(micro)]
                t_ready = time.perf_counter()
                it = self.state.iteration + 1
                try:
                    logs = self.step(batch, it)
                    stop = stop_requested(sigterm.received)  # collective under DDP: asked once per iteration
                    if stop or any(_due(it, f, sched.total_iter) for f in sched.host_read_freqs):
                        self.step.flush()  # the guard's verdict on the last step, before logs and saves
                except StopTraining:
                    self.state.iteration = it
                    self.save_checkpoint()
                    raise
                self.state.iteration = it
                for k, v in logs.items():
                    running[k] = running.get(k, 0) + v
                n_running += 1
                if pbar is not None:
                    pbar.update(1)
                if _due(it, sched.print_freq, sched.total_iter):
                    now = time.perf_counter()
                    means = _rank_means(running, n_running)
                    lr = self.step.loggable_lr(it)
                    self._log_train(it, means, lr, now - t_iter, t_ready - t_data, n_running, pbar)
                    running, n_running, t_iter = {}, 0, now
                if _due(it, sched.val_freq, sched.total_iter):
                    self.validate()
                saved = _due(it, sched.save_checkpoint_freq, sched.total_iter)
                if saved:
                    self.save_checkpoint()
                    self.logger.info("saved checkpoint at iteration %d", it)
                if stop and it < sched.total_iter:
                    path = self.checkpointer.states_dir / f"{it}.state" if saved else self.save_checkpoint()
                    raise TrainingPreempted(
                        f"received SIGTERM: stopped after iteration {it} of {sched.total_iter}; training state "
                        f"saved to {path}; continue with --auto_resume"
                    )
                t_data = time.perf_counter()
        finally:
            sigterm.restore()
            if pbar is not None:
                pbar.close()
        if is_main_process():
            self.checkpointer.save_latest_weights(self.step.weights())
        return self.history

    def _log_train(
        self,
        it: int,
        means: Dict[str, float],
        lr: Optional[float],
        elapsed: float,
        data_time: float,
        n: int,
        pbar: Any,
    ) -> None:
        msg = ", ".join(f"{k}: {v:.4e}" for k, v in means.items())
        skipped, suspicious = self.step.skipped_steps, self.step.suspicious_steps
        if skipped:
            msg += f", skipped steps: {skipped}"
        if suspicious:
            msg += f", suspicious steps: {suspicious}"
        rate = elapsed / max(n, 1)
        eta = rate * (self.schedule.total_iter - it)
        self.logger.info(
            "[epoch %d iter %d] lr: %.3e, %s, time/iter: %.3fs, eta: %s",
            self.state.epoch,
            it,
            lr or 0.0,
            msg,
            rate,
            _fmt_eta(eta),
        )
        if pbar is not None:
            pbar.set_postfix({k: f"{v:.3e}" for k, v in means.items()}, refresh=False)
        scalars = {f"losses/{k}": v for k, v in means.items()}
        if lr is not None:
            scalars["lr"] = lr
        self.tb.scalars(scalars, it)

    def validate(self) -> Dict[str, Dict[str, float]]:
        """Evaluate every validation set now (logged, and the best weights kept); returns the averages."""
        if self.validation is None:
            return {}
        return self.validation.run(self.step, self.state.iteration, self.checkpointer, self.logger, self.tb)

    @property
    def history(self) -> Dict[str, Dict[str, float]]:
        """The last validation averages per set."""
        return self.validation.history if self.validation is not None else {}

    @property
    def best(self) -> Dict[str, Dict[str, Any]]:
        """The best value so far per validation set (``metric``, ``better``, ``value``, ``iter``)."""
        return self.validation.best if self.validation is not None else self._best_without_validation


def _rank_means(running: Dict[str, torch.Tensor], n: int) -> Dict[str, float]:
    """Mean of each logged term over the last ``n`` iterations and over all ranks."""
    if get_world_size() == 1:
        return {k: float(v) / n for k, v in running.items()}
    sums = torch.stack([torch.as_tensor(v, dtype=torch.float64).detach().cpu() for v in running.values()])
    return dict(zip(running, (mean_across_ranks(sums) / n).tolist()))


def _due(it: int, freq: int, total: int) -> bool:
    return (freq > 0 and it % freq == 0) or it == total


def _fmt_eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True, leave=False)


