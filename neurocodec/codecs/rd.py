"""Rate–distortion terms shared by encoders (latent refinement) and the trainer, kept here so
that encoding never imports the training package."""

from __future__ import annotations

import torch
from torch import Tensor


def bits_per_pixel(likelihoods: dict[str, Tensor], num_pixels: int) -> Tensor:
    """Estimated rate ``[B]`` from likelihood tensors ``[B, ...]`` of every coded latent."""
    bits = sum((-torch.log2(v)).flatten(1).sum(1) for v in likelihoods.values())
    return bits / num_pixels


def mse_distortion(x_hat: Tensor, x: Tensor) -> Tensor:
    """``255² · MSE`` per image ``[B]``, for ``[B,3,H,W]`` tensors in [0,1]: λ in 8-bit units."""
    return 255**2 * (x_hat - x).pow(2).flatten(1).mean(1)
