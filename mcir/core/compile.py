"""torch.compile behind a wrapper that keeps the plain module's names and falls back to it when compiling fails."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, Mapping, Optional

import torch
from torch import nn

#: ``compile_fn(module) -> callable``; :func:`torch.compile` by default.
CompileFn = Callable[[nn.Module], Callable[..., Any]]
COMPILE_PREFIX = "_orig_mod."


def strip_compile_prefix(state: Mapping[str, Any]) -> Dict[str, Any]:
    """``state`` with every ``_orig_mod.`` (a ``torch.compile`` wrapper's prefix) removed from its keys.

    Args:
        state: A state dict, possibly saved from a compiled module.

    Returns:
        A new dict with the plain module's names.
    """
    return {key.replace(COMPILE_PREFIX, ""): value for key, value in state.items()}


class CompiledModule(nn.Module):
    """Runs ``module`` through ``torch.compile`` while looking like ``module`` everywhere else.

    Its state dict is the plain module's (no ``_orig_mod.`` prefix), attributes it lacks (``upscale``,
    ``size_multiple``, DDP's ``no_sync``) are the module's, and its parameters are the module's own
    tensors. When ``torch.compile`` raises, or the compiled call raises where the plain call does not (no
    C++ compiler, an unsupported op), it warns once in one line and runs the plain module from then on.
    An error the plain module raises too is the caller's, and is raised as it is.

    Args:
        module: The network (or loss network) to compile; it stays usable on its own.
        what: What it is, for the warning (``the target network``).
        compile_fn: Compiler (default :func:`torch.compile` with its defaults).
    """

    def __init__(self, module: nn.Module, what: str = "the network", compile_fn: Optional[CompileFn] = None):
        super().__init__()
        self.module = module
        self.what = what
        self.fallback_reason: Optional[str] = None
        compiled: Optional[Callable[..., Any]] = None
        try:
            compiled = (compile_fn or torch.compile)(module)
        except Exception as exc:  # noqa: BLE001 - any failure means: run the plain module
            self._fall_back(exc)
        # Not a registered submodule: the compiled wrapper's ``_orig_mod.`` names never reach a state dict.
        object.__setattr__(self, "_compiled", compiled)

    @property
    def compiled(self) -> bool:
        """Whether calls still go through the compiled module."""
        return self._compiled is not None

    def _fall_back(self, exc: BaseException) -> None:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        self.fallback_reason = f"{type(exc).__name__}: {first}"
        object.__setattr__(self, "_compiled", None)
        warnings.warn(f"torch.compile of {self.what} failed ({self.fallback_reason[:200]}); running it uncompiled",
                      RuntimeWarning, stacklevel=3)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The compiled call, or the plain module's when compiling is off or failed."""
        compiled = self._compiled
        if compiled is None:
            return self.module(*args, **kwargs)
        try:
            return compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            out = self.module(*args, **kwargs)  # raises the caller's own error when the input is at fault
            self._fall_back(exc)
            return out

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """The plain module's state dict (its own names)."""
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load into the plain module (``_orig_mod.`` prefixes of a compiled module's state are removed)."""
        return self.module.load_state_dict(strip_compile_prefix(state_dict), strict=strict, assign=assign)


def maybe_compile(module: nn.Module, enabled: bool, what: str = "the network",
                  compile_fn: Optional[CompileFn] = None) -> nn.Module:
    """``CompiledModule(module)`` when ``enabled``, else ``module`` itself.

    Args:
        module: The module.
        enabled: The ``train.compile`` / ``val.compile`` option.
        what: For the fallback warning.
        compile_fn: Compiler (default :func:`torch.compile`).

    Returns:
        A module to call instead of ``module``.
    """
    return CompiledModule(module, what, compile_fn) if enabled else module
