"""Entropy models (training-time likelihoods), parameter-compatible with CompressAI's
``EntropyBottleneck`` and ``GaussianConditional``. Coding itself goes through
:mod:`neurocodec.entropy.rans` with integer tables; these modules only give likelihoods.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocodec.transforms.gdn import lower_bound

LIKELIHOOD_BOUND = 1e-9


def _up(v):
    """Half-precision tensors to float32; float32/64 and non-tensors as they are."""
    if isinstance(v, Tensor) and v.dtype in (torch.float16, torch.bfloat16):
        return v.float()
    return v


def fp32(fn):
    """Run an entropy-model method in float32 with autocast off: under bf16 autocast the
    transforms may run in bf16, but likelihoods (and so the rate the loss sees) must not lose
    precision in erfc and the density MLP."""
    import functools

    @functools.wraps(fn)
    def wrapper(self, *args, **kw):
        args = [_up(a) for a in args]
        kw = {k: _up(v) for k, v in kw.items()}
        dev = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        with torch.autocast(dev, enabled=False):
            return fn(self, *args, **kw)

    return wrapper


def _noise_or_round(x: Tensor, training: bool, center: Tensor | None) -> Tensor:
    if training:
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    if center is None:
        return torch.round(x)
    return torch.round(x - center) + center


class FactorizedPrior(nn.Module):
    """Non-parametric per-channel density (Ballé et al. 2018, appendix 6.1).

    z: ``[B, C, H, W]``; ``forward`` returns ``(z_tilde, likelihoods)`` of the same shape.
    ``quantiles[:, 0, :]`` tracks each channel's (tail, median, tail) through :meth:`loss`.
    """

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10.0,
                 filters: tuple[int, ...] = (3, 3, 3, 3)):
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self.quantiles = nn.Parameter(
            torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        t = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.tensor([-t, 0.0, t]))

    def logits_cumulative(self, x: Tensor, stop_gradient: bool = False) -> Tensor:
        """x: ``[C, 1, S]`` -> logits of the CDF, ``[C, 1, S]``."""
        for i, m in enumerate(self.matrices):
            b = self.biases[i]
            if stop_gradient:
                m, b = m.detach(), b.detach()
            x = torch.matmul(F.softplus(m), x) + b
            if i < len(self.factors):
                f = self.factors[i].detach() if stop_gradient else self.factors[i]
                x = x + torch.tanh(f) * torch.tanh(x)
        return x

    def likelihood(self, x: Tensor, stop_gradient: bool = False) -> Tensor:
        """Probability of the unit bin around each value. x: ``[C, 1, S]``."""
        lower = self.logits_cumulative(x - 0.5, stop_gradient)
        upper = self.logits_cumulative(x + 0.5, stop_gradient)
        return torch.sigmoid(upper) - torch.sigmoid(lower)

    def medians(self) -> Tensor:
        """``[1, C, 1, 1]``, detached."""
        return self.quantiles[:, 0, 1].detach().view(1, -1, 1, 1)

    @fp32
    def forward(self, z: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        training = self.training if training is None else training
        z_t = _noise_or_round(z, training, self.medians())
        return z_t, self.bin_likelihood(z_t)

    @fp32
    def bin_likelihood(self, z: Tensor) -> Tensor:
        """Likelihood ``[B, C, H, W]`` of the unit bin around each value of ``z [B, C, H, W]``
        as given (no rounding, no noise: a caller with its own relaxation keeps its gradient)."""
        c = z.shape[1]
        v = z.transpose(0, 1).reshape(c, 1, -1)
        lik = lower_bound(self.likelihood(v), LIKELIHOOD_BOUND)
        return lik.reshape(c, z.shape[0], *z.shape[2:]).transpose(0, 1)

    def loss(self) -> Tensor:
        """Auxiliary loss that moves ``quantiles`` onto the tails and median of the density."""
        logits = self.logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()


class GaussianConditional(nn.Module):
    """Likelihood of ``y`` under ``N(means, scales)`` integrated over unit bins.

    y, scales, means: ``[B, M, H, W]``. Scales are bounded below by ``scale_bound``.
    """

    def __init__(self, scale_bound: float = 0.11):
        super().__init__()
        self.scale_bound = scale_bound

    @fp32
    def forward(self, y: Tensor, scales: Tensor, means: Tensor | None = None,
                training: bool | None = None) -> tuple[Tensor, Tensor]:
        training = self.training if training is None else training
        y_t = _noise_or_round(y, training, means)
        return y_t, self.likelihood(y_t, scales, means)

    @fp32
    def likelihood(self, y: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Likelihood of the unit bin around each value of ``y`` as given (no rounding, no
        noise: a caller with its own relaxation keeps its gradient)."""
        v = torch.abs(y - means if means is not None else y)
        s = lower_bound(scales, self.scale_bound)
        c = -(2**-0.5)
        upper = 0.5 * torch.erfc(c * (0.5 - v) / s)
        lower = 0.5 * torch.erfc(c * (-0.5 - v) / s)
        return lower_bound(upper - lower, LIKELIHOOD_BOUND)
