"""Image quality metrics on 8-bit RGB and bits per pixel from real sizes."""

from __future__ import annotations

import numpy as np
import torch

from neurocodec.determinism import single_thread


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between uint8 ``[H, W, C]`` images (all channels pooled)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (pytorch-msssim, data range 255) between uint8 ``[H, W, 3]`` images.

    Images smaller than 161 px on a side (the 5-scale minimum) use fewer scales' worth of
    padding: they are reflected up to 161 px, which only affects such tiny inputs."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    def t(x):
        x = torch.tensor(np.asarray(x)).permute(2, 0, 1)[None].float()
        ph, pw = max(0, 161 - x.shape[2]), max(0, 161 - x.shape[3])
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
        return x

    with single_thread():  # the same value whatever the caller's threads, and no contention
        return float(_ms_ssim(t(a), t(b), data_range=255.0))


def bpp(num_bytes: int, shape) -> float:
    return 8.0 * num_bytes / (shape[0] * shape[1])
