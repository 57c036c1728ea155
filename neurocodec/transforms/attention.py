"""Linear attention (Katharopoulos et al. 2020) over the positions of a feature map.

Softmax attention costs ``O((HW)^2)``; with the feature map ``phi(t) = elu(t) + 1`` the
attention factorises as ``phi(Q) (phi(K)^T V) / (phi(Q) sum_j phi(K_j))`` and costs
``O(HW * d^2 / heads)``, so it runs on whole latents (every position sees every other) on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-6


def _phi(t: Tensor) -> Tensor:
    return F.elu(t) + 1.0


class LinearAttention(nn.Module):
    """Multi-head linear (cross- or self-) attention between two aligned feature maps.

    Queries come from ``q_in [B, q_ch, H, W]``, keys and values from ``kv_in [B, kv_ch, H, W]``
    (default: ``q_in``, i.e. self-attention); ``mask [B|1, 1, H, W]`` (1 = may be attended,
    0 = not) removes key positions, e.g. latents not decoded yet. Output ``[B, out_ch, H, W]``.

    In the entropy model the queries are known to the decoder everywhere (hyperprior features)
    while the keys/values are already-decoded latents, which makes the context *global* yet
    still decodable in one parallel pass.
    """

    def __init__(self, q_ch: int, kv_ch: int | None = None, dim: int = 64, heads: int = 4,
                 out_ch: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        kv_ch = q_ch if kv_ch is None else kv_ch
        self.heads = heads
        self.q = nn.Conv2d(q_ch, dim, 1)
        self.kv = nn.Conv2d(kv_ch, 2 * dim, 1)
        self.out = nn.Conv2d(dim, out_ch or dim, 1)

    def forward(self, q_in: Tensor, kv_in: Tensor | None = None,
                mask: Tensor | None = None) -> Tensor:
        b, _, h, w = q_in.shape
        kv_in = q_in if kv_in is None else kv_in
        q = _phi(self.q(q_in)).reshape(b, self.heads, -1, h * w)  # [B, heads, d, L]
        k, v = self.kv(kv_in).chunk(2, 1)
        k = _phi(k)
        if mask is not None:
            k = k * mask.to(k.dtype)
        k = k.reshape(b, self.heads, -1, h * w)
        v = v.reshape(b, self.heads, -1, h * w)
        kv = torch.einsum("bhdl,bhel->bhde", k, v)  # [B, heads, d, d]: the whole map, summarised
        num = torch.einsum("bhdl,bhde->bhel", q, kv)
        den = torch.einsum("bhdl,bhd->bhl", q, k.sum(-1)).unsqueeze(2) + EPS
        return self.out((num / den).reshape(b, -1, h, w))
