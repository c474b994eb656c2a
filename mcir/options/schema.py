"""mcir's option schema (BasicSR key names): every section, key, type, range and default, in one place."""

from __future__ import annotations

from typing import Annotated, Any, Dict, Literal, Optional, Sequence, Union

from mcir.constraints import Decay, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Range, same_length
from mcir.options import relations as rel
from mcir.options.spec import REQUIRED, Free, Leaf, MapOf, Section, Typed
from mcir.registry import (
    ARCH_REGISTRY,
    DATASET_REGISTRY,
    LOSS_REGISTRY,
    METRIC_REGISTRY,
    MODEL_REGISTRY,
    OPTIMIZER_REGISTRY,
    SCHEDULER_REGISTRY,
)

DATASET_KEY_PATTERN = r"(train|val|test)\w*"
INIT_MODES = ("target", "blend", "random_fixed", "pretrained_fixed")
GUARD_ACTIONS = ("watch", "skip", "halve", "stop")

Port = Annotated[int, Range(gt=0, lt=65536)]
ExplodeFactor = Annotated[float, Range(gt=1)]
Warmup = Annotated[int, Range(ge=-1)]
AmpMode = Literal["off", "bf16", "fp16", False]  # a bare YAML `off` reads as false


def loader_fields() -> Dict[str, Leaf]:
    """Data-loader keys of a ``datasets.<name>`` section (BasicSR's names)."""
    return {
        "batch_size_per_gpu": Leaf(PositiveInt, 16),
        "num_worker_per_gpu": Leaf(NonNegativeInt, 0),
        "dataset_enlarge_ratio": Leaf(PositiveInt, 1),
        "use_shuffle": Leaf(bool, True),
        "pin_memory": Leaf(bool, False),
        # BasicSR's: cpu = workers load num_prefetch_queue batches ahead; cuda = pinned memory + async copies.
        "prefetch_mode": Leaf(Optional[Literal["cpu", "cuda"]]),
        "num_prefetch_queue": Leaf(PositiveInt, 1),
        # Restormer's progressive training: phase lengths, GT patch and batch size of each phase
        "progressive": Section(
            {
                "iters": Leaf(Annotated[Sequence[PositiveInt], rel.NON_EMPTY], REQUIRED),
                "gt_sizes": Leaf(Annotated[Sequence[PositiveInt], rel.NON_EMPTY], REQUIRED),
                "batch_sizes": Leaf(Annotated[Sequence[PositiveInt], rel.NON_EMPTY], REQUIRED),
            },
            relations=(same_length("iters", "gt_sizes"), same_length("iters", "batch_sizes")),
            optional=True,
        ),
    }


def dataset_spec() -> Typed:
    """A ``datasets.<name>`` section: the dataset class's arguments plus data-loader keys."""
    return Typed(
        registry=lambda: DATASET_REGISTRY,
        default_type="PairedImageDataset",
        injected=("phase",),
        extra=loader_fields(),
        relations=(rel.prefetch_needs_workers,),
        nested={"MixedDataset": {"datasets": MapOf(sub_dataset_spec())}},
    )


def sub_dataset_spec() -> Typed:
    """A dataset inside another dataset (a task of ``MixedDataset``): no data-loader keys."""
    return Typed(
        registry=lambda: DATASET_REGISTRY,
        default_type="PairedImageDataset",
        injected=("phase",),
    )


def metric_spec() -> Typed:
    """A ``val.metrics.<name>`` section: a registered metric function and its keyword arguments."""
    return Typed(
        registry=lambda: METRIC_REGISTRY,
        injected=("img", "img2", "input_order"),
        # null: the metric's own direction (lower for LPIPS and NIQE, else higher), filled in by the loader
        extra={"better": Leaf(Optional[Literal["higher", "lower"]], None)},
    )


def model_entry_spec(base_arch: Optional[str]) -> Section:
    """A ``models.<name>`` entry of test options: one row of the results table.

    Args:
        base_arch: ``type`` of the top-level ``network_g`` (the default ``type`` of the overrides).
    """
    return Section(
        {
            "pretrain_network_g": Leaf(Optional[str]),
            "param_key_g": Leaf(Optional[str]),  # None: path.param_key_g
            "strict_load_g": Leaf(Optional[bool]),  # None: path.strict_load_g
            "network_g": Typed(registry=lambda: ARCH_REGISTRY, default_type=base_arch, partial=True),
        }
    )


def guard_section(model_type: str) -> Section:
    """``train.guard``: watch every step; act on bad ones only when asked (a faithful run has no guard)."""
    return Section(
        {
            # watch: log and count suspicious steps, stop when the loss is not finite (the default)
            # skip: also skip bad steps; after `patience` in a row restore the last good state
            # halve: like skip, then halve λ (or the neg_ratio) -- MCIRModel only
            # stop: like skip, then stop with a clear message
            "action": Leaf(Literal[GUARD_ACTIONS], "watch"),
            "explode_factor": Leaf(ExplodeFactor, 10.0),
            "patience": Leaf(PositiveInt, 3),
            "snapshot_freq": Leaf(PositiveInt, 100),
        },
        relations=(rel.halve_needs_lambda(has_negatives(model_type)),),
    )


def negatives_section() -> Section:
    """``train.negatives`` of MCIRModel: Eq. 1's steps s_i and decays w_i, and how the negatives start."""
    return Section(
        {
            "steps": Leaf(Annotated[Sequence[PositiveInt], rel.NON_EMPTY], [100, 200, 500, 1000]),
            "decay": Leaf(Union[Decay, Annotated[Sequence[Decay], rel.NON_EMPTY]], 0.1),
            "init": Leaf(Literal[INIT_MODES], "blend"),
            "neg_start": Leaf(Probability, 0.1),
            "start_iter": Leaf(NonNegativeInt, 0),
            "pretrained_path": Leaf(Optional[str]),
            "precision": Leaf(Literal["fp32", "bf16"], "fp32"),
        },
        relations=(rel.decays_match_steps, rel.pretrained_init_needs_path),
    )


def train_section(model_type: str) -> Section:
    """The ``train`` section: optimisation, losses, the guard, and MCIRModel's negatives and SPN term."""
    fields: Dict[str, Any] = {
        "ema_decay": Leaf(Decay, 0.0),
        "optim_g": Typed(registry=lambda: OPTIMIZER_REGISTRY, injected=("params",), required=True),
        "scheduler": Typed(registry=lambda: SCHEDULER_REGISTRY, injected=("optimizer",)),
        "total_iter": Leaf(PositiveInt, REQUIRED),
        "warmup_iter": Leaf(Warmup, -1),
        "clip_grad_norm": Leaf(Optional[PositiveFloat]),
        "amp": Leaf(AmpMode, "off"),
        "accumulate_steps": Leaf(PositiveInt, 1),
        "channels_last": Leaf(bool, False),
        # activation checkpointing of the blocks the arch declares (mcir/archs/grad_checkpoint.py)
        "grad_checkpoint": Leaf(bool, False),
        # torch.compile the target network's training forward (and MCIR's negatives and SPN VGG); the weights
        # and training states keep the plain network's names, so compiled and plain runs resume each other
        "compile": Leaf(bool, False),
        "pixel_opt": Typed(registry=lambda: LOSS_REGISTRY, required=True),
        # Optional extra terms: a perceptual loss (output, gt) and a sample-contrastive peer (output, gt, lq).
        "perceptual_opt": Typed(registry=lambda: LOSS_REGISTRY),
        "contrast_opt": Typed(registry=lambda: LOSS_REGISTRY, relations=(rel.ccr_networks,)),
        "guard": guard_section(model_type),
    }
    if has_negatives(model_type):
        fields.update(
            negatives=negatives_section(),
            neg_opt=Typed(registry=lambda: LOSS_REGISTRY, default_type="SPNLoss"),
            # adaptive λ: λ·L_neg = neg_ratio·L_rec at every step (the authors keep it in 0.01-0.1)
            neg_ratio=Leaf(Optional[PositiveFloat]),
        )
    return Section(
        fields,
        required=True,
        relations=(rel.schedule_within_run,),
        renamed={
            "neg_guard": "renamed to train.guard (action: watch | skip | halve | stop; the default 'watch' only "
            "logs suspicious steps, so a +SPN run differs from its baseline by the SPN term alone)",
        },
    )


def path_section() -> Section:
    """The ``path`` section: weights to start from, resuming, where runs and results go."""
    return Section(
        {
            "pretrain_network_g": Leaf(Optional[str]),
            "param_key_g": Leaf(str, "params"),
            "strict_load_g": Leaf(bool, True),
            "resume_state": Leaf(Optional[str]),
            "trust_checkpoint": Leaf(bool, False),
            "experiments_root": Leaf(Optional[str]),
            "results_root": Leaf(Optional[str]),
        }
    )


def val_section(is_train: bool) -> Section:
    """The ``val`` section: validation frequency, inference options and metrics."""
    return Section(
        {
            "val_freq": Leaf(NonNegativeInt, 5000),  # 0: only at the end
            "save_img": Leaf(bool, False),
            "num_save_img": Leaf(Optional[NonNegativeInt]),
            # training validation: the first k restored images of each set go to TensorBoard and visualization/
            "num_tb_img": Leaf(NonNegativeInt, 3),
            "suffix": Leaf(Optional[str]),  # test.py: appended to saved image names
            "pbar": Leaf(bool, False),
            "use_ema": Leaf(bool, True),
            "tile": Leaf(Optional[PositiveInt]),
            "tile_overlap": Leaf(NonNegativeInt, 32),
            "self_ensemble": Leaf(bool, False),
        # torch.compile the network for validation / test.py (falls back to the plain network with a warning)
        "compile": Leaf(bool, False),
            "metrics": MapOf(metric_spec()),
            # Named convention (mcir/metrics/presets.py); explicit metrics add to or replace its entries.
            "preset": Leaf(Optional[Literal[_preset_names()]]),
        },
        relations=(rel.suffix_is_for_testing,) if is_train else (),
    )


def _preset_names() -> tuple:
    from mcir.metrics.presets import PRESET_NAMES

    return PRESET_NAMES


def logger_section() -> Section:
    """The ``logger`` section: log, checkpoint and TensorBoard settings."""
    return Section(
        {
            "print_freq": Leaf(NonNegativeInt, 100),
            "save_checkpoint_freq": Leaf(NonNegativeInt, 5000),
            "use_tb_logger": Leaf(bool, True),
            "keep_last": Leaf(PositiveInt, 3),
            "pbar": Leaf(bool, True),
            # Accepted empty so BasicSR files port unchanged.
            "wandb": Section(
                {"project": Leaf(Optional[str]), "resume_id": Leaf(Optional[str])}, relations=(rel.no_wandb,)
            ),
        }
    )


def root_schema(model_type: str, base_arch: Optional[str], is_train: bool) -> Section:
    """The whole option schema.

    Args:
        model_type: The file's ``model_type`` (MCIRModel adds the negatives and the SPN term).
        base_arch: ``network_g.type`` (default arch of test-time ``models`` entries).
        is_train: Training options (train.py) or test options (test.py, infer.py).

    Returns:
        The root :class:`Section`.
    """
    models = {} if is_train else {
        "models": MapOf(
            model_entry_spec(base_arch),
            pattern=r"[^.=\s/\\]+",
            pattern_doc="model names must not contain '.', '=', '/' or spaces",
        )
    }
    return Section(
        {
            "name": Leaf(str, REQUIRED),
            "model_type": Leaf(Literal[tuple(MODEL_REGISTRY.list())], "RestorationModel"),
            "scale": Leaf(PositiveInt, 1),
            "num_gpu": Leaf(Union[Literal["auto"], NonNegativeInt], "auto"),
            "manual_seed": Leaf(NonNegativeInt, 0),
            "deterministic": Leaf(bool, False),
            "imports": Leaf(Sequence[str], []),
            "dist_params": Section({"backend": Leaf(Optional[Literal["nccl", "gloo"]]), "port": Leaf(Optional[Port])}),
            "find_unused_parameters": Leaf(bool, False),  # DDP: archs whose forward skips parameters
            "datasets": MapOf(
                dataset_spec(), pattern=DATASET_KEY_PATTERN, pattern_doc="dataset keys start with train, val or test"
            ),
            "network_g": Typed(registry=lambda: ARCH_REGISTRY, required=True),
            **models,
            "path": path_section(),
            # test.py ignores training keys; train.py validates them fully
            "train": train_section(model_type) if is_train else Free(),
            "val": val_section(is_train),
            "logger": logger_section(),
        },
        relations=(rel.trainable_network, rel.checkpointable_network, rel.patch_fits_scale, rel.one_train_set,
                   rel.progressive_patches)
        if is_train else (rel.complete_network_overrides,),
    )


def has_negatives(model_type: str) -> bool:
    """Whether the registered model trains with negatives (MCIRModel and its subclasses)."""
    return bool(getattr(MODEL_REGISTRY.get(model_type), "has_negatives", False))


def model_type_of(raw: Dict[str, Any], file: Optional[str]) -> str:
    """The raw file's ``model_type`` (checked first: it selects the schema), default ``RestorationModel``."""
    model_type = raw.get("model_type", "RestorationModel")
    if not isinstance(model_type, str) or model_type not in MODEL_REGISTRY:
        from mcir.options.values import check_value

        check_value(Literal[tuple(MODEL_REGISTRY.list())], model_type, "model_type", file)
    return model_type
