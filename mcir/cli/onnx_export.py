"""Export a restoration network to ONNX with dynamic batch, height and width, and check it with onnxruntime.

The graph is traced by torch's dynamo exporter (``torch.export`` with symbolic sizes), so size-dependent code
(padding amounts, SwinIR's shifted-window masks) stays symbolic instead of being frozen at the example size.
An arch with ``size_multiple > 1`` gets the same bottom/right reflect padding inside the graph as mcir's
inference (:func:`mcir.core.inference.forward_padded`) and the output is cropped back, so any height and
width at least ``size_multiple`` works. The example input is deliberately not a multiple of common window
sizes so that padding branches, not the "already aligned" shortcuts, are the ones traced.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mcir.core.inference import forward_padded
from mcir.errors import OptionError

#: ONNX opset: 18 is the dynamo exporter's native opset and runs on onnxruntime >= 1.14 (current: 1.2x).
DEFAULT_OPSET = 18
#: Example input side lengths: primes, so no window or stride divides them.
_EXAMPLE_HW = (37, 43)
_CALL_PATTERN = re.compile(r'raised this error:\s*File "([^"]+)", line (\d+), in \w+\s*\n\s*([^\n]+)')
_OP_PATTERN = re.compile(r"aten[.:]{1,2}[A-Za-z_0-9]+(?:\.[A-Za-z_0-9]+)?")


class PaddedForward(nn.Module):
    """``net`` with inference's padding to ``multiple`` (reflect, bottom/right) and the output crop, traceable.

    Args:
        net: The restoration network.
        scale: Output / input size ratio.
        multiple: Input side multiple the network needs (1: no padding).
    """

    def __init__(self, net: nn.Module, scale: int, multiple: int):
        super().__init__()
        self.net, self.scale, self.multiple = net, int(scale), int(multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, C, H, W) with H, W >= ``multiple``. Returns: (N, C', H*scale, W*scale)."""
        if self.multiple == 1:
            return self.net(x)
        h, w = x.shape[-2], x.shape[-1]
        padded = F.pad(x, (0, (-w) % self.multiple, 0, (-h) % self.multiple), mode="reflect")
        return self.net(padded)[..., : h * self.scale, : w * self.scale]


def _example_side(base: int, multiple: int) -> int:
    """A side >= ``multiple`` that ``multiple`` does not divide (when > 1), so the padding path is traced."""
    side = max(base, multiple + 1)
    return side + 1 if multiple > 1 and side % multiple == 0 else side


def _failing_op(exc: BaseException) -> str:
    """The source line of a data-dependent value, else the aten op named in the error chain, else its first line."""
    where = _CALL_PATTERN.search(str(exc))
    if where:
        file, line, code = where.groups()
        return f"data-dependent value at {Path(file).name}:{line} `{code.strip()}` ({type(exc).__name__})"
    seen = exc
    while seen is not None:
        match = _OP_PATTERN.search(str(seen))
        if match:
            op = re.sub(r"^aten[.:]+", "", match.group(0)).split(".")[0]
            return f"operator aten::{op} ({type(exc).__name__})"
        seen = seen.__cause__ or seen.__context__
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{type(exc).__name__}: {first[:200]}"


@contextlib.contextmanager
def _quiet_torch_logs() -> Iterator[None]:
    """Silence torch's own logging (graph dumps on export errors); the error is reported as one line."""
    logger = logging.getLogger("torch")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


def export_onnx(
    net: nn.Module, path: Path, in_ch: int, scale: int = 1, multiple: int = 1, opset: int = DEFAULT_OPSET,
    name: str = "network",
) -> Dict[str, Any]:
    """Export ``net`` (float32, CPU, eval mode) to ``path`` with dynamic batch, height and width.

    Args:
        net: The network.
        path: Output ``.onnx`` file.
        in_ch: Input channels.
        scale: Output / input size ratio.
        multiple: Input side multiple the network needs (padded inside the graph).
        opset: ONNX opset version.
        name: Arch name, for error messages.

    Returns:
        ``{"opset": int, "min_size": int}``: the smallest supported input side.
    """
    net = net.float().cpu().eval()
    wrapper = PaddedForward(net, scale, multiple).eval()
    example = torch.rand(2, in_ch, _example_side(_EXAMPLE_HW[0], multiple), _example_side(_EXAMPLE_HW[1], multiple))
    dyn = torch.export.Dim.DYNAMIC
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _quiet_torch_logs():
            exported = torch.export.export(wrapper, (example,), dynamic_shapes={"x": {0: dyn, 2: dyn, 3: dyn}})
            program = torch.onnx.export(exported, (example,), dynamo=True, opset_version=opset,
                                        input_names=["input"], output_names=["output"], verbose=False,
                                        optimize=True, verify=False, report=False)
            program.save(str(path))
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; all mean "cannot export"
        raise OptionError(f"{name} cannot be exported to ONNX: {_failing_op(exc)}", key="network_g.type") from exc
    return {"opset": opset, "min_size": max(multiple, 1)}


def check_onnx(
    path: Path, net: nn.Module, in_ch: int, sizes: Sequence[Tuple[int, int]], scale: int = 1, multiple: int = 1,
    atol: float = 1e-3,
) -> List[Dict[str, Any]]:
    """Run the exported graph with onnxruntime (CPU) and PyTorch's inference path on random inputs.

    Args:
        path: The ``.onnx`` file.
        net: The PyTorch network it was exported from.
        in_ch: Input channels.
        sizes: Input ``(H, W)`` sizes to try (use at least two, one not a multiple of any window).
        scale: Output / input size ratio.
        multiple: Input side multiple (PyTorch pads like the graph).
        atol: Largest accepted absolute difference.

    Returns:
        ``[{"size": [H, W], "output": [...], "max_abs_err": float}]``; raises :class:`OptionError` above ``atol``.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = net.float().cpu().eval()
    gen = torch.Generator().manual_seed(0)
    rows = []
    for h, w in sizes:
        x = torch.rand(1, in_ch, int(h), int(w), generator=gen)
        with torch.no_grad():
            ref = forward_padded(net, x, scale, multiple).numpy()
        try:
            out = session.run(["output"], {"input": x.numpy()})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime errors have no common base class
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise OptionError(f"the ONNX graph fails on a {h}x{w} input: {first[:300]}", key="--check-size") from exc
        if out.shape != ref.shape:
            raise OptionError(f"ONNX output {out.shape} != PyTorch {ref.shape} for a {h}x{w} input", key="--check-size")
        err = float(np.abs(out - ref).max())
        if not err <= atol:
            raise OptionError(f"ONNX output differs from PyTorch by {err:.3g} (> {atol:g}) for a {h}x{w} input",
                              key="--atol")
        rows.append({"size": [int(h), int(w)], "output": list(out.shape), "max_abs_err": err})
    return rows
