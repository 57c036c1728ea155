"""Encoder-side instance adaptation: refine one image's latents before coding them.

The analysis transform is amortised over a training set; for one given image, gradient steps
on that image's own rate–distortion objective ``λ_q·255²·MSE(g_s(ŷ), x) + bpp(ŷ, ẑ)`` find
latents that code it better (Campos et al. 2019; Yang et al. 2020). The decoder is unchanged:
the refined ``y`` and ``z`` are coded by the model's normal coder
(``compress_latents``), so any decoder reads the file.

Rounding is relaxed by Stochastic Gumbel Annealing (SGA; Yang, Bamler & Mandt, "Improving
Inference for Neural Image Compression", NeurIPS 2020): each element is a Gumbel-softmax
choice between ``floor`` and ``ceil`` of ``v - center``, with logits that favour the nearer
one, at a temperature ``τ`` annealed towards 0, so the optimiser sees the rounding it will
get while the rate and distortion stay differentiable. (Plain straight-through rounding with a
large step pushes near-zero latents back and forth over the rounding thresholds and makes
files larger.) The rate is the likelihood of the relaxed values themselves
(:meth:`~neurocodec.codecs.image.base.VariableRateImageModel.relaxed_pass`).

At the end both the unrefined and the refined latents are coded for real, and the refined
ones are kept only if their real RD cost — the streams' bits and the MSE of the 8-bit image the
decoder will output — is lower: refinement never makes a file's RD cost worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from neurocodec.codecs.image.base import Relaxation, VariableRateImageModel
from neurocodec.codecs.rd import bits_per_pixel, mse_distortion
from neurocodec.errors import InputError, ModelError

__all__ = ["RefineConfig", "RefineResult", "refine_latents", "sga_relaxation"]

_EPS = 1e-5  # keeps atanh finite where a value sits exactly on an integer


@dataclass(frozen=True)
class RefineConfig:
    """``steps`` Adam steps of learning rate ``lr`` on ``y`` and ``z``; the SGA temperature
    decays exponentially from ``tau_start`` to ``tau_end`` over the steps; ``seed`` fixes the
    Gumbel noise, so the same image, model and config give the same file."""

    steps: int
    lr: float = 1e-2  # 5e-3 gains less in 50 steps, 2e-2 overshoots (Kodak 1, 4, 7)
    tau_start: float = 0.5
    tau_end: float = 0.05
    seed: int = 0

    def __post_init__(self):
        if self.steps < 0:
            raise InputError(f"refinement steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise InputError(f"refinement learning rate must be > 0, got {self.lr}")
        if not 0 < self.tau_end <= self.tau_start:
            raise InputError(f"need 0 < tau_end <= tau_start, got {self.tau_end}, "
                             f"{self.tau_start}")

    def tau(self, step: int) -> float:
        """Temperature at ``step`` (0-based): ``tau_start`` first, ``tau_end`` last."""
        if self.steps <= 1:
            return self.tau_end
        return self.tau_start * (self.tau_end / self.tau_start) ** (step / (self.steps - 1))


@dataclass(frozen=True)
class RefineResult:
    """The coded image: its streams and ``z`` shape (as ``compress`` returns them), the
    latents they code (``y [1,M,h,w]``, ``z [1,N,h',w']``, continuous, gained), whether those
    are the refined ones, and the real RD cost (file bits per pixel + λ·255²·MSE of the
    decoded 8-bit image, container header aside) of the unrefined and the refined latents."""

    streams: list[bytes]
    z_shape: tuple[int, int]
    y: Tensor
    z: Tensor
    refined: bool
    cost_before: float
    cost_after: float


def sga_relaxation(tau: float, generator: torch.Generator) -> Relaxation:
    """SGA's ``quantize(v, center)``: ``center + floor(r) + w`` with ``r = v - center`` and
    ``w ∈ (0, 1)`` a two-class Gumbel-softmax sample at temperature ``tau`` between floor
    (``w → 0``) and ceil (``w → 1``), logits ``-atanh(distance) / tau`` (Yang et al. 2020)."""

    def quantize(v: Tensor, center: Tensor) -> Tensor:
        r = v - center
        lo = torch.floor(r).detach()
        d = (r - lo).clamp(_EPS, 1 - _EPS)  # distance to floor; 1 - d to ceil
        logit = (torch.atanh(d) - torch.atanh(1 - d)) / tau  # ceil minus floor
        # Difference of two Gumbels is logistic: one uniform per element.
        u = torch.rand(r.shape, generator=generator, device=r.device, dtype=r.dtype)
        u = u.clamp(_EPS, 1 - _EPS)
        w = torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / tau)
        return center + lo + w

    return quantize


def _code(model: VariableRateImageModel, y: Tensor, z: Tensor, x: Tensor, q: int,
          lmbda: float) -> tuple[float, list[bytes], tuple[int, int]]:
    """Code ``y``, ``z`` for real; returns the cost ``8·bytes / pixels + λ·255²·MSE`` of the
    8-bit image the decoder will output for ``x [1,3,H,W]`` (unpadded), the streams and the
    shape of ``z`` (as ``compress_latents`` returns them)."""
    with torch.no_grad():
        streams, z_shape = model.compress_latents(y, z, q)
        h, w = x.shape[-2:]
        # _eval_latents reconstructs what decompress does; the decoder rounds to 8 bits.
        x_hat = model._eval_latents(y, z, q)["x_hat"][..., :h, :w].clamp(0, 1)
        x_hat = torch.round(x_hat * 255.0) / 255.0
        rate = 8.0 * sum(len(s) for s in streams) / (h * w)
        return rate + lmbda * float(mse_distortion(x_hat, x)[0]), streams, z_shape


def refine_latents(model: VariableRateImageModel, x: Tensor, q: int,
                   cfg: RefineConfig) -> RefineResult:
    """Refine the latents of ``x [1,3,H,W]`` (float in [0,1], any H, W) at quality ``q``.

    Starts from the analysis of the padded image; the distortion counts only the ``H x W``
    pixels the decoder keeps (the padding may code as cheaply as it likes). The model's
    parameters are left untouched (gradients are taken with respect to the latents only).
    """
    if type(model).relaxed_pass is VariableRateImageModel.relaxed_pass:
        raise ModelError(f"{type(model).__name__} does not support encoder-side refinement")
    lmbda = float(model.cfg.lmbdas[q])
    h, w = x.shape[-2:]
    with torch.no_grad():
        y0, z0 = model._analysis_latents(model._pad(x)[0], q)
    before, streams0, zs0 = _code(model, y0, z0, x, q, lmbda)
    if cfg.steps == 0:
        return RefineResult(streams0, zs0, y0, z0, False, before, before)
    y, z = y0.clone().requires_grad_(True), z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y, z], lr=cfg.lr)
    gen = torch.Generator(device=x.device).manual_seed(cfg.seed)
    for step in range(cfg.steps):
        x_hat, lik = model.relaxed_pass(y, z, q, sga_relaxation(cfg.tau(step), gen))
        loss = (bits_per_pixel(lik, h * w) + lmbda * mse_distortion(x_hat[..., :h, :w], x))[0]
        if not math.isfinite(loss.item()):
            break  # keep the last finite iterate; the final check below still guards it
        # Gradients for the latents only: the model's parameters get no .grad.
        y.grad, z.grad = torch.autograd.grad(loss, [y, z])
        opt.step()
    y, z = y.detach(), z.detach()
    after, streams, zs = _code(model, y, z, x, q, lmbda)
    if after < before:
        return RefineResult(streams, zs, y, z, True, before, after)
    return RefineResult(streams0, zs0, y0, z0, False, before, after)
