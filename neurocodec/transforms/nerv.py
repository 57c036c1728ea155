"""NeRV/HNeRV blocks: the up-sampling block of both decoders and the ConvNeXt stage of HNeRV's
frame encoder (Chen et al., NeRV 2021; Chen et al., HNeRV 2023)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neurocodec.transforms.metaformer import LayerNorm2d


class NeRVBlock(nn.Module):
    """``[B, cin, h, w] -> [B, cout, s*h, s*w]``: a ``k x k`` conv to ``cout * s^2`` channels,
    PixelShuffle(s), GELU (no normalisation, as in HNeRV)."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * stride * stride, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(stride)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.shuffle(self.conv(x)))


class ConvNeXtBlock(nn.Module):
    """``[B, C, h, w] -> [B, C, h, w]``: depthwise 7x7, LayerNorm, 4x MLP (1x1 convs), residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 4 * dim, 1), nn.GELU(), nn.Conv2d(4 * dim, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mlp(self.norm(self.dw(x)))


class ConvNeXtStage(nn.Module):
    """``[B, cin, h, w] -> [B, cout, h/s, w/s]``: a stride-``s`` conv with kernel ``s``
    (non-overlapping patches), LayerNorm, one ConvNeXt block."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.down = nn.Conv2d(cin, cout, stride, stride=stride)
        self.norm = LayerNorm2d(cout)
        self.block = ConvNeXtBlock(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.norm(self.down(x)))


def frame_position_encoding(t: Tensor, base: float = 1.25, levels: int = 80) -> Tensor:
    """NeRV's encoding of normalised frame times ``t [B]`` in [0, 1]:
    ``[B, 2*levels]`` = ``sin(base^i * pi * t), cos(base^i * pi * t)``, i < levels."""
    freqs = base ** torch.arange(levels, dtype=torch.float64, device=t.device) * math.pi
    ang = (t.double()[:, None] * freqs[None]).float()
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
