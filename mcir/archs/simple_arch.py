"""Parameter-free reference "networks": MATLAB bicubic upsampling and input-as-output."""

from __future__ import annotations

import torch

from mcir.constraints import PositiveInt
from mcir.archs.arch_util import ArchBase
from mcir.data.imresize import imresize_torch
from mcir.errors import OptionError
from mcir.registry import ARCH_REGISTRY


def _check_channels(num_in_ch: int, num_out_ch: int) -> None:
    """Both baselines pass channels through, so in and out counts must agree."""
    if num_in_ch != num_out_ch:
        raise OptionError(
            f"must equal num_in_ch ({num_in_ch}) for a parameter-free network, got {num_out_ch}",
            key="num_out_ch",
        )


@ARCH_REGISTRY.register()
class Bicubic(ArchBase):
    """MATLAB-style bicubic upsampling (``imresize``), the classic SR baseline row.

    Args:
        upscale: Upsampling factor (>= 1).
        num_in_ch: Input channels.
        num_out_ch: Output channels; must equal ``num_in_ch``.
    """

    requires_training = False

    def __init__(self, upscale: PositiveInt = 4, num_in_ch: PositiveInt = 3, num_out_ch: PositiveInt = 3):
        super().__init__()
        _check_channels(num_in_ch, num_out_ch)
        if int(upscale) != upscale or upscale < 1:
            raise OptionError(f"must be a positive integer, got {upscale!r}", key="upscale")
        self.upscale = int(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample a batch.

        Args:
            x: (N, C, H, W) float tensor, typically in [0, 1].

        Returns:
            (N, C, H * upscale, W * upscale); not clamped (bicubic overshoots slightly at edges).
        """
        if self.upscale == 1:
            return x.clone()
        return imresize_torch(x, float(self.upscale))


@ARCH_REGISTRY.register()
class Identity(ArchBase):
    """Returns its input, the "input as output" baseline row for restoration tasks.

    Args:
        upscale: Must be 1.
        num_in_ch: Input channels.
        num_out_ch: Output channels; must equal ``num_in_ch``.
    """

    requires_training = False

    def __init__(self, upscale: PositiveInt = 1, num_in_ch: PositiveInt = 3, num_out_ch: PositiveInt = 3):
        super().__init__()
        _check_channels(num_in_ch, num_out_ch)
        if upscale != 1:
            raise OptionError(f"must be 1 for Identity, got {upscale!r}; use Bicubic for SR", key="upscale")
        self.upscale = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pass a batch through.

        Args:
            x: (N, C, H, W) tensor.

        Returns:
            A copy of ``x``; copied so that in-place edits of the output cannot alter the input.
        """
        return x.clone()
