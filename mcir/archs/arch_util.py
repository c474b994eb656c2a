"""Building blocks shared by architectures, and checked construction of registered classes."""

from __future__ import annotations

import math
from typing import Any, List, Sequence

import torch
from torch import nn

from mcir.errors import OptionError


class ArchBase(nn.Module):
    """Base class holding the attributes every mcir architecture declares.

    Subclasses set ``self.upscale`` in their constructor and override the class
    attributes below when they differ.
    """

    #: Whether the network has something to learn; the trainer refuses to train it otherwise.
    requires_training: bool = True
    #: Input height and width must be multiples of this.
    size_multiple: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.upscale: int = 1

    def checkpoint_blocks(self) -> List[nn.Module]:
        """The repeatable blocks ``train.grad_checkpoint`` recomputes in the backward pass (none by default).

        Returns:
            Submodules, each called as a module by the forward pass (see ``mcir.archs.grad_checkpoint``).
        """
        return []


@torch.no_grad()
def default_init_weights(module: nn.Module, scale: float = 1.0, bias_fill: float = 0.0) -> None:
    """Kaiming-normal initialise every conv/linear layer in ``module``, then scale the weights.

    A scale below 1 keeps deep residual stacks close to identity at the start of training.

    Args:
        module: Module whose ``Conv2d`` and ``Linear`` children are re-initialised in place.
        scale: Factor applied to the initialised weights.
        bias_fill: Value written into every bias.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            m.weight.mul_(scale)
            if m.bias is not None:
                m.bias.fill_(bias_fill)


def transformer_init_weights(m: nn.Module) -> None:
    """The Swin family's initialisation, for ``module.apply``: truncated-normal linear weights (std 0.02),
    zero linear biases, unit LayerNorms; convolutions keep PyTorch's defaults."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv residual block without batch norm: ``x + res_scale * conv2(relu(conv1(x)))``.

    Args:
        num_feat: Channels in and out.
        res_scale: Factor applied to the residual branch.
        pytorch_init: Keep PyTorch's default initialisation instead of scaled Kaiming (scale 0.1).
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0, pytorch_init: bool = False):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        if not pytorch_init:
            default_init_weights(self, scale=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, num_feat, H, W). Returns: tensor of the same shape."""
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def make_layer(block: type, num_blocks: int, **kwargs: Any) -> nn.Sequential:
    """Stack ``num_blocks`` fresh instances of ``block(**kwargs)``.

    Args:
        block: Module class to instantiate.
        num_blocks: How many to stack.
        kwargs: Constructor arguments for every block.

    Returns:
        An ``nn.Sequential`` whose children are named ``0 .. num_blocks-1``.
    """
    return nn.Sequential(*[block(**kwargs) for _ in range(num_blocks)])


class Upsample(nn.Sequential):
    """Sub-pixel upsampler: (conv to 4x channels + PixelShuffle(2)) per x2 step, or one x3 step.

    Args:
        scale: 2**n or 3.
        num_feat: Feature channels in and out.
    """

    def __init__(self, scale: int, num_feat: int):
        layers = []
        if scale >= 1 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise OptionError(f"upscale {scale} is not supported; use a power of 2 or 3", key="upscale")
        super().__init__(*layers)




def register_rgb_mean(module: nn.Module, rgb_mean: Sequence[float], num_in_ch: int, num_out_ch: int) -> None:
    """Check BasicSR's ``rgb_mean`` (one value, or one per channel) and keep it as the ``mean`` buffer.

    Non-persistent, as BasicSR keeps the mean out of the state dict (checkpoints stay compatible), while a
    buffer still follows ``.to(device)`` and ``.half()``.

    Args:
        module: The network (gets ``module.mean``, shaped (1, C, 1, 1)).
        rgb_mean: The option value.
        num_in_ch: Input channels.
        num_out_ch: Output channels.
    """
    if len(rgb_mean) not in {1, num_in_ch} or len(rgb_mean) not in {1, num_out_ch}:
        raise OptionError(
            f"has {len(rgb_mean)} values; needs 1 or one per channel (num_in_ch={num_in_ch}, num_out_ch={num_out_ch})",
            key="rgb_mean",
        )
    module.register_buffer(
        "mean", torch.tensor(list(rgb_mean), dtype=torch.float32).view(1, -1, 1, 1), persistent=False
    )
