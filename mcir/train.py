"""Train a restoration model: ``python mcir/train.py -opt options/train/X.yml [--auto_resume] [--set k=v]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

if __package__ in (None, ""):  # run as a script: import mcir from this checkout, not mcir/ siblings
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from mcir.cli import base_parser, run_main, trust_overrides  # noqa: E402
from mcir.errors import CheckpointError, MCIRError, OptionError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the training command."""
    parser = base_parser("Train an mcir restoration model.", launchers=("none", "pytorch", "slurm"))
    parser.add_argument(
        "--auto_resume",
        action="store_true",
        help="resume from the newest good training state in the run folder (start fresh when there is none)",
    )
    return parser


def _find_resume(
    opt: Mapping[str, Any], run_root: Path, auto_resume: bool
) -> Tuple[Optional[Path], Optional[Dict], List[str]]:
    """The training state to resume from: ``path.resume_state``, else (with ``--auto_resume``) the newest
    good state of the run folder; damaged newer states are set aside and reported.

    Returns:
        ``(path, state, warnings)``; ``(None, None, warnings)`` for a fresh start.
    """
    from mcir.core.checkpoint_io import load_training_state
    from mcir.engine.checkpointer import Checkpointer

    trusted = opt["path"]["trust_checkpoint"]
    explicit = opt["path"]["resume_state"]
    if explicit:
        if not Path(explicit).is_file():
            raise OptionError(f"training state not found: {explicit}", opt.get("opt_path"), "path.resume_state")
        return Path(explicit), load_training_state(explicit, trusted), []
    warnings: List[str] = []
    if auto_resume:
        checkpointer = Checkpointer(str(run_root / "models"), str(run_root / "training_states"))
        for partial in checkpointer.remove_partial_writes():
            warnings.append(f"removed {partial}, left unfinished by an interrupted save")
        found = checkpointer.newest_good_state(trusted, warn=warnings.append)
        if found is not None:
            return found[0], found[1], warnings
    return None, None, warnings


def train(opt: Mapping[str, Any], auto_resume: bool = False, launcher: str = "none") -> Dict[str, Dict[str, float]]:
    """Build everything from validated options and train (one process of a distributed job, or alone).

    Args:
        opt: Options from :func:`mcir.options.load_options` (``is_train=True``).
        auto_resume: Resume from the newest state in the run folder when there is one.
        launcher: ``none``, ``pytorch`` (torchrun) or ``slurm``: how the processes were started.

    Returns:
        The last validation averages per validation set (on every rank).
    """
    from mcir.engine.distributed import init_dist, shutdown

    ctx = init_dist(launcher, opt["num_gpu"], opt["dist_params"], opt.get("opt_path"))
    try:
        history = _train(opt, auto_resume, ctx)
    except BaseException:
        shutdown(ctx, wait=False)  # the other ranks may be stuck elsewhere: do not wait for them
        raise
    shutdown(ctx)
    return history


def _train(opt: Mapping[str, Any], auto_resume: bool, ctx: Any) -> Dict[str, Dict[str, float]]:
    """Build (all of it before the run folder is touched, so bad input leaves nothing behind), then run."""
    import torch

    from mcir.build import build_progressive_loader, build_training, build_training_data
    from mcir.core.dist import run_on_main
    from mcir.core.rng import seed_everything
    from mcir.engine.distributed import distribute
    from mcir.engine.run_dir import RunDir, experiment_root

    # Per-rank seeds give each rank its own crops and flips; rank 0 (or a lone process) keeps the seed.
    seed_everything(opt["manual_seed"] + ctx.rank, opt["deterministic"])
    run = RunDir(experiment_root(opt["name"], opt["path"]["experiments_root"]))
    train_set, train_loader, val_loaders = build_training_data(opt, ctx.rank, ctx.world_size)
    with torch.random.fork_rng(devices=[]):  # the check must not shift the run's random stream
        train_set[0]  # noqa: B018 - fail now on an unreadable first pair, not mid-run
    step = build_training(opt, ctx.device)
    progressive = build_progressive_loader(opt, train_loader, step.model.net_g)  # None without the section
    distribute(step, ctx, opt["find_unused_parameters"])
    # Rank 0 finds and reads the state (setting damaged ones aside); every rank resumes from that object.
    resume, state, resume_warnings = run_on_main(lambda: _find_resume(opt, run.root, auto_resume))
    # Only rank 0 touches the run folder (archive, logs, options, TensorBoard, checkpoints, images).
    archived = run.create(archive_existing=resume is None) if ctx.is_main else None
    logger, tb = _open_logs(opt, run, ctx, resume_warnings)
    trainer = _trainer(opt, step, train_loader, val_loaders, run, logger, tb, ctx, progressive)
    if state is not None:
        try:
            trainer.load_training_state(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{resume}: does not fit this model ({str(exc).splitlines()[0]})") from exc
        logger.info("resumed from %s at iteration %d", resume, trainer.state.iteration)
    _log_setup(opt, step, len(train_set), train_loader.batch_size, logger, ctx)
    try:
        history = trainer.run()
    except MCIRError:
        _close_logs(logger, tb)
        if ctx.is_main and resume is None and not trainer.checkpointer.list_states():
            _discard_run(run.root, archived)  # a bad-input failure leaves no half-made run behind
        raise
    _close_logs(logger, tb)
    return history


def _open_logs(opt: Mapping[str, Any], run: Any, ctx: Any, warnings: List[str]) -> Tuple[Any, Any]:
    """The run logger (a file on rank 0), the resolved options file, and the TensorBoard writer."""
    import logging

    from mcir.engine.logger import TensorBoardWriter, get_run_logger
    from mcir.options import dump_options

    stamp = time.strftime("%Y%m%d_%H%M%S")
    if ctx.is_main:
        logger = get_run_logger(opt["name"], str(run.logs / f"train_{opt['name']}_{stamp}.log"))
        dump_options(opt, str(run.logs / f"options_{stamp}.yml"))
        for msg in warnings:
            logger.warning(msg)
    else:
        logger = get_run_logger(f"{opt['name']}.rank{ctx.rank}", None, level=logging.WARNING)
    use_tb = opt["logger"]["use_tb_logger"] and ctx.is_main
    return logger, TensorBoardWriter(str(run.logs / "tb") if use_tb else None)


def _close_logs(logger: Any, tb: Any) -> None:
    from mcir.engine.logger import close_logger

    tb.close()
    close_logger(logger)


def _trainer(opt: Mapping[str, Any], step: Any, train_loader: Any, val_loaders: Any, run: Any, logger: Any,
             tb: Any, ctx: Any, progressive: Any = None) -> Any:
    """The training loop of these options."""
    from mcir.build import build_evaluator, eval_wrapper, infer_options
    from mcir.engine.checkpointer import Checkpointer
    from mcir.engine.trainer import Schedule, Trainer
    from mcir.engine.validation import Validation

    val, log_cfg = opt["val"], opt["logger"]
    return Trainer(
        step=step,
        train_loader=train_loader,
        schedule=Schedule(
            total_iter=opt["train"]["total_iter"],
            print_freq=log_cfg["print_freq"],
            val_freq=val["val_freq"],
            save_checkpoint_freq=log_cfg["save_checkpoint_freq"],
            accumulate_steps=opt["train"]["accumulate_steps"],
        ),
        checkpointer=Checkpointer(str(run.models), str(run.training_states), log_cfg["keep_last"]),
        logger=logger,
        tb=tb,
        validation=Validation(
            build_evaluator(val),
            val_loaders,
            infer_options={"use_ema": val["use_ema"], **infer_options(val)},
            save_img_dir=str(run.visualization) if val["save_img"] else None,
            num_tb_img=val["num_tb_img"],
            sample_dir=str(run.visualization),
            eval_wrap=eval_wrapper(val),
        ) if val_loaders else None,
        progress=log_cfg["pbar"] and sys.stderr.isatty() and ctx.is_main,
        progressive=progressive,
    )


def _log_setup(opt: Mapping[str, Any], step: Any, n_pairs: int, batch: int, logger: Any, ctx: Any) -> None:
    """One line: the network, its size, the device(s), the data and the batch."""
    n_params = sum(p.numel() for p in step.model.net_g.parameters())
    where = ctx.device if ctx.world_size == 1 else f"{ctx.world_size} processes ({ctx.backend}, {ctx.device.type})"
    unit = "GPU" if ctx.device.type == "cuda" else "process"
    batches = batch if ctx.world_size == 1 else f"{batch} per {unit} x {ctx.world_size} = {batch * ctx.world_size}"
    logger.info("%s: %s with %s parameters on %s; %d training pairs, batch %s",
                opt["name"], opt["network_g"]["type"], f"{n_params:,}", where, n_pairs, batches)


def _discard_run(root: Path, archived: Optional[Path]) -> None:
    """Remove a run folder that never saved a state, and put back the run it archived."""
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    if archived is not None and archived.exists():
        archived.rename(root)


def _body(args: argparse.Namespace) -> Dict[str, Any]:
    from mcir.options import load_options

    opt = load_options(args.opt, args.set + trust_overrides(args), is_train=True, strict_options=args.strict_options)
    return train(opt, auto_resume=args.auto_resume, launcher=args.launcher)


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (``mcir-train``)."""
    return run_main(_body, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
