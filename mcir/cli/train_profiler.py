"""Cost of one training step of an MCIRModel option file, as the +SPN model or as the plain model (same batch)."""

from __future__ import annotations

import warnings
from typing import Any, Dict, List

import torch

from mcir.cli.measure import PeakMemory, count_flops, spec_device
from mcir.errors import CheckpointError, OptionError
from mcir.options import FrozenMap, thaw


def train_options(opt: Dict[str, Any], plain: bool, random_vgg: bool) -> Dict[str, Any]:
    """Options for a profiled step: no weights loaded; the plain model or MCIR; optionally random VGG weights.

    Args:
        opt: Resolved training options.
        plain: Profile ``RestorationModel`` (no negatives, no SPN term) instead of ``MCIRModel``.
        random_vgg: Set every ``train.*.vgg_weights`` to ``random``.

    Returns:
        A modified copy.
    """
    opt = thaw(opt)  # a variant is a new configuration
    opt["path"]["pretrain_network_g"] = None
    if isinstance(opt["train"].get("negatives"), dict):
        opt["train"]["negatives"]["pretrained_path"] = None
    if plain:
        opt["model_type"] = "RestorationModel"
    if random_vgg:
        for value in opt["train"].values():
            if isinstance(value, dict) and "vgg_weights" in value:
                value["vgg_weights"] = "random"
    return FrozenMap(opt)


def training_batch(opt: Dict[str, Any], device: torch.device) -> Dict[str, torch.Tensor]:
    """A random batch shaped like the options' training batches (``batch_size_per_gpu``, ``gt_size``, ``scale``).

    Args:
        opt: Resolved training options.
        device: Where the batch goes.

    Returns:
        ``{"lq": ..., "gt": ...}``.
    """
    train_set = (opt.get("datasets") or {}).get("train") or {}
    gt_size, batch = train_set.get("gt_size"), int(train_set.get("batch_size_per_gpu", 16))
    if not gt_size:
        raise OptionError("the training-step profile needs the patch size", opt.get("opt_path"),
                          "datasets.train.gt_size")
    scale, net = int(opt.get("scale", 1)), opt["network_g"]
    gen = torch.Generator().manual_seed(0)
    lq = torch.rand(batch, int(net.get("num_in_ch", 3)), gt_size // scale, gt_size // scale, generator=gen)
    gt = torch.rand(batch, int(net.get("num_out_ch", 3)), gt_size, gt_size, generator=gen)
    return {"lq": lq.to(device), "gt": gt.to(device)}


def train_step_cost(opt: Dict[str, Any], variant: str, device: torch.device) -> Dict[str, Any]:
    """Peak memory of building the model and running two training steps, and the FLOPs of one more step.

    Args:
        opt: Resolved training options of an ``MCIRModel`` run.
        variant: ``'spn'`` (as configured) or ``'plain'`` (``RestorationModel``, same options otherwise).
        device: Where it runs.

    Returns:
        ``batch``, ``gt_size``, ``flops``, ``peak_mib``, ``memory_method``, ``notes``.
    """
    from mcir.build import build_training

    if variant not in ("plain", "spn"):
        raise OptionError(f"variant must be 'plain' or 'spn', got {variant!r}", key="variant")
    batch = training_batch(opt, device)
    notes: List[str] = ["weights are not loaded (random networks; the cost does not depend on the values)"]
    accumulate = int(opt["train"].get("accumulate_steps", 1))
    micro: Any = batch if accumulate == 1 else [batch] * accumulate
    # The first iteration with the SPN term active; the plain model ignores the number.
    first = int((opt["train"].get("negatives") or {}).get("start_iter", 0)) + 1
    torch.manual_seed(0)
    with PeakMemory(device) as mem, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*vgg_weights='random'")
        try:
            step = build_training(train_options(opt, variant == "plain", False), device)
        except CheckpointError as exc:
            notes.append(f"VGG weights unavailable ({str(exc).split(';')[0]}); a random VGG was used "
                         "(same FLOPs and memory)")
            step = build_training(train_options(opt, variant == "plain", True), device)
        step(micro, first)
        step(micro, first + 1)
    flops = count_flops(lambda: step(micro, first + 2))
    return {"batch": batch["lq"].shape[0], "gt_size": batch["gt"].shape[-1], "flops": flops, "peak_mib": mem.mib,
            "memory_method": mem.method, "notes": notes}


def train_step_spec(spec: Dict[str, Any]) -> Dict[str, Any]:
    """:func:`train_step_cost` for a profiling spec with ``opt``, ``set``, ``device`` and ``variant``.

    Args:
        spec: The spec.

    Returns:
        The step cost.
    """
    from mcir.components import load_components
    from mcir.options import load_options

    load_components()
    if not spec.get("opt"):
        raise OptionError("the training-step profile needs an option file", key="-opt")
    opt = load_options(spec["opt"], spec.get("set", []), is_train=True)
    return train_step_cost(opt, spec.get("variant", "spn"), spec_device(spec))
