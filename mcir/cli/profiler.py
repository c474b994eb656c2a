"""Measure a network (parameters, FLOPs, peak memory, latency) and the extra cost of an MCIR (+SPN) training step.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: it counts matrix multiplications and
convolutions (forward and, for training steps, backward), 2 FLOPs per multiply-add; element-wise operations
are not counted. MACs = FLOPs / 2 (what most restoration papers call "FLOPs").

Peak memory is the increase during the measured call over what the process held just before it (weights,
input and optimizer state excluded): on CUDA ``torch.cuda.max_memory_allocated`` after resetting the peak; on
the CPU the resident-set peak (``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident set
before the call. Each part (:func:`run_part`: a network's inference, a plain or a +SPN training step) is meant to
run in a fresh process (``python -m mcir.cli.profiler SPEC``), so that memory freed by one measurement
cannot hide the next one's.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mcir.cli.measure import PeakMemory, count_flops, device_name, spec_device, sync
from mcir.errors import MCIRError, OptionError

#: Default OUTPUT size (H, W) by task: the paper's 1280x720 for super-resolution, 256x256 otherwise.
SR_SIZE = (720, 1280)
RESTORATION_SIZE = (256, 256)


def arch_section(arch: str, sets: Sequence[str], scale: Optional[int] = None) -> Dict[str, Any]:
    """A validated ``network_g`` section from an arch name and ``key=value`` arguments.

    Args:
        arch: Registered arch name.
        sets: ``key=value`` strings (values parsed as YAML).
        scale: The arch's ``upscale`` (when it has one).

    Returns:
        The section.
    """
    from mcir.components import load_components
    from mcir.options import apply_overrides
    from mcir.options.spec import Typed
    from mcir.options.validate import validate_typed
    from mcir.registry import ARCH_REGISTRY

    load_components()
    cfg: Dict[str, Any] = apply_overrides({"type": arch}, list(sets), file="--set")
    cfg["type"] = arch
    if scale is not None:
        cfg["upscale"] = scale
    return validate_typed(Typed(registry=lambda: ARCH_REGISTRY), cfg, "--arch", None)


def io_sizes(net: nn.Module, size: Optional[Sequence[int]]) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Input and output ``(H, W)`` for an output size (default by task, see :data:`SR_SIZE`).

    Args:
        net: The network (``upscale`` attribute, 1 when absent).
        size: Output ``(H, W)``, or None for the task default.

    Returns:
        ``((in_h, in_w), (out_h, out_w))``.
    """
    up = int(getattr(net, "upscale", 1))
    out = tuple(int(s) for s in size) if size else (SR_SIZE if up > 1 else RESTORATION_SIZE)
    if len(out) != 2 or min(out) < 1 or out[0] % up or out[1] % up:
        raise OptionError(f"output size {out} must be two positive multiples of the upscale {up}", key="--size")
    return (out[0] // up, out[1] // up), (out[0], out[1])


def profile_network(
    net: nn.Module, in_ch: int, size: Optional[Sequence[int]], device: torch.device, repeats: int = 10,
    warmup: int = 2,
) -> Dict[str, Any]:
    """Parameters, FLOPs, peak memory and median latency of one image through ``net`` (inference mode).

    The input is padded to the arch's ``size_multiple`` as inference does (the padding is counted).

    Args:
        net: The network.
        in_ch: Input channels.
        size: Output ``(H, W)`` (None: task default).
        device: Where it runs.
        repeats: Timed forwards (median reported).
        warmup: Untimed forwards before timing.

    Returns:
        ``params``, ``input``, ``output``, ``flops``, ``macs``, ``peak_mib``, ``memory_method``, ``latency_ms``.
    """
    from mcir.core.inference import forward_padded

    if repeats < 1 or warmup < 0:
        raise OptionError("repeats must be >= 1 and warmup >= 0", key="--repeats")
    (h, w), out = io_sizes(net, size)
    net = net.to(device).eval()
    x = torch.rand(1, in_ch, h, w, device=device)
    up, multiple = int(getattr(net, "upscale", 1)), int(getattr(net, "size_multiple", 1))

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return forward_padded(net, x, up, multiple)

    with PeakMemory(device) as mem:
        forward()
    flops = count_flops(forward)
    for _ in range(warmup):
        forward()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        forward()
        sync(device)
        times.append(time.perf_counter() - start)
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "input": [in_ch, h, w],
        "output": list(out),
        "flops": flops,
        "macs": flops // 2,
        "peak_mib": mem.mib,
        "memory_method": mem.method,
        "latency_ms": statistics.median(times) * 1000,
    }


def _network_from_spec(spec: Dict[str, Any]) -> Tuple[nn.Module, Dict[str, Any], str, Optional[Dict[str, Any]]]:
    """The network, its section, a label and (for ``-opt``) the resolved options."""
    from mcir.archs import build_network
    from mcir.options import load_options

    if spec.get("opt"):
        opt = load_options(spec["opt"], spec.get("set", []), is_train=False)
        cfg = opt["network_g"]
        return build_network(cfg, key="network_g", file=spec["opt"]), cfg, opt["name"], opt
    cfg = arch_section(spec["arch"], spec.get("set", []), spec.get("scale"))
    label = spec["arch"] + "".join(f" {s}" for s in spec.get("set", []))
    return build_network(cfg, key="--arch"), cfg, label, None


def profile_network_spec(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The inference profile of one model described by a JSON-able spec.

    Args:
        spec: ``opt`` (option file) or ``arch`` (name) with ``set`` (overrides) and ``scale``; ``size``,
            ``device``, ``repeats``, ``warmup``.

    Returns:
        ``label``, ``arch``, ``model_type``, ``device``, ``repeats``, ``warmup`` and :func:`profile_network`'s keys.
    """
    from mcir.components import load_components
    from mcir.cli.file_restore import network_input_channels

    load_components()
    device = spec_device(spec)
    torch.manual_seed(0)
    net, cfg, label, opt = _network_from_spec(spec)
    repeats, warmup = int(spec.get("repeats", 10)), int(spec.get("warmup", 2))
    result = {"label": label, "arch": cfg["type"], "model_type": (opt or {}).get("model_type"),
              "device": device_name(device), "repeats": repeats, "warmup": warmup}
    in_ch = network_input_channels(net, cfg.get("num_in_ch"))
    result.update(profile_network(net, in_ch, spec.get("size"), device, repeats, warmup))
    return result


def run_part(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One unit of work: ``part: network`` (default) or ``part: train`` with ``variant: plain|spn``.

    Args:
        spec: A profiling spec.

    Returns:
        The part's result.
    """
    if spec.get("part", "network") == "network":
        return profile_network_spec(spec)
    from mcir.cli.train_profiler import train_step_spec

    return train_step_spec(spec)


def profile_model(
    spec: Dict[str, Any], runner: Callable[[Dict[str, Any]], Dict[str, Any]] = run_part
) -> Dict[str, Any]:
    """Inference profile, plus the plain and +SPN training steps for ``MCIRModel`` option files.

    Args:
        spec: A profiling spec (``train_step: false`` skips the training steps).
        runner: Runs one part (:func:`run_part` here, or in a fresh process each).

    Returns:
        The inference result with ``train`` (None, or ``batch``, ``gt_size``, ``plain``, ``spn``, ``notes``).
    """
    result = runner({**spec, "part": "network"})
    result["train"] = None
    if spec.get("train_step", True) and result.get("model_type") == "MCIRModel":
        plain = runner({**spec, "part": "train", "variant": "plain"})
        spn = runner({**spec, "part": "train", "variant": "spn"})
        notes = list(dict.fromkeys(plain.pop("notes") + spn.pop("notes")))
        result["train"] = {"batch": spn["batch"], "gt_size": spn["gt_size"], "plain": plain, "spn": spn,
                           "notes": notes}
    return result


def main(argv: Optional[List[str]] = None) -> int:
    """Worker entry: ``python -m mcir.cli.profiler '<spec json>'`` prints one JSON line (result or error).

    Args:
        argv: ``[spec_json]`` (default: ``sys.argv[1:]``).

    Returns:
        0, or 1 after a user error (printed as ``{"error": ..., "kind": ...}``).
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        print(json.dumps(run_part(json.loads(args[0]))))
    except MCIRError as exc:
        print(json.dumps({"error": str(exc), "kind": type(exc).__name__}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
