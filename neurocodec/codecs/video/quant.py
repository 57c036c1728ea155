"""Quantization of an INR's stored tensors, for quantization-aware fitting and for the file.

* Weights (any tensor with ``>= 2`` dims): symmetric, one step per output row —
  ``step_r = max|w_r| / (2^(b-1) - 1)`` rounded to fp16, ``q = round(w / step)``; 1-D tensors
  (biases, norms) one step per tensor. Zero stays exactly zero (pruned weights cost what the
  entropy coder makes of a zero).
* HNeRV embeddings ``[T, d, gh, gw]``: one (centre, step) per channel over the whole clip,
  ``centre = (lo + hi) / 2``, ``step = (hi - lo) / (2^b - 1)``, both fp16;
  ``q = round((e - centre) / step)`` in ``[-2^(b-1), 2^(b-1)]``.

Steps and centres are rounded to fp16 *before* use, so the decoder's ``q * step (+ centre)``
is exactly the encoder's dequantized value.
"""

from __future__ import annotations

import torch
from torch import Tensor

WEIGHT_BITS = 6  # HiNeRV's choice: ~25% fewer bits than 8 for a small loss after QAT
EMBED_BITS = 6
_TINY = 2.0 ** -24  # the smallest fp16 subnormal: a step never rounds to zero


def _fp16(x: Tensor) -> Tensor:
    return x.half().float().clamp_min(_TINY)


def weight_steps(w: Tensor, bits: int = WEIGHT_BITS) -> Tensor:
    """Steps of ``w``: ``[rows]`` for a ``>= 2``-d tensor, ``[1]`` for a 1-d one (fp16 values)."""
    rows = w.detach().reshape(w.shape[0], -1) if w.dim() >= 2 else w.detach().reshape(1, -1)
    return _fp16(rows.abs().amax(dim=1) / (2 ** (bits - 1) - 1))


def _expand(step: Tensor, w: Tensor) -> Tensor:
    return step.view(-1, *([1] * (w.dim() - 1))) if w.dim() >= 2 else step


def quantize_weight(w: Tensor, step: Tensor) -> Tensor:
    """Integer symbols of ``w`` (int64, shape of ``w``)."""
    return torch.round(w.detach() / _expand(step, w)).long()


def dequantize_weight(q: Tensor, step: Tensor) -> Tensor:
    return q.float() * _expand(step, q)


def fake_quant_weight(w: Tensor, bits: int = WEIGHT_BITS) -> Tensor:
    """``w`` quantized in the forward pass, identity in the backward pass (straight-through)."""
    step = _expand(weight_steps(w, bits), w)
    return w + (torch.round(w / step) * step - w).detach()


def embed_params(e: Tensor, bits: int = EMBED_BITS) -> tuple[Tensor, Tensor]:
    """``(centre [d], step [d])`` of embeddings ``[T, d, gh, gw]`` (fp16 values)."""
    x = e.detach().transpose(0, 1).reshape(e.shape[1], -1)
    lo, hi = x.amin(dim=1), x.amax(dim=1)
    return (lo + hi).mul(0.5).half().float(), _fp16((hi - lo) / (2 ** bits - 1))


def quantize_embed(e: Tensor, centre: Tensor, step: Tensor) -> Tensor:
    return torch.round((e.detach() - centre.view(1, -1, 1, 1)) / step.view(1, -1, 1, 1)).long()


def dequantize_embed(q: Tensor, centre: Tensor, step: Tensor) -> Tensor:
    return q.float() * step.view(1, -1, 1, 1) + centre.view(1, -1, 1, 1)


def fake_quant_embed(e: Tensor, bits: int = EMBED_BITS) -> Tensor:
    """Straight-through quantization of a batch's embeddings with the batch's own ranges."""
    c, s = embed_params(e, bits)
    c, s = c.view(1, -1, 1, 1), s.view(1, -1, 1, 1)
    return e + (torch.round((e - c) / s) * s + c - e).detach()
