"""Build what the commands run from validated option sections: networks, models, training steps, data.

The only place where option sections become objects. Every section was checked by the option schema
(:mod:`mcir.options`), so nothing here validates options; what is checked here depends on the machine
(a device, an AMP mode) or on files (weights).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mcir.archs.grad_checkpoint import enable_grad_checkpoint
from mcir.core.averaged_model import AveragedModel
from mcir.core.checkpoint_io import load_network_weights, torch_load, unwrap_state_dict
from mcir.core.compile import CompiledModule
from mcir.core.optim_step import OptimStep, check_amp
from mcir.data import build_loader
from mcir.data.progressive import ProgressiveLoader, build_progressive
from mcir.engine.evaluator import Evaluator
from mcir.engine.guard import StepGuard
from mcir.engine.model_list import ModelSpec
from mcir.engine.train_step import TrainStep
from mcir.errors import OptionError
from mcir.method.eq1_negatives import NegativeBank
from mcir.models.restoration_model import RestorationModel
from mcir.options import dataset_sections
from mcir.registry import (
    ARCH_REGISTRY,
    LOSS_REGISTRY,
    MODEL_REGISTRY,
    OPTIMIZER_REGISTRY,
    SCHEDULER_REGISTRY,
    construct,
)

Section = Mapping[str, Any]


def build_network(net_cfg: Section, path_cfg: Optional[Section] = None, file: Optional[str] = None) -> nn.Module:
    """The ``network_g`` arch, with ``path.pretrain_network_g`` loaded when the ``path`` section names it.

    Args:
        net_cfg: The ``network_g`` section.
        path_cfg: The ``path`` section (or a ``models`` entry's weights), or None.
        file: Option file, for messages.

    Returns:
        The network (on the CPU).
    """
    net = construct(ARCH_REGISTRY, net_cfg, "network_g", file)
    if path_cfg and path_cfg.get("pretrain_network_g"):
        load_network_weights(
            net,
            path_cfg["pretrain_network_g"],
            path_cfg.get("param_key_g") or "params",
            path_cfg.get("strict_load_g", True),
            trusted=path_cfg.get("trust_checkpoint", False),
        )
    return net


def build_eval_network(spec: ModelSpec, trusted: bool, file: Optional[str] = None) -> nn.Module:
    """The network of one row of a test run (its arch and weights)."""
    weights = {
        "pretrain_network_g": spec.pretrain_network_g,
        "param_key_g": spec.param_key_g,
        "strict_load_g": spec.strict_load_g,
        "trust_checkpoint": trusted,
    }
    return build_network(spec.network_g, weights, file)


def _loss(train: Section, name: str, file: Optional[str]) -> Optional[nn.Module]:
    cfg = train.get(name)
    return construct(LOSS_REGISTRY, cfg, f"train.{name}", file) if cfg else None


def build_model(opt: Section, net_g: nn.Module) -> RestorationModel:
    """The task model of ``model_type`` around ``net_g``, with the losses of the ``train`` section.

    Args:
        opt: Validated training options (``model_type``, ``network_g``, ``train``, ``path``, ``manual_seed``).
        net_g: The target network (channels-last already when the run asks for it).

    Returns:
        A :class:`RestorationModel`, or an :class:`MCIRModel` with its negatives and SPN loss.
    """
    file, train = opt.get("opt_path"), opt["train"]
    # VGG-based losses draw random weights before loading theirs: a forked RNG keeps the run's stream.
    with torch.random.fork_rng(devices=[]):
        losses = {
            "pixel_loss": _loss(train, "pixel_opt", file),
            "perceptual_loss": _loss(train, "perceptual_opt", file),
            "contrast_loss": _loss(train, "contrast_opt", file),
        }
        model_cls = MODEL_REGISTRY.get(opt["model_type"])
        if not getattr(model_cls, "has_negatives", False):
            return model_cls(net_g, **losses)
        spn = construct(LOSS_REGISTRY, train["neg_opt"], "train.neg_opt", file)
    negatives = build_negatives(net_g, opt["network_g"], train["negatives"], opt["path"], opt["manual_seed"], file)
    if train["compile"]:  # the negatives' forwards and the SPN VGG too (benchmarks/README.md: it pays)
        negatives.compile_forwards(_compiler("a negative network"))
        spn.compile_vgg(_compiler("the SPN VGG"))
    return model_cls(net_g, negatives=negatives, spn=spn, neg_ratio=train.get("neg_ratio"), **losses)


def _compiler(what: str) -> Callable[[nn.Module], nn.Module]:
    """``torch.compile`` behind :class:`CompiledModule` (plain names, fallback with a warning)."""
    return lambda net: CompiledModule(net, what)


def build_negatives(
    net_g: nn.Module, net_cfg: Section, neg: Section, path_cfg: Section, seed: int, file: Optional[str] = None
) -> NegativeBank:
    """Eq. 1's negative bank from ``train.negatives`` (fresh weights come from ``net_cfg``'s arch).

    Args:
        net_g: The target network.
        net_cfg: ``network_g`` (builds freshly initialised copies for ``blend`` / ``random_fixed``).
        neg: The ``train.negatives`` section.
        path_cfg: The ``path`` section (``trust_checkpoint`` for ``pretrained_path``).
        seed: The run's seed (the fresh weights are drawn from it, the same on every rank).
        file: Option file, for messages.
    """
    pretrained = None
    if neg.get("pretrained_path"):
        state = torch_load(neg["pretrained_path"], path_cfg.get("trust_checkpoint", False))
        pretrained = unwrap_state_dict(state, "params", neg["pretrained_path"])
    return NegativeBank(
        net_g,
        steps=list(neg["steps"]),
        decay=neg["decay"] if isinstance(neg["decay"], float) else list(neg["decay"]),
        init=neg["init"],
        neg_start=neg["neg_start"],
        start_iter=neg["start_iter"],
        factory=lambda: construct(ARCH_REGISTRY, net_cfg, "network_g", file),
        pretrained=pretrained,
        precision=neg["precision"],
        seed=seed,
    )


def build_train_step(model: RestorationModel, train: Section, device: torch.device,
                     file: Optional[str] = None) -> TrainStep:
    """The training step: optimizer wrapper, scheduler, EMA and guard from the ``train`` section.

    Args:
        model: The task model.
        train: The ``train`` section.
        device: Where training runs.
        file: Option file, for messages.
    """
    amp = "off" if train["amp"] is False else train["amp"]
    try:
        check_amp(amp, device.type)
    except ValueError as exc:  # the machine cannot do what the options ask
        raise OptionError(str(exc), file=file, key="train.amp") from exc
    if amp == "fp16" and device.type == "cpu":
        warnings.warn(
            "train.amp: fp16 on the CPU runs, but torch takes a slow path for fp16 convolution gradients there "
            "(over 100x slower than fp32 on our test CPU); use amp: bf16 on the CPU",
            stacklevel=2,
        )
    params = [p for p in model.net_g.parameters() if p.requires_grad]
    optimizer = construct(OPTIMIZER_REGISTRY, train["optim_g"], "train.optim_g", file, params=params)
    scheduler = None
    if train.get("scheduler"):
        scheduler = construct(SCHEDULER_REGISTRY, train["scheduler"], "train.scheduler", file, optimizer=optimizer)
    optim = OptimStep(
        optimizer,
        params,
        train.get("clip_grad_norm"),
        train["warmup_iter"],
        amp=amp,
        accumulate_steps=train["accumulate_steps"],
        device_type=device.type,
    )
    ema = AveragedModel(model.net_g, decay=train["ema_decay"]) if train["ema_decay"] > 0 else None
    g = train["guard"]
    guard = StepGuard(g["action"], g["explode_factor"], g["patience"], g["snapshot_freq"])
    return TrainStep(model, optim, device, scheduler, ema, guard, channels_last=train["channels_last"],
                     compile_net=_compiler("the target network") if train["compile"] else None)


def build_training(opt: Section, device: torch.device) -> TrainStep:
    """Network, task model and training step of a validated training option tree.

    Args:
        opt: Validated training options.
        device: Where training runs.

    Returns:
        The :class:`TrainStep` (its ``model`` holds the network, losses and, for MCIR, the negatives).
    """
    net_g = build_network(opt["network_g"], opt["path"], opt.get("opt_path"))
    if opt["train"]["channels_last"]:
        # Before the EMA copy and the negatives are made from it, so they share the layout.
        net_g.to(memory_format=torch.channels_last)
    if opt["train"]["grad_checkpoint"]:  # only the target's training forward recomputes its blocks
        enable_grad_checkpoint(net_g, file=opt.get("opt_path"))
    model = build_model(opt, net_g)
    return build_train_step(model, opt["train"], device, opt.get("opt_path"))


def build_training_data(
    opt: Section, rank: int = 0, world_size: int = 1
) -> Tuple[Dataset, DataLoader, Dict[str, DataLoader]]:
    """The training set and loader, and the validation loaders by set name.

    Args:
        opt: Validated training options.
        rank: This process's rank (each rank reads its share).
        world_size: Number of processes.

    Returns:
        ``(train_set, train_loader, {val set name: loader})``.
    """
    seed, scale = opt["manual_seed"], opt["scale"]
    (train_key,) = dataset_sections(opt, "train")
    train_set, train_loader = build_loader(
        opt["datasets"][train_key], f"datasets.{train_key}", "train", scale, seed, num_replicas=world_size, rank=rank
    )
    val_loaders = {}
    for key in dataset_sections(opt, "val"):
        cfg = opt["datasets"][key]
        val_loaders[cfg.get("name") or key] = build_loader(
            cfg, f"datasets.{key}", "val", scale, seed, num_replicas=world_size, rank=rank
        )[1]
    return train_set, train_loader, val_loaders


def build_progressive_loader(opt: Section, train_loader: DataLoader, net: nn.Module) -> Optional[ProgressiveLoader]:
    """The per-phase loaders of ``datasets.train.progressive`` (None without the section)."""
    (train_key,) = dataset_sections(opt, "train")
    return build_progressive(opt, train_key, train_loader, net)


def build_test_loaders(opt: Section, rank: int = 0, world_size: int = 1) -> Dict[str, DataLoader]:
    """One loader per ``datasets.test*`` / ``val*`` section, by set name (names must differ).

    Args:
        opt: Validated test options.
        rank: This process's rank: it reads images ``rank, rank + world_size, ...`` of each set.
        world_size: Number of processes sharing each set.

    Returns:
        ``{set name: loader}`` in option order.
    """
    file = opt.get("opt_path")
    keys = dataset_sections(opt, "test") + dataset_sections(opt, "val")
    if not keys:
        raise OptionError("no test sets: add datasets.test_1 (or val_1) sections", file, "datasets")
    loaders: Dict[str, DataLoader] = {}
    for key in keys:
        cfg = opt["datasets"][key]
        name = cfg.get("name") or key
        if name in loaders:
            raise OptionError(f"two test sets are named '{name}'; give each a different name", file,
                              f"datasets.{key}.name")
        loaders[name] = build_loader(cfg, f"datasets.{key}", "test", opt["scale"], num_replicas=world_size,
                                     rank=rank)[1]
    return loaders


def build_evaluator(val: Section) -> Evaluator:
    """The evaluator of the ``val`` section's metrics."""
    return Evaluator(val["metrics"], num_save_img=val["num_save_img"], pbar=val["pbar"])


def eval_wrapper(val: Section) -> Optional[Callable[[nn.Module], nn.Module]]:
    """What evaluation runs instead of a network: with ``val.compile`` a compiled module sharing its weights
    (plain on failure, with a warning); None without it."""
    return _compiler("the evaluation network") if val["compile"] else None


def infer_options(val: Section) -> Dict[str, Any]:
    """Inference keyword arguments (tiling, self-ensemble) of the ``val`` section."""
    return {"tile": val["tile"], "tile_overlap": val["tile_overlap"], "self_ensemble": val["self_ensemble"]}


def eval_networks(specs: List[ModelSpec], trusted: bool, file: Optional[str] = None) -> Dict[str, nn.Module]:
    """The networks of a test run's rows, by row name (built before anything is written)."""
    return {spec.name: build_eval_network(spec, trusted, file) for spec in specs}
