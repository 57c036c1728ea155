"""Learned transforms that start as a colour KLT + 8x8 block DCT (an orthonormal pair).

At initialisation ``synthesis(analysis(x)) == x`` exactly and the latent is JPEG's
coefficient layout (4:4:4); the residual branches (zero-initialised) and the post-filter then
learn non-linear refinements and deblocking. This starting point lets a model trained for a few
CPU-hours beat block-transform codecs, where a GDN stack from random weights needs far longer.

Shapes: ``x [B,3,H,W] -> y [B,192,H/8,W/8]`` (channel ``c*64 + 8u + v``: colour component
``c``, vertical frequency ``u``, horizontal ``v``) ``-> x_hat [B,3,H,W]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

BLOCK = 8
COEFFS = 3 * BLOCK * BLOCK

# Orthonormal colour transform: luma-like average and two opponent axes.
KLT = torch.tensor([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=torch.float64)
KLT = KLT / KLT.norm(dim=1, keepdim=True)

# JPEG Annex K tables (luminance, chrominance), used only to initialise quantisation gains.
JPEG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
             57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24,
             35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98,
             112, 100, 103, 99]
JPEG_CHROMA = [17, 18, 24, 47, *[99] * 4, 18, 21, 26, 66, *[99] * 4, 24, 26, 56, *[99] * 5, 47, 66,
               *[99] * 6, *[99] * 32]


def dct_basis() -> Tensor:
    """float64 ``[64, 8, 8]`` orthonormal 2-D DCT-II basis, index ``8u + v``."""
    n = torch.arange(BLOCK, dtype=torch.float64)
    c = torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * BLOCK))
    c = c * torch.where(n == 0, math.sqrt(1 / BLOCK), math.sqrt(2 / BLOCK))[:, None]
    return torch.einsum("ui,vj->uvij", c, c).reshape(BLOCK * BLOCK, BLOCK, BLOCK)


def klt_dct_weight() -> Tensor:
    """``[192, 3, 8, 8]``: colour KLT followed by the block DCT, as one stride-8 conv."""
    b = dct_basis()
    w = torch.einsum("ck,fij->cfkij", KLT, b).reshape(COEFFS, 3, BLOCK, BLOCK)
    return w.float()


def jpeg_like_steps() -> Tensor:
    """``[192]`` quantisation steps in [0, 1] pixel units, JPEG tables flattened towards 16
    (the tables are psychovisual; flatter suits PSNR)."""
    luma = torch.tensor(JPEG_LUMA, dtype=torch.float32)
    chroma = torch.tensor(JPEG_CHROMA, dtype=torch.float32)
    t = torch.cat([luma, chroma, chroma])
    return torch.sqrt(t * 16.0) / 255.0


class _Residual(nn.Module):
    """``x + conv1x1(lrelu(conv3x3(x)))``, starting as the identity."""

    def __init__(self, ch: int, hidden: int):
        super().__init__()
        self.a = nn.Conv2d(ch, hidden, 3, padding=1)
        self.b = nn.Conv2d(hidden, ch, 1)
        nn.init.zeros_(self.b.weight)
        nn.init.zeros_(self.b.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.b(nn.functional.leaky_relu(self.a(x), 0.1))


class DctAnalysis(nn.Module):
    def __init__(self, hidden: int = 192):
        super().__init__()
        self.dct = nn.Conv2d(3, COEFFS, BLOCK, stride=BLOCK, bias=False)
        with torch.no_grad():
            self.dct.weight.copy_(klt_dct_weight())
        self.refine = _Residual(COEFFS, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.refine(self.dct(x - 0.5))


class DctSynthesis(nn.Module):
    def __init__(self, hidden: int = 192, post: int = 16):
        super().__init__()
        self.refine = _Residual(COEFFS, hidden)
        self.idct = nn.ConvTranspose2d(COEFFS, 3, BLOCK, stride=BLOCK, bias=False)
        with torch.no_grad():
            self.idct.weight.copy_(klt_dct_weight())
        self.post = nn.Sequential(nn.Conv2d(3, post, 3, padding=1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(post, post, 3, padding=1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(post, 3, 3, padding=1))
        nn.init.zeros_(self.post[-1].weight)
        nn.init.zeros_(self.post[-1].bias)

    def forward(self, y: Tensor) -> Tensor:
        x0 = self.idct(self.refine(y)) + 0.5
        return x0 + self.post(x0)
