"""GDN / inverse GDN (Ballé et al. 2016), parameter-compatible with ``compressai.layers.GDN``.

Our own copy because importing compressai costs ~6 s (it pulls torch_geometric), which every
``neurocodec decode`` would pay; the tests check it against compressai's layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPARAM_OFFSET = 2.0**-18
PEDESTAL = REPARAM_OFFSET**2


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows when it pushes ``x`` back above the bound."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


def lower_bound(x: Tensor, bound: float) -> Tensor:
    return _LowerBound.apply(x, bound)


def _nonneg(p: Tensor, minimum: float) -> Tensor:
    return lower_bound(p, (minimum + PEDESTAL) ** 0.5) ** 2 - PEDESTAL


class GDN(nn.Module):
    """``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (or times, if ``inverse``).

    x: ``[B, C, H, W]`` -> ``[B, C, H, W]``.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_min = beta_min
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + PEDESTAL))
        self.gamma = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + PEDESTAL))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = _nonneg(self.beta, self.beta_min)
        gamma = _nonneg(self.gamma, 0.0).reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
