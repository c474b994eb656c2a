"""Eq. 1 of MCIR: the negative ("latency") models are slow EMA histories of the target network.

After the optimizer step of iteration ``t``, negative ``i`` with ``t % s_i == 0`` is updated as
``θ'_i ← w_i·θ'_i + (1 − w_i)·θ``; nothing else changes it. Before ``start_iter`` there is no SPN term and
no update; at ``start_iter + 1`` (when ``start_iter > 0``) the negatives are re-seeded from the target.
Their outputs on the current batch are the hard negatives of the SPN loss (Eq. 2–4, ``eq2_4_spn.py``).

Use it in any PyTorch loop::

    bank = NegativeBank(net, steps=(100, 200, 500, 1000), decay=0.1)
    for t, (lq, gt) in enumerate(loader, start=1):
        out = net(lq)
        negs = bank.outputs(net, lq, t)                # (N, B, C, H, W) without gradients, or None
        loss = l1(out, gt) if negs is None else spn_objective(l1(out, gt), spn.distance(out, negs), lam)
        opt.zero_grad(); loss.backward(); opt.step()
        bank.update(net, t)                            # Eq. 1, after the optimizer step
"""

from __future__ import annotations

import copy
from typing import Callable, List, Optional, Sequence, Union

import torch
from torch import nn

from mcir.core.averaged_model import AveragedModel

INIT_MODES = ("target", "blend", "random_fixed", "pretrained_fixed")
PRECISIONS = ("fp32", "bf16")


def fresh_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with freshly initialised weights (``reset_parameters`` of every submodule).

    Architectures with custom initialisation should pass their own factory to :class:`NegativeBank`.
    """
    new = copy.deepcopy(model)
    for m in new.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
    return new


def _check(steps: Sequence[int], decays: List[float], init: str, precision: str, pretrained: Optional[dict]) -> None:
    """Refuse arguments Eq. 1 has no meaning for (option files are checked earlier, by the option schema)."""
    if not steps or any(int(s) < 1 for s in steps):
        raise ValueError(f"steps must be a non-empty list of positive integers, got {list(steps)}")
    if len(decays) != len(steps):
        raise ValueError(f"decay has {len(decays)} values for {len(steps)} steps")
    if any(not 0.0 <= d < 1.0 for d in decays):
        raise ValueError(f"every decay must be in [0, 1), got {decays}")
    if init not in INIT_MODES:
        raise ValueError(f"unknown init '{init}' (choose {', '.join(INIT_MODES)})")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (choose {', '.join(PRECISIONS)})")
    if init == "pretrained_fixed" and pretrained is None:
        raise ValueError("init 'pretrained_fixed' needs pretrained weights")


class NegativeBank(nn.Module):
    """N negative models following the target with their own update interval ``s_i`` and decay ``w_i``.

    Args:
        model: The target network (its current weights seed the negatives).
        steps: ``s_i`` of each negative; N = ``len(steps)``.
        decay: ``w_i``: one value for all, or one per step (paired in order).
        init: ``target`` (copy), ``blend`` (``neg_start``·random + (1 − ``neg_start``)·target),
            ``random_fixed`` (random, never updated) or ``pretrained_fixed`` (``pretrained``, never updated).
        neg_start: Share of the random weights in ``blend``.
        start_iter: No SPN term and no update up to this iteration; re-seeded at ``start_iter + 1``.
        factory: Builds a freshly initialised network of the same architecture (``blend``/``random_fixed``);
            default :func:`fresh_copy`.
        pretrained: State dict for ``pretrained_fixed``.
        precision: ``fp32``, or ``bf16`` to run the negatives' forwards under bfloat16 autocast (their
            outputs are then bfloat16; no gradient ever flows through them).
        seed: Seed of the fresh random weights (``blend`` / ``random_fixed``). They are drawn from a forked
            RNG, so the run's random stream is the same with or without negatives, and every DDP rank draws
            the same weights (also when re-seeding at ``start_iter + 1``).
    """

    def __init__(
        self,
        model: nn.Module,
        steps: Sequence[int] = (100, 200, 500, 1000),
        decay: Union[float, Sequence[float]] = 0.1,
        init: str = "blend",
        neg_start: float = 0.1,
        start_iter: int = 0,
        factory: Optional[Callable[[], nn.Module]] = None,
        pretrained: Optional[dict] = None,
        precision: str = "fp32",
        seed: int = 0,
    ):
        super().__init__()
        decays = [float(decay)] * len(steps) if isinstance(decay, (int, float)) else [float(d) for d in decay]
        _check(steps, decays, init, precision, pretrained)
        self.init = init
        self.precision = precision
        self.neg_start = float(neg_start)
        self.start_iter = int(start_iter)
        self.seed = int(seed)
        self.frozen = init in ("random_fixed", "pretrained_fixed")
        self._factory = factory or (lambda: fresh_copy(model))
        self._pretrained = pretrained
        self._seeded_at: Optional[int] = None
        self.negatives = nn.ModuleList(
            AveragedModel(model, decay=w, update_every=int(s), start_step=self.start_iter + 1)
            for s, w in zip(steps, decays)
        )
        # Per-negative callables (compiled forwards, see compile_forwards); not registered: state stays as is.
        self._forwards: List[Callable[[torch.Tensor], torch.Tensor]] = [neg.module for neg in self.negatives]
        self.reset_from(model)

    def compile_forwards(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Run each negative's forward through ``wrap(negative)`` (e.g. a compiled module sharing its weights).

        Args:
            wrap: Returns a callable module for a negative network; the bank's state and Eq. 1 stay on the
                negatives themselves.
        """
        self._forwards = [wrap(neg.module) for neg in self.negatives]

    def __len__(self) -> int:
        return len(self.negatives)

    @property
    def steps(self) -> List[int]:
        """``s_i`` of each negative."""
        return [n.update_every for n in self.negatives]

    @property
    def decays(self) -> List[float]:
        """``w_i`` of each negative."""
        return [n.decay for n in self.negatives]

    def active(self, iteration: int) -> bool:
        """Whether the SPN term is on at ``iteration`` (after ``start_iter``)."""
        return iteration > self.start_iter

    @torch.no_grad()
    def reset_from(self, model: nn.Module) -> None:
        """(Re-)initialise every negative from ``model`` with this bank's init mode (buffers included)."""
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(self.seed)  # the CPU generator only
            for neg in self.negatives:
                if self.init == "target":
                    neg.blend_from(model, decay=0.0)
                elif self.init == "pretrained_fixed":
                    neg.module.load_state_dict(self._pretrained)
                else:
                    neg.module.load_state_dict(self._factory().state_dict())
                    if self.init == "blend":
                        neg.blend_from(model, decay=self.neg_start)

    def outputs(self, model: nn.Module, x: torch.Tensor, iteration: int) -> Optional[torch.Tensor]:
        """The negatives' outputs on ``x`` at ``iteration``, or None before the SPN term starts.

        At ``start_iter + 1`` (``start_iter > 0``) the negatives are first re-seeded from ``model``, once
        (calling this again in the same iteration, e.g. for accumulated micro-batches, does not re-seed).

        Args:
            model: The target network.
            x: The network input batch.
            iteration: The iteration being run (1-based).

        Returns:
            ``(N, B, C, H, W)`` without gradients, or None.
        """
        if not self.active(iteration):
            return None
        if self.start_iter > 0 and iteration == self.start_iter + 1 and self._seeded_at != iteration:
            self.reset_from(model)
            self._seeded_at = iteration
        return self(x)

    @torch.no_grad()
    def update(self, model: nn.Module, iteration: int) -> List[int]:
        """Eq. 1 for the negatives due at ``iteration`` (call after the optimizer step).

        Args:
            model: The target network.
            iteration: The iteration just completed (1-based).

        Returns:
            Indices of the negatives that were updated.
        """
        if self.frozen or not self.active(iteration):
            return []
        return [i for i, neg in enumerate(self.negatives) if neg.update(model, iteration)]

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of all negatives on ``x`` (eval mode, no autograd): shape ``(N, B, C, H, W)``.

        With ``precision='bf16'`` the forwards run under bfloat16 autocast and the result is bfloat16.
        """
        if self.precision == "fp32":
            return torch.stack([forward(x) for forward in self._forwards])
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return torch.stack([forward(x).to(torch.bfloat16) for forward in self._forwards])

    def extra_repr(self) -> str:
        """Summary shown by ``print(bank)``."""
        return f"steps={self.steps}, decays={self.decays}, init={self.init!r}, precision={self.precision!r}"
