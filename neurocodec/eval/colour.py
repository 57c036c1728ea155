"""Explicit RGB ⇄ Y'CbCr conversions shared by the metrics and the ffmpeg/VTM baselines.

One convention everywhere, the same in both directions:

* matrix **BT.709** (Kr = 0.2126, Kb = 0.0722), as CompressAI's VTM bench uses;
* **full range**: Y' in [0, 1], Cb/Cr in [-0.5, 0.5] stored with a +0.5 offset, quantised to
  ``bits`` as ``round(v · (2^bits − 1))``; the bitstreams are tagged ``pc``/``bt709``;
* **4:2:0** chroma is **centre-sited** (between the four luma samples, as JPEG/MPEG-1):
  down-sampled by a 2×2 box mean, up-sampled bilinearly at half-sample offsets — the exact
  inverse siting of the down-sampler. Odd sizes are edge-padded to even before down-sampling
  and cropped after up-sampling.

Images are uint8 ``[H, W, 3]`` RGB; planes are float64 ``[H, W]`` (or ``[h, w]`` for chroma).
"""

from __future__ import annotations

import numpy as np

KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB


def rgb_to_ycbcr(img: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` RGB → float64 ``[..., 3]`` Y'CbCr, Y' in [0, 1], Cb/Cr in [-0.5, 0.5]."""
    x = np.asarray(img, np.float64) / 255.0
    y = KR * x[..., 0] + KG * x[..., 1] + KB * x[..., 2]
    cb = (x[..., 2] - y) / (2 * (1 - KB))
    cr = (x[..., 0] - y) / (2 * (1 - KR))
    return np.stack([y, cb, cr], -1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """float64 ``[..., 3]`` Y'CbCr → uint8 ``[..., 3]`` RGB (rounded, clipped)."""
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    r = y + 2 * (1 - KR) * cr
    b = y + 2 * (1 - KB) * cb
    g = (y - KR * r - KB * b) / KG
    return np.clip(np.round(np.stack([r, g, b], -1) * 255.0), 0, 255).astype(np.uint8)


def downsample_420(c: np.ndarray) -> np.ndarray:
    """``[H, W]`` chroma → ``[ceil(H/2), ceil(W/2)]`` by a centre-sited 2×2 box mean."""
    h, w = c.shape
    c = np.pad(c, ((0, h % 2), (0, w % 2)), mode="edge")
    return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean((1, 3))


def upsample_420(c: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``[h, w]`` centre-sited chroma → ``[H, W]`` = ``shape`` by bilinear interpolation."""
    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) / 2 - 0.5, 0, n_in - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, pos - i0

    r0, r1, fr = axis(shape[0], c.shape[0])
    c0, c1, fc = axis(shape[1], c.shape[1])
    rows = c[r0] * (1 - fr)[:, None] + c[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def quantise(v: np.ndarray, bits: int, offset: float = 0.0) -> np.ndarray:
    """Full-range quantisation of a [0, 1] (or [-0.5, 0.5] with ``offset=0.5``) plane."""
    peak = (1 << bits) - 1
    return np.clip(np.round((v + offset) * peak), 0, peak).astype(np.uint16)


def dequantise(q: np.ndarray, bits: int, offset: float = 0.0) -> np.ndarray:
    return q.astype(np.float64) / ((1 << bits) - 1) - offset


def rgb_to_planes(img: np.ndarray, bits: int, chroma: str) -> list[np.ndarray]:
    """uint8 RGB ``[H, W, 3]`` → quantised Y', Cb, Cr planes (uint16) for ``chroma`` "420"/"444"."""
    ycc = rgb_to_ycbcr(img)
    cb, cr = ycc[..., 1], ycc[..., 2]
    if chroma == "420":
        cb, cr = downsample_420(cb), downsample_420(cr)
    return [quantise(ycc[..., 0], bits), quantise(cb, bits, 0.5), quantise(cr, bits, 0.5)]


def planes_to_rgb(planes: list[np.ndarray], bits: int, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`rgb_to_planes`; ``shape`` is the luma ``(H, W)``."""
    y = dequantise(planes[0], bits)
    cb, cr = dequantise(planes[1], bits, 0.5), dequantise(planes[2], bits, 0.5)
    if cb.shape != tuple(shape):
        cb, cr = upsample_420(cb, shape), upsample_420(cr, shape)
    return ycbcr_to_rgb(np.stack([y, cb, cr], -1))
