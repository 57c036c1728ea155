"""Rate–distortion losses: ``λ·D + R`` per image, with D from MSE or MS-SSIM and R in bpp.

Every image of a batch has its own quality, hence its own λ: ``lmbda`` is ``[B]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from neurocodec.codecs.rd import bits_per_pixel, mse_distortion

__all__ = ["DISTORTIONS", "bits_per_pixel", "default_lmbdas", "mse_distortion", "rd_loss"]

# CompressAI's MS-SSIM λs for its first six quality levels (bmshj2018/mbt2018 "ms-ssim").
# The MSE default lives with the model (HyperpriorConfig.lmbdas) and applies when unset.
MS_SSIM_LMBDAS = (2.40, 4.58, 8.73, 16.64, 31.73, 60.50)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_window(side: int) -> tuple[int, tuple[float, ...]]:
    """Gaussian window size and scale weights of MS-SSIM for images ``side`` px on the short side.

    pytorch-msssim requires ``side > (win_size - 1) * 16`` whatever the number of scales, so
    crops under 161 px get a narrower window and four scales (the coarsest ``side / 8`` px)."""
    if side > 160:
        return 11, MS_SSIM_WEIGHTS
    win = 11
    while win > 3 and (win - 1) * 16 >= side:
        win -= 2
    if (win - 1) * 16 >= side:
        raise ValueError(f"MS-SSIM needs crops of at least 33 px, not {side}")
    w = MS_SSIM_WEIGHTS[:4]
    return win, tuple(v / sum(w) for v in w)


def ms_ssim_distortion(x_hat: Tensor, x: Tensor) -> Tensor:
    """``1 − MS-SSIM`` per image ``[B]``, for ``[B,3,H,W]`` tensors in [0,1].

    ``x_hat`` is not clamped: clamping would cut the gradient of out-of-range pixels."""
    from pytorch_msssim import ms_ssim

    win, weights = ms_ssim_window(min(x.shape[-2:]))
    return 1 - ms_ssim(x_hat, x, data_range=1.0, size_average=False, win_size=win,
                       weights=list(weights))


DISTORTIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": mse_distortion,
    "ms-ssim": ms_ssim_distortion,
}


def default_lmbdas(loss: str) -> tuple[float, ...] | None:
    """The variable-rate λ set for ``loss``; ``None``: the model config's own (MSE) default."""
    return MS_SSIM_LMBDAS if loss == "ms-ssim" else None


def rd_loss(out: dict, x: Tensor, lmbda: Tensor, loss: str = "mse") -> dict[str, Tensor]:
    """``mean(λ·D + bpp)`` from a model output ``{"x_hat", "likelihoods"}`` and ``x [B,3,H,W]``.

    Returns the loss (with gradient) and detached batch means of bpp and PSNR for the logs."""
    x_hat = out["x_hat"]
    bpp = bits_per_pixel(out["likelihoods"], x.shape[-2] * x.shape[-1])
    dist = DISTORTIONS[loss](x_hat, x)
    mse = (x_hat.detach() - x).pow(2).flatten(1).mean(1)
    psnr = (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean()
    return {"loss": (lmbda * dist + bpp).mean(), "bpp": bpp.mean().detach(), "psnr": psnr}
