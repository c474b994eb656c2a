"""Checks between option values that a single key's annotation cannot express (run by the schema)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from mcir.constraints import NonEmpty, same_length
from mcir.errors import OptionError
from mcir.options.spec import Relation, Typed
from mcir.options.validate import join_key, validate_typed
from mcir.registry import ARCH_REGISTRY

NON_EMPTY = NonEmpty()


def decays_match_steps(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """``negatives.decay`` given as a list pairs with ``steps`` in order, so it needs one value per step."""
    if isinstance(section.get("decay"), list):
        same_length("steps", "decay")(section, key, file)


def pretrained_init_needs_path(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """``init: pretrained_fixed`` loads its negatives from ``pretrained_path``."""
    if section.get("init") == "pretrained_fixed" and not section.get("pretrained_path"):
        raise OptionError("expected a weights file for init 'pretrained_fixed', got null", file,
                          join_key(key, "pretrained_path"))


def halve_needs_lambda(has_lambda: bool) -> Relation:
    """Relation: ``guard.action: halve`` needs a model with a λ to halve (MCIRModel)."""

    def check(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
        if section.get("action") == "halve" and not has_lambda:
            raise OptionError(
                "expected watch, skip or stop for a model without negatives ('halve' halves MCIR's λ), got 'halve'",
                file,
                join_key(key, "action"),
            )

    return check


def schedule_within_run(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """Scheduler milestones and restarts fall inside the run (``0 < m <= total_iter``)."""
    sched, total = section.get("scheduler"), section.get("total_iter")
    if not sched or total is None:
        return
    for name in ("milestones", "restarts"):
        for m in sched.get(name) or ():
            low = 0 if name == "restarts" else 1
            if not low <= m <= total:
                raise OptionError(
                    f"expected iterations in [{low}, total_iter = {total}], got {list(sched[name])}",
                    file,
                    join_key(key, f"scheduler.{name}"),
                )


def suffix_is_for_testing(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """``val.suffix`` names test.py's saved images; training names them ``<stem>_<iter>.png``."""
    if section.get("suffix") is not None:
        raise OptionError(
            f"expected null in training options (test.py uses it; training saves <stem>_<iter>.png), "
            f"got {section['suffix']!r}",
            file,
            join_key(key, "suffix"),
        )


def no_wandb(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """Weights & Biases keys are accepted empty only (BasicSR files carry them)."""
    for name in ("project", "resume_id"):
        if section.get(name):
            raise OptionError(
                "expected null (Weights & Biases logging is not supported; log to TensorBoard with "
                f"logger.use_tb_logger), got {section[name]!r}",
                file,
                join_key(key, name),
            )


def prefetch_needs_workers(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """``prefetch_mode: cpu`` loads batches ahead in worker processes, so it needs workers."""
    if section.get("prefetch_mode") == "cpu" and not section.get("num_worker_per_gpu"):
        raise OptionError(
            "expected num_worker_per_gpu > 0 with prefetch_mode 'cpu' (workers load the batches ahead), got 0",
            file,
            join_key(key, "num_worker_per_gpu"),
        )


def patch_fits_scale(root: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """Each dataset's ``gt_size`` is a positive multiple of its scale (the LQ patch is ``gt_size / scale``)."""
    for name, ds in (root.get("datasets") or {}).items():
        gt_size = ds.get("gt_size")
        scale = ds.get("scale") or root.get("scale", 1)
        if gt_size is not None and gt_size % scale:
            raise OptionError(f"expected a multiple of the scale {scale}, got {gt_size}", file,
                              f"datasets.{name}.gt_size")


def progressive_patches(root: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """``progressive`` belongs to the training set; its patches are multiples of the scale and fit ``gt_size``
    (the size the images are checked against when the dataset is built)."""
    for name, ds in (root.get("datasets") or {}).items():
        prog = ds.get("progressive")
        if prog is None:
            continue
        where = f"datasets.{name}"
        if not name.startswith("train"):
            raise OptionError("expected null: only the training set has a progressive schedule, got a section",
                              file, f"{where}.progressive")
        scale = ds.get("scale") or root.get("scale", 1)
        bad = [g for g in prog["gt_sizes"] if g % scale]
        if bad:
            raise OptionError(f"expected multiples of the scale {scale}, got {list(prog['gt_sizes'])}", file,
                              f"{where}.progressive.gt_sizes")
        if not ds.get("gt_size") or ds["gt_size"] < max(prog["gt_sizes"]):
            raise OptionError(f"expected at least the largest progressive patch {max(prog['gt_sizes'])}, got "
                              f"{ds.get('gt_size')}", file, f"{where}.gt_size")


def one_train_set(root: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """Training reads exactly one ``datasets.train*`` section."""
    names = [k for k in (root.get("datasets") or {}) if k.startswith("train")]
    if len(names) != 1:
        raise OptionError(f"expected exactly one 'datasets.train' section, got {len(names)}: {names}", file, "datasets")


def trainable_network(root: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """Training needs a network with weights (Bicubic and Identity are for test.py)."""
    arch = root["network_g"]["type"]
    if not getattr(ARCH_REGISTRY.get(arch), "requires_training", True):
        raise OptionError(f"expected an arch with weights to train, got '{arch}' (nothing to train; use it with "
                          "test.py)", file, "network_g.type")


def checkpointable_network(root: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """``train.grad_checkpoint`` needs an arch that declares its repeatable blocks (``checkpoint_blocks``)."""
    if not root["train"].get("grad_checkpoint"):
        return
    arch = root["network_g"]["type"]
    declares = getattr(ARCH_REGISTRY.get(arch), "checkpoint_blocks", None)
    if declares is None or getattr(declares, "__qualname__", "").startswith("ArchBase."):
        raise OptionError(f"expected false: {arch} declares no blocks to checkpoint (checkpoint_blocks), got true",
                          file, "train.grad_checkpoint")


def complete_network_overrides(root: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """Test options: each ``models.<name>.network_g`` merged into ``network_g`` is a complete arch section."""
    base = root.get("network_g") or {}
    for name, entry in (root.get("models") or {}).items():
        override = (entry or {}).get("network_g") or {}
        merged = {**base, **override} if override.get("type", base.get("type")) == base.get("type") else override
        validate_typed(Typed(registry=lambda: ARCH_REGISTRY), merged, f"models.{name}.network_g", file)


#: Keys a CCR negative's network section has besides its arch arguments (mcir/losses/ccr_loss.py).
CCR_NEGATIVE_KEYS = ("psnr", "weights", "param_key", "strict")


def ccr_networks(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
    """A ``CCRLoss``'s frozen-network negatives are whole arch sections (checked like ``network_g``)."""
    if section.get("type") != "CCRLoss":
        return
    for name, spec in (section.get("negatives") or {}).items():
        if isinstance(spec, dict) and "type" in spec:
            arch = {k: v for k, v in spec.items() if k not in CCR_NEGATIVE_KEYS}
            validate_typed(Typed(registry=lambda: ARCH_REGISTRY), arch, join_key(key, f"negatives.{name}"), file)
