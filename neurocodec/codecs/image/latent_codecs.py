"""Composable latent codecs for the multi-reference entropy model (MLIC, Jiang et al. 2023).

The entropy model of ``y [B, M, h, w]`` is a composition, in the spirit of CompressAI's
``latent_codecs``:

* :class:`ChannelSlices` splits ``y`` into ``S`` channel slices coded one after another; slice
  ``i`` sees the decoded slices ``< i`` through a local :class:`ChannelContext` and a global
  inter-slice :class:`~neurocodec.transforms.attention.LinearAttention`, and is refined by
  :class:`LatentResidualPrediction` once decoded.
* each slice is coded by :class:`CheckerboardContext` in two passes: the anchors (``(r + c)``
  even) from the slice's base features, then the non-anchors from the base features plus a
  local spatial context (a convolution over the decoded anchors) and a global intra-slice
  context (linear attention whose keys/values are the decoded anchors).

What happens to the positions of one (slice, pass) is delegated to a :class:`PassCoder`: the
training quantizer (:class:`STEQuantizer`), the encoder (:class:`RoundingCoder`, also the
exact evaluation pass) or the decoder (:func:`decode_passes`, over :meth:`ChannelSlices.passes`). All of them see exactly the
same inputs, in the same order, so decoding is ``2 * S`` parallel passes and no raster scan.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from neurocodec.codecs.image.base import ste_round
from neurocodec.determinism import single_thread
from neurocodec.entropy import dispatch
from neurocodec.entropy.tables import CdfTables, scale_indexes
from neurocodec.transforms.attention import LinearAttention


def checkerboard(h: int, w: int, device=None) -> Tensor:
    """bool ``[1, 1, h, w]``: True at the anchors, the positions with ``row + col`` even."""
    r = torch.arange(h, device=device)[:, None]
    c = torch.arange(w, device=device)[None, :]
    return ((r + c) % 2 == 0)[None, None]


def slice_sizes(M: int, slices: int) -> list[int]:
    """Split ``M`` channels into ``slices`` near-equal slices (the larger ones first)."""
    if not 1 <= slices <= M:
        raise ValueError(f"cannot split {M} channels into {slices} slices")
    return [M // slices + (1 if i < M % slices else 0) for i in range(slices)]


class PassCoder(Protocol):
    """Quantizes (or decodes) the positions ``mask`` of slice ``i``, pass ``k`` (0 = anchors).

    means, scales: ``[B, c, h, w]``; mask: bool ``[1, 1, h, w]``. Returns ``y_hat [B, c, h, w]``,
    of which only the positions in ``mask`` are used."""

    def __call__(self, i: int, k: int, mask: Tensor, means: Tensor, scales: Tensor) -> Tensor: ...


class ChannelContext(nn.Module):
    """Local channel context from the earlier slices: ``[B, prev, h, w] -> [B, hidden, h, w]``."""

    def __init__(self, prev: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(prev, hidden, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(hidden, hidden, 1))

    def forward(self, prev: Tensor) -> Tensor:
        return self.net(prev)


class CheckerboardContext(nn.Module):
    """Entropy parameters of one slice of ``c`` channels, in two checkerboard passes.

    ``base [B, base_ch, h, w]`` (hyperprior + channel context + inter-slice context) is known
    for every position before the slice is coded. Anchors get their parameters from ``base``
    alone; non-anchors also from the decoded anchors through a ``k x k`` convolution (anchors
    only, so a plain convolution of the anchor-masked slice is the checkerboard context model)
    and a global linear attention over them.
    """

    def __init__(self, c: int, base_ch: int, hidden: int, heads: int = 4, k: int = 5):
        super().__init__()
        self.hidden = hidden
        self.local = nn.Conv2d(c, hidden, k, padding=k // 2)
        self.intra = LinearAttention(base_ch, c, hidden, heads)
        self.params = nn.Sequential(nn.Conv2d(base_ch + 2 * hidden, 2 * hidden, 1), nn.GELU(),
                                    nn.Conv2d(2 * hidden, hidden, 1), nn.GELU(),
                                    nn.Conv2d(hidden, 2 * c, 1))

    def forward(self, base: Tensor, anchors: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """anchors: None for the anchor pass; for the non-anchor pass the slice's decoded
        values, zero off the anchors, ``[B, c, h, w]``. Returns ``means, scales [B, c, h, w]``."""
        b, _, h, w = base.shape
        if anchors is None:
            ctx = base.new_zeros(b, 2 * self.hidden, h, w)
        else:
            mask = checkerboard(h, w, base.device)
            ctx = torch.cat([self.local(anchors), self.intra(base, anchors, mask)], 1)
        means, scales = self.params(torch.cat([base, ctx], 1)).chunk(2, 1)
        return means, scales


class LatentResidualPrediction(nn.Module):
    """Predicts the quantization error of a decoded slice (Minnen & Singh 2020):
    ``[B, in_ch, h, w] -> [B, c, h, w]`` bounded to ``(-0.5, 0.5)``."""

    def __init__(self, in_ch: int, c: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_ch, hidden, 1), nn.GELU(),
                                 nn.Conv2d(hidden, c, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * torch.tanh(self.net(x))


@dataclass
class SlicesOutput:
    """All ``[B, M, h, w]``: ``y_hat`` (refined, for the synthesis), ``y_coded`` (symbol +
    mean, what the likelihood is of), and the Gaussian ``means`` and ``scales``."""

    y_hat: Tensor
    y_coded: Tensor
    means: Tensor
    scales: Tensor


class ChannelSlices(nn.Module):
    """Multi-reference entropy model of ``y [B, M, h, w]`` given ``hyper [B, hyper_ch, h, w]``.

    Slice ``i`` (``c_i`` channels) is coded from ``base_i = [hyper, chan_i, inter_i]`` where
    ``chan_i`` and ``inter_i`` (``hidden`` channels each, zero for slice 0) are the local and
    global (linear attention, queries from ``hyper``) contexts of the slices before it.
    """

    def __init__(self, M: int, slices: int, hyper_ch: int, hidden: int = 64, heads: int = 4):
        super().__init__()
        self.sizes = slice_sizes(M, slices)
        self.hidden = hidden
        starts = np.cumsum([0, *self.sizes]).tolist()
        base_ch = hyper_ch + 2 * hidden
        self.channel_ctx = nn.ModuleList(ChannelContext(starts[i], hidden)
                                         for i in range(1, slices))
        self.inter_ctx = nn.ModuleList(LinearAttention(hyper_ch, starts[i], hidden, heads)
                                       for i in range(1, slices))
        self.steps = nn.ModuleList(CheckerboardContext(c, base_ch, hidden, heads)
                                   for c in self.sizes)
        self.lrp = nn.ModuleList(LatentResidualPrediction(hyper_ch + starts[i + 1], c, hidden)
                                 for i, c in enumerate(self.sizes))

    def forward(self, hyper: Tensor, coder: PassCoder) -> SlicesOutput:
        passes = self.passes(hyper)
        request = next(passes)
        while True:
            try:
                request = passes.send(coder(*request))
            except StopIteration as done:
                return done.value

    def passes(self, hyper: Tensor) -> Generator[tuple, Tensor, SlicesOutput]:
        """:meth:`forward` as a generator: yields each pass's ``(i, k, mask, means, scales)``
        and is sent what a :class:`PassCoder` would return; returns the
        :class:`SlicesOutput`. A decoder can so run several of these side by side and decode
        their passes together (``dispatch.decode_lockstep``)."""
        b, _, h, w = hyper.shape
        anchor = checkerboard(h, w, hyper.device)
        y_hat: list[Tensor] = []
        out: list[tuple[Tensor, Tensor, Tensor]] = []
        for i in range(len(self.sizes)):
            if i == 0:
                ctx = hyper.new_zeros(b, 2 * self.hidden, h, w)
            else:
                prev = torch.cat(y_hat, 1)
                ctx = torch.cat([self.channel_ctx[i - 1](prev),
                                 self.inter_ctx[i - 1](hyper, prev)], 1)
            base = torch.cat([hyper, ctx], 1)
            m0, s0 = self.steps[i](base)
            ya = torch.where(anchor, (yield (i, 0, anchor, m0, s0)), 0.0)
            m1, s1 = self.steps[i](base, ya)
            yn = yield (i, 1, ~anchor, m1, s1)
            coded = torch.where(anchor, ya, yn)
            means, scales = torch.where(anchor, m0, m1), torch.where(anchor, s0, s1)
            refined = coded + self.lrp[i](torch.cat([hyper, *y_hat, coded], 1))
            y_hat.append(refined)
            out.append((coded, means, scales))
        return SlicesOutput(torch.cat(y_hat, 1), *(torch.cat(t, 1) for t in zip(*out)))


class STEQuantizer:
    """Training: ``round(y - mean) + mean`` with a straight-through gradient."""

    def __init__(self, y_slices: list[Tensor]):
        self.y = y_slices

    def __call__(self, i: int, k: int, mask: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        return ste_round(self.y[i] - means) + means


class RoundingCoder:
    """Encoder side (float64, batch 1): rounds ``y - mean`` and records each pass's symbols
    and table indexes, in the order the decoder will ask for them."""

    def __init__(self, y_slices: list[Tensor], table_scales: np.ndarray, scale_bound: float):
        self.y, self.table_scales, self.scale_bound = y_slices, table_scales, scale_bound
        self.passes: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, i: int, k: int, mask: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        sym = torch.round(self.y[i] - means)
        m = mask.expand_as(means)
        idx = scale_indexes(scales[m].clamp_min(self.scale_bound).numpy(), self.table_scales)
        self.passes.append((sym[m].to(torch.int32).numpy(), idx))
        return sym + means

    def streams(self, tables: CdfTables, lanes: int | None = None) -> list[bytes]:
        """One rANS stream per pass, ``2 * S`` in all, coded in one batch (all cores; the
        bytes of coding each pass alone)."""
        return dispatch.encode_batch([s for s, _ in self.passes], [i for _, i in self.passes],
                                     tables, lanes=[lanes or lanes_for(s.size)
                                                    for s, _ in self.passes])


def decode_passes(passes: Generator[tuple, Tensor, SlicesOutput], streams: list[bytes],
                  tables: CdfTables, table_scales: np.ndarray, scale_bound: float
                  ) -> Generator[tuple, np.ndarray, SlicesOutput]:
    """The decoder's side of :meth:`ChannelSlices.passes` (float64, batch 1): for pass
    ``2 * i + k`` it yields ``(stream, table indexes, tables)`` — the indexes from the scales
    the decoder computed — and is sent the decoded symbols; each resume of the networks runs
    on one thread without autograd. Returns the :class:`SlicesOutput`."""

    def resume(value):
        with single_thread(), torch.no_grad():
            return passes.send(value)

    request = resume(None)
    while True:
        i, k, mask, means, scales = request
        m = mask.expand_as(means)
        idx = scale_indexes(scales[m].clamp_min(scale_bound).numpy(), table_scales)
        sym = yield (streams[2 * i + k], idx, tables)
        y = torch.zeros_like(means)
        y[m] = torch.from_numpy(np.asarray(sym)).to(means.dtype)
        try:
            request = resume(y + means)
        except StopIteration as done:
            return done.value


def lanes_for(n: int) -> int:
    """Interleaved lanes for a stream of ``n`` symbols: up to 32, but each lane's flush
    (32 bits) and count (32 bits) must stay small beside the ~0.5–2 bits per symbol it holds."""
    return int(min(32, max(1, n // 4096)))

