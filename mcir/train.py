"""Train a restoration model: ``python mcir/train.py -opt options/train/X.yml [--auto_resume] [--set k=v]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

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
    opt: Dict[str, Any], run_root: Path, auto_resume: bool
) -> Tuple[Optional[Path], Optional[Dict], List[str]]:
    """The training state to resume from: ``path.resume_state``, else (with ``--auto_resume``) the newest
    good state of the run folder; damaged newer states are set aside and reported.

    Returns:
        ``(path, state, warnings)``; ``(None, None, warnings)`` for a fresh start.
    """
    from mcir.engine.checkpoint import Checkpointer, load_training_state

    trusted = opt["path"].get("trust_checkpoint", False)
    explicit = opt["path"].get("resume_state")
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


def train(opt: Dict[str, Any], auto_resume: bool = False, launcher: str = "none") -> Dict[str, Dict[str, float]]:
    """Build everything from resolved options and train (one process of a distributed job, or alone).

    Args:
        opt: Options from :func:`mcir.options.load_options` (``is_train=True``).
        auto_resume: Resume from the newest state in the run folder when there is one.
        launcher: ``none``, ``pytorch`` (torchrun) or ``slurm``: how the processes were started.

    Returns:
        The last validation averages per validation set (on every rank).
    """
    from mcir.engine.dist import init_dist, shutdown

    ctx = init_dist(launcher, opt["num_gpu"], opt.get("dist_params"), opt.get("opt_path"))
    try:
        history = _train(opt, auto_resume, ctx)
    except BaseException:
        shutdown(ctx, wait=False)  # the other ranks may be stuck elsewhere: do not wait for them
        raise
    shutdown(ctx)
    return history


def _train(opt: Dict[str, Any], auto_resume: bool, ctx: Any) -> Dict[str, Dict[str, float]]:
    import logging

    import torch

    from mcir.data import build_loader
    from mcir.engine.checkpoint import Checkpointer
    from mcir.engine.dist import distribute_model, run_on_main
    from mcir.engine.evaluator import Evaluator
    from mcir.engine.logger import TensorBoardWriter, close_logger, get_run_logger
    from mcir.engine.rng import seed_everything
    from mcir.engine.run_dir import RunDir, experiment_root
    from mcir.engine.trainer import Schedule, Trainer
    from mcir.models import build_model
    from mcir.options import dataset_sections, dump_options

    file = opt.get("opt_path")
    seed = opt["manual_seed"]
    # Per-rank seeds give each rank its own crops and flips; rank 0 (or a lone process) keeps the seed.
    seed_everything(seed + ctx.rank, opt["deterministic"])
    device = ctx.device
    run = RunDir(experiment_root(opt["name"], opt["path"].get("experiments_root")))

    # Build and check everything before touching the run folder, so bad input leaves nothing behind.
    train_keys = dataset_sections(opt, "train")
    if len(train_keys) != 1:
        raise OptionError("needs exactly one 'datasets.train' section", file, "datasets")
    train_set, train_loader = build_loader(
        opt["datasets"][train_keys[0]], f"datasets.{train_keys[0]}", "train", opt["scale"], seed,
        num_replicas=ctx.world_size, rank=ctx.rank,
    )
    with torch.random.fork_rng(devices=[]):  # the check must not shift the run's random stream
        train_set[0]  # noqa: B018 - fail now on an unreadable first pair, not mid-run
    val_loaders = {}
    for key in dataset_sections(opt, "val"):
        cfg = opt["datasets"][key]
        val_loaders[cfg.get("name") or key] = build_loader(
            cfg, f"datasets.{key}", "val", opt["scale"], seed, num_replicas=ctx.world_size, rank=ctx.rank
        )[1]
    model = build_model(opt, device, is_train=True)
    distribute_model(model, ctx, opt["find_unused_parameters"])
    # Rank 0 finds and reads the state (setting damaged ones aside); every rank resumes from that object.
    resume, state, resume_warnings = run_on_main(lambda: _find_resume(opt, run.root, auto_resume))

    # Only rank 0 touches the run folder (archive, logs, options, TensorBoard, checkpoints, images).
    archived = run.create(archive_existing=resume is None) if ctx.is_main else None
    stamp = time.strftime("%Y%m%d_%H%M%S")
    if ctx.is_main:
        logger = get_run_logger(opt["name"], str(run.logs / f"train_{opt['name']}_{stamp}.log"))
        dump_options(opt, str(run.logs / f"options_{stamp}.yml"))
        for msg in resume_warnings:
            logger.warning(msg)
    else:
        logger = get_run_logger(f"{opt['name']}.rank{ctx.rank}", None, level=logging.WARNING)
    use_tb = opt["logger"]["use_tb_logger"] and ctx.is_main
    tb = TensorBoardWriter(str(run.logs / "tb") if use_tb else None)
    val = opt["val"]
    trainer = Trainer(
        model=model,
        train_loader=train_loader,
        schedule=Schedule(
            total_iter=opt["train"]["total_iter"],
            print_freq=opt["logger"]["print_freq"],
            val_freq=val["val_freq"],
            save_checkpoint_freq=opt["logger"]["save_checkpoint_freq"],
            accumulate_steps=opt["train"]["accumulate_steps"],
        ),
        checkpointer=Checkpointer(str(run.models), str(run.training_states), opt["logger"]["keep_last"]),
        logger=logger,
        tb=tb,
        val_loaders=val_loaders,
        evaluator=Evaluator(val["metrics"], num_save_img=val["num_save_img"], pbar=val["pbar"]),
        infer_options={"use_ema": val["use_ema"], "tile": val["tile"], "tile_overlap": val["tile_overlap"],
                       "self_ensemble": val["self_ensemble"]},
        save_img_dir=str(run.visualization) if val["save_img"] else None,
        progress=opt["logger"]["pbar"] and sys.stderr.isatty() and ctx.is_main,
        num_tb_img=val["num_tb_img"],
        sample_dir=str(run.visualization),
    )
    if state is not None:
        try:
            trainer.load_training_state(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{resume}: does not fit this model ({str(exc).splitlines()[0]})") from exc
        logger.info("resumed from %s at iteration %d", resume, trainer.state.iteration)
    n_params = sum(p.numel() for p in model.net_g.parameters())
    batch = train_loader.batch_size
    logger.info(
        "%s: %s with %s parameters on %s; %d training pairs, batch %s",
        opt["name"],
        opt["network_g"]["type"],
        f"{n_params:,}",
        device if ctx.world_size == 1 else f"{ctx.world_size} processes ({ctx.backend}, {device.type})",
        len(train_set),
        batch if ctx.world_size == 1 else
        f"{batch} per {'GPU' if device.type == 'cuda' else 'process'} x {ctx.world_size} = {batch * ctx.world_size}",
    )
    try:
        history = trainer.run()
    except MCIRError:
        tb.close()
        close_logger(logger)
        if ctx.is_main and resume is None and not trainer.checkpointer.list_states():
            _discard_run(run.root, archived)  # a bad-input failure leaves no half-made run behind
        raise
    tb.close()
    close_logger(logger)
    return history


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
