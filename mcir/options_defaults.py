"""mcir's option schema and defaults (BasicSR key names), extended by the chosen model type."""

from __future__ import annotations

from typing import Any, Dict, Optional

from mcir.errors import OptionError
from mcir.metrics.presets import PRESET_NAMES
from mcir.options_schema import REQUIRED, Free, Leaf, MapOf, Section, Typed
from mcir.registry import (
    ARCH_REGISTRY,
    DATASET_REGISTRY,
    LOSS_REGISTRY,
    METRIC_REGISTRY,
    MODEL_REGISTRY,
    OPTIMIZER_REGISTRY,
    SCHEDULER_REGISTRY,
)

STR = (str,)
INT = (int,)
FLOAT = (int, float)
BOOL = (bool,)

DATASET_KEY_PATTERN = r"(train|val|test)\w*"


def dataset_spec() -> Typed:
    """A ``datasets.<name>`` section: the dataset class's arguments plus data-loader keys."""
    return Typed(
        registry=lambda: DATASET_REGISTRY,
        default_type="PairedImageDataset",
        extra={
            "name": Leaf(STR, default=None),
            "batch_size_per_gpu": Leaf(INT, default=16),
            "num_worker_per_gpu": Leaf(INT, default=0),
            "dataset_enlarge_ratio": Leaf(INT, default=1),
            "use_shuffle": Leaf(BOOL, default=True),
            "pin_memory": Leaf(BOOL, default=False),
            "prefetch_mode": Leaf(STR, default=None, choices=("cpu", "cuda")),
            # {iters, gt_sizes, batch_sizes}: checked by mcir.data.progressive when training starts
            "progressive": Free(default=None),
        },
    )


def sub_dataset_spec() -> Typed:
    """A dataset section inside another dataset (a task of ``MixedDataset``): like ``dataset_spec`` without
    data-loader keys."""
    return Typed(
        registry=lambda: DATASET_REGISTRY, default_type="PairedImageDataset", extra={"name": Leaf(STR, default=None)}
    )


def metric_spec() -> Typed:
    """A ``val.metrics.<name>`` section: a registered metric function and its keyword arguments."""
    return Typed(
        registry=lambda: METRIC_REGISTRY,
        injected=("img", "img2", "input_order"),
        extra={"better": Leaf(STR, default="higher", choices=("higher", "lower"))},
    )


def model_entry_spec(base_arch: Optional[str]) -> Section:
    """A ``models.<name>`` entry of test options: one row of the results table.

    ``network_g`` holds overrides merged into the top-level ``network_g`` (same ``type``) or, with another
    ``type``, a whole arch section; its keys are checked against the arch here, the merged section again
    when the model is built (:mod:`mcir.engine.model_list`).

    Args:
        base_arch: ``type`` of the top-level ``network_g`` (the default ``type`` of the overrides).

    Returns:
        The entry's ``Section``.
    """
    return Section(
        {
            "pretrain_network_g": Leaf(STR, default=None),
            "param_key_g": Leaf(STR, default=None),  # None: path.param_key_g
            "strict_load_g": Leaf(BOOL, default=None),  # None: path.strict_load_g
            "network_g": Typed(registry=lambda: ARCH_REGISTRY, default_type=base_arch, partial=True),
        }
    )


def base_train_fields() -> Dict[str, Any]:
    """Keys of the ``train`` section common to every model."""
    return {
        "ema_decay": Leaf(FLOAT, default=0.0),
        "optim_g": Typed(registry=lambda: OPTIMIZER_REGISTRY, injected=("params",), required=True),
        "scheduler": Typed(registry=lambda: SCHEDULER_REGISTRY, injected=("optimizer",)),
        "total_iter": Leaf(INT, default=REQUIRED),
        "warmup_iter": Leaf(INT, default=-1),
        "clip_grad_norm": Leaf(FLOAT, default=None),
        # off | bf16 | fp16 (a bare YAML `off` reads as false, accepted too); checked when the model is built
        "amp": Leaf((str, bool), default="off"),
        "accumulate_steps": Leaf(INT, default=1),
        "channels_last": Leaf(BOOL, default=False),
        "pixel_opt": Typed(registry=lambda: LOSS_REGISTRY, required=True),
        # Optional extra terms: a perceptual loss (output, gt) and a sample-contrastive peer (output, gt, lq).
        "perceptual_opt": Typed(registry=lambda: LOSS_REGISTRY),
        "contrast_opt": Typed(registry=lambda: LOSS_REGISTRY),
    }


def root_schema(opt: Dict[str, Any], is_train: bool, file: Optional[str] = None) -> Section:
    """The whole option schema for ``opt``'s model type.

    Args:
        opt: Raw options (``model_type`` selects extra ``train`` keys).
        is_train: Require the training sections.
        file: Option file for error messages.

    Returns:
        Root ``Section``.
    """
    from mcir.components import load_components

    load_components()
    model_type = opt.get("model_type", "RestorationModel")
    try:
        model_cls = MODEL_REGISTRY.get(model_type)
    except OptionError as exc:
        raise OptionError(exc.message, file=file, key="model_type") from None
    train_fields = base_train_fields()
    train_fields.update(model_cls.extra_train_options())
    base_net = opt.get("network_g")
    base_arch = base_net.get("type") if isinstance(base_net, dict) and isinstance(base_net.get("type"), str) else None
    # test.py only: several checkpoints compared in one table (rows), e.g. baseline vs +SPN
    models = {} if is_train else {
        "models": MapOf(
            model_entry_spec(base_arch),
            pattern=r"[^.=\s/\\]+",
            pattern_doc="model names must not contain '.', '=', '/' or spaces",
        )
    }

    return Section(
        {
            "name": Leaf(STR, default=REQUIRED),
            "model_type": Leaf(STR, default="RestorationModel"),
            "scale": Leaf(INT, default=1),
            "num_gpu": Leaf((int, str), default="auto"),
            "manual_seed": Leaf(INT, default=0),
            "deterministic": Leaf(BOOL, default=False),
            "imports": Free(default=[]),
            "dist_params": Free(default=None),  # checked by mcir.engine.dist.check_dist_params
            "find_unused_parameters": Leaf(BOOL, default=False),  # DDP: archs whose forward skips parameters
            "datasets": MapOf(
                dataset_spec(), pattern=DATASET_KEY_PATTERN, pattern_doc="dataset keys start with train, val or test"
            ),
            "network_g": Typed(registry=lambda: ARCH_REGISTRY, required=True),
            **models,
            "path": Section(
                {
                    "pretrain_network_g": Leaf(STR, default=None),
                    "param_key_g": Leaf(STR, default="params"),
                    "strict_load_g": Leaf(BOOL, default=True),
                    "resume_state": Leaf(STR, default=None),
                    "trust_checkpoint": Leaf(BOOL, default=False),
                    "experiments_root": Leaf(STR, default=None),
                    "results_root": Leaf(STR, default=None),
                }
            ),
            # test.py ignores training keys; train.py validates them fully
            "train": Section(train_fields, required=True) if is_train else Free(default=None),
            "val": Section(
                {
                    "val_freq": Leaf(INT, default=5000),
                    "save_img": Leaf(BOOL, default=False),
                    "num_save_img": Leaf(INT, default=None),
                    # training validation: the first k restored images of each set go to TensorBoard and visualization/
                    "num_tb_img": Leaf(INT, default=3),
                    "suffix": Leaf(STR, default=None),
                    "pbar": Leaf(BOOL, default=False),
                    "use_ema": Leaf(BOOL, default=True),
                    "tile": Leaf(INT, default=None),
                    "tile_overlap": Leaf(INT, default=32),
                    "self_ensemble": Leaf(BOOL, default=False),
                    "metrics": MapOf(metric_spec()),
                    # Named convention (mcir/metrics/presets.py); explicit metrics add to or replace its entries.
                    "preset": Leaf(STR, default=None, choices=PRESET_NAMES),
                }
            ),
            "logger": Section(
                {
                    "print_freq": Leaf(INT, default=100),
                    "save_checkpoint_freq": Leaf(INT, default=5000),
                    "use_tb_logger": Leaf(BOOL, default=True),
                    "keep_last": Leaf(INT, default=3),
                    "pbar": Leaf(BOOL, default=True),
                    # Accepted so BasicSR files port unchanged; only an empty project is allowed (see options.py).
                    "wandb": Section({"project": Leaf(STR, default=None), "resume_id": Leaf(STR, default=None)}),
                }
            ),
        }
    )
