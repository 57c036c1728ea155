"""Image quality metrics on 8-bit RGB and bits per pixel from real sizes.

PSNR is reported three ways: on RGB (all channels pooled, CompressAI's ``psnr-rgb``), on luma
Y', and YUV-weighted ``(6·PSNR_Y + PSNR_Cb + PSNR_Cr) / 8`` (the JVET 6:1:1 convention). Y'CbCr
comes from both 8-bit RGB images through :mod:`neurocodec.eval.colour` (BT.709, full range,
4:4:4, scaled to 0–255), so a codec's own chroma format does not change how it is measured.
"""

from __future__ import annotations

import numpy as np
import torch

from neurocodec.determinism import single_thread
from neurocodec.eval.colour import rgb_to_ycbcr


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between uint8 ``[H, W, C]`` images (all channels pooled)."""
    return _psnr_from_mse(float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)), peak)


def _psnr_from_mse(mse: float, peak: float) -> float:
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def psnr_ycbcr(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Per-plane PSNR (Y', Cb, Cr) in dB of uint8 RGB ``[H, W, 3]`` images, planes on 0–255."""
    d = (rgb_to_ycbcr(a) - rgb_to_ycbcr(b)) * 255.0
    mse = np.mean(d.reshape(-1, 3) ** 2, axis=0)
    return tuple(_psnr_from_mse(float(m), 255.0) for m in mse)


def _yuv_weighted(y: float, cb: float, cr: float) -> float:
    return (6 * y + cb + cr) / 8


def psnr_yuv(a: np.ndarray, b: np.ndarray) -> float:
    """YUV-weighted PSNR ``(6·Y + Cb + Cr) / 8`` in dB."""
    return _yuv_weighted(*psnr_ycbcr(a, b))


def image_metrics(ref: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """Every metric the reports carry, keyed by CompressAI-style names."""
    planes = psnr_ycbcr(ref, rec)
    return {"psnr-rgb": psnr(ref, rec), "psnr-y": planes[0], "psnr-yuv": _yuv_weighted(*planes),
            "ms-ssim-rgb": ms_ssim(ref, rec)}


def msssim_db(v):
    """MS-SSIM as CompressAI plots it, ``-10·log10(1 − MS-SSIM)`` (scalar or array)."""
    return -10 * np.log10(np.clip(1 - np.asarray(v, float), 1e-12, None))


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


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (pytorch-msssim: 11-tap Gaussian window, sigma 1.5, data range 255, valid region)
    between uint8 ``[H, W, 3]`` images, channels averaged."""
    from pytorch_msssim import ssim as _ssim

    def t(x):
        return torch.tensor(np.asarray(x)).permute(2, 0, 1)[None].float()

    with single_thread():
        return float(_ssim(t(a), t(b), data_range=255.0))


def bpp(num_bytes: int, shape) -> float:
    return 8.0 * num_bytes / (shape[0] * shape[1])


def video_metrics(ref: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """:func:`image_metrics` of every frame of uint8 ``[T, H, W, 3]`` clips, averaged."""
    rows = [image_metrics(a, b) for a, b in zip(ref, rec)]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
