"""What the profilers measure with: FLOPs, peak memory, the device of a spec and its name.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplications and convolutions, 2 per
multiply-add). Peak memory is the increase during a call over what the process held just before it: on CUDA
``torch.cuda.max_memory_allocated`` after resetting the peak, on the CPU the resident-set peak (``VmHWM``, reset
through ``/proc/self/clear_refs``) minus the resident set before the call.
"""

from __future__ import annotations

import resource
from typing import Any, Callable, Dict, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from mcir.errors import OptionError


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs (2 per multiply-add) of the matmuls/convolutions ``fn`` runs, counted by torch's ``FlopCounterMode``.

    Args:
        fn: Called once with no arguments.

    Returns:
        The total FLOP count.
    """
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def _proc_status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Context manager measuring the peak memory increase of its body (``mib`` and ``method`` after exit).

    Args:
        device: Where the measured work runs.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.mib: Optional[float] = None
        self.method = ""
        self._base = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated (increase)"
            return self
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")  # resets VmHWM to the current resident set
            self._base = _proc_status_kib("VmRSS") or 0
            self.method = "CPU peak RSS increase (VmHWM reset via /proc/self/clear_refs)"
        except OSError:
            self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.method = "CPU ru_maxrss increase (lower bound: earlier peaks are not reset)"
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self.method.startswith("CPU peak RSS"):
            self.mib = max(0, (_proc_status_kib("VmHWM") or 0) - self._base) / 1024
        else:
            self.mib = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._base) / 1024


def spec_device(spec: Dict[str, Any]) -> torch.device:
    """The spec's ``device`` (default cpu), checked.

    Args:
        spec: A profiling spec.

    Returns:
        The device.
    """
    device = torch.device(spec.get("device", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("CUDA is not available; use --device cpu", key="--device")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
