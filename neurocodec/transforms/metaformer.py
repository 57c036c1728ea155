"""MetaFormer-style blocks (Yu et al. 2022): ``x + mixer(norm(x))`` then ``x + mlp(norm(x))``.

The token mixer is what changes: a depthwise convolution (local, ConvFormer-like) or
:class:`~neurocodec.transforms.attention.LinearAttention` (global). All blocks map
``[B, C, H, W] -> [B, C, H, W]`` at any H, W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocodec.transforms.attention import LinearAttention


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each position (independent of the image size)."""

    def __init__(self, ch: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ch))
        self.bias = nn.Parameter(torch.zeros(ch))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvMixer(nn.Module):
    """Local token mixing: pointwise -> depthwise ``k x k`` -> pointwise."""

    def __init__(self, ch: int, k: int = 7):
        super().__init__()
        self.pw1 = nn.Conv2d(ch, ch, 1)
        self.dw = nn.Conv2d(ch, ch, k, padding=k // 2, groups=ch)
        self.pw2 = nn.Conv2d(ch, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw2(self.dw(F.gelu(self.pw1(x))))


class AttentionMixer(LinearAttention):
    """Global token mixing: linear self-attention with ``heads`` heads."""

    def __init__(self, ch: int, heads: int = 4):
        super().__init__(ch, ch, ch, heads)


class MetaFormerBlock(nn.Module):
    """``x + s1 * mixer(norm(x))``, ``x + s2 * mlp(norm(x))`` with per-channel layer scales
    ``s1, s2`` (start small, so a deep stack starts close to its convolutional skeleton)."""

    def __init__(self, ch: int, mixer: nn.Module, mlp_ratio: int = 2, layer_scale: float = 0.1):
        super().__init__()
        self.norm1, self.mixer = LayerNorm2d(ch), mixer
        self.norm2 = LayerNorm2d(ch)
        self.mlp = nn.Sequential(nn.Conv2d(ch, mlp_ratio * ch, 1), nn.GELU(),
                                 nn.Conv2d(mlp_ratio * ch, ch, 1))
        self.s1 = nn.Parameter(torch.full((ch, 1, 1), layer_scale))
        self.s2 = nn.Parameter(torch.full((ch, 1, 1), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.s1 * self.mixer(self.norm1(x))
        return x + self.s2 * self.mlp(self.norm2(x))


def conv_block(ch: int, k: int = 7) -> MetaFormerBlock:
    """ConvFormer-style block (local mixing)."""
    return MetaFormerBlock(ch, ConvMixer(ch, k))


def attention_block(ch: int, heads: int = 4) -> MetaFormerBlock:
    """Block whose mixer is global linear self-attention."""
    return MetaFormerBlock(ch, AttentionMixer(ch, heads))
