"""HNeRV and NeRV, sized by a parameter budget for a clip of any size.

Shapes: a clip of ``T`` frames of ``H x W`` is padded (edge replication) to ``Hp x Wp``, the
smallest multiples of the total stride ``S = prod(strides)`` (strides are chosen so that the
padding stays under 10%), and every output is cropped back to ``H x W`` — never a silent crop
of the input.

* HNeRV (Chen et al., CVPR 2023): a ConvNeXt encoder (one stage per stride, width 64, out
  ``d`` channels) maps a frame ``[B, 3, Hp, Wp]`` to its embedding ``[B, d, Hp/S, Wp/S]``; the
  decoder — a 1x1 conv to ``width`` channels, one :class:`NeRVBlock` per stride (kernel
  ``min(1 + 2i, 5)``, width divided by 1.2 per stage, at least 12), a 3x3 head and
  ``tanh(x)/2 + 0.5`` — maps it back to ``[B, 3, Hp, Wp]``. Decoder and embeddings are stored;
  the encoder is not.
* NeRV (Chen et al., NeurIPS 2021): the frame time's positional encoding (base 1.25, 80 levels)
  through an MLP to a ``[B, width, Hp/S, Wp/S]`` grid, then the same blocks (3x3 kernels).

``width`` (the first decoder width) is solved from the budget: the largest width whose stored
parameters (decoder, plus HNeRV's embeddings) fit in ``params``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from neurocodec.errors import InputError
from neurocodec.transforms.nerv import ConvNeXtStage, NeRVBlock, frame_position_encoding

KINDS = ("hnerv", "nerv")
MAX_PAD = 1.10  # padded area / frame area
# Frames this large (padded; ~960x540 and up) are fitted with checkpointed blocks (fit.py) and
# run their last stage in row bands of BAND_PIXELS output pixels, in training and decoding.
LARGE_PIXELS = 1 << 19
BAND_PIXELS = 1 << 18
EMBED_VALUES = 128  # HNeRV's 16 x 2 x 4 per frame: d is chosen to stay near it


def pick_strides(h: int, w: int) -> tuple[int, ...]:
    """Up-sampling strides (first = lowest resolution) for an ``h x w`` frame: the fewest
    embedding cells with at most 10% padding, then 5 stages if possible, then least padding."""
    best = None
    for n in range(3, 7):
        for s in itertools.combinations_with_replacement((5, 4, 3, 2), n):
            total = math.prod(s)
            if total > max(h, w) * 2:
                continue
            hp, wp = -(-h // total) * total, -(-w // total) * total
            pad = hp * wp / (h * w)
            if pad > MAX_PAD:
                continue
            key = ((hp // total) * (wp // total), abs(n - 5), pad)
            if best is None or key < best[0]:
                best = (key, s)
    if best is None:
        raise InputError(f"frames of {w}x{h} are too small for an INR codec (at least 8x8)")
    return best[1]


@dataclass
class INRConfig:
    """An INR's architecture for one clip. ``width`` 0: solved from ``params`` by
    :func:`build`."""

    kind: str
    frames: int
    height: int
    width_px: int
    params: int
    strides: tuple[int, ...] = ()
    width: int = 0
    embed_dim: int = 0  # 0: chosen by build() to keep ~128 embedding values per frame
    enc_width: int = 64
    reduce: float = 1.2
    min_width: int = 12
    kernels: tuple[int, int] = (1, 5)  # (first, max): kernel at stage i = min(first + 2i, max)
    mlp_hidden: int = 128  # NeRV
    pe_levels: int = 80  # NeRV

    def __post_init__(self) -> None:
        self.strides = tuple(int(s) for s in self.strides)
        self.kernels = tuple(int(k) for k in self.kernels)
        if self.kind not in KINDS:
            raise InputError(f"unknown INR kind {self.kind!r} (known: {', '.join(KINDS)})")

    @property
    def stride(self) -> int:
        return math.prod(self.strides)

    @property
    def padded(self) -> tuple[int, int]:
        s = self.stride
        return -(-self.height // s) * s, -(-self.width_px // s) * s

    @property
    def grid(self) -> tuple[int, int]:
        hp, wp = self.padded
        return hp // self.stride, wp // self.stride

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strides"], d["kernels"] = list(self.strides), list(self.kernels)
        return d


class VideoINR(nn.Module):
    """The decoder both kinds share (``stem`` differs) plus HNeRV's encoder."""

    def __init__(self, cfg: INRConfig, encoder: bool = True):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.width]
        for _ in cfg.strides:
            widths.append(max(round(widths[-1] / cfg.reduce), cfg.min_width))
        gh, gw = cfg.grid
        if cfg.kind == "hnerv" and encoder:
            enc, cin = [], 3
            for i, s in enumerate(cfg.strides):  # the largest stride first, as HNeRV
                last = i == len(cfg.strides) - 1
                enc.append(ConvNeXtStage(cin, cfg.enc_width, s))
                cin = cfg.enc_width
                if last:
                    enc.append(nn.Conv2d(cin, cfg.embed_dim, 1))
            self.encoder = nn.Sequential(*enc)
        if cfg.kind == "hnerv":
            self.stem = nn.Conv2d(cfg.embed_dim, cfg.width, 1)
        else:
            self.stem = nn.Sequential(nn.Linear(2 * cfg.pe_levels, cfg.mlp_hidden), nn.GELU(),
                                      nn.Linear(cfg.mlp_hidden, cfg.width * gh * gw), nn.GELU())
        k0, kmax = cfg.kernels
        self.blocks = nn.ModuleList(
            NeRVBlock(widths[i], widths[i + 1], s, min(k0 + 2 * i, kmax))
            for i, s in enumerate(cfg.strides))
        self.head = nn.Conv2d(widths[-1], 3, 3, padding=1)
        # Large frames: a training pass keeps only each block's input and recomputes the rest
        # in the backward pass (same values, about a third more time).
        self.checkpointed = self.large

    # --- shapes ---------------------------------------------------------------------------
    def pad(self, frames: Tensor) -> Tensor:
        """``[B, 3, H, W] -> [B, 3, Hp, Wp]`` by edge replication."""
        hp, wp = self.cfg.padded
        return F.pad(frames, (0, wp - frames.shape[-1], 0, hp - frames.shape[-2]),
                     mode="replicate")

    @property
    def large(self) -> bool:
        """Frames of ``LARGE_PIXELS`` padded pixels or more: checkpointed in training, last
        stage in row bands."""
        return math.prod(self.cfg.padded) >= LARGE_PIXELS

    def crop(self, x: Tensor) -> Tensor:
        return x[..., : self.cfg.height, : self.cfg.width_px]

    # --- the two halves -------------------------------------------------------------------
    def embed(self, frames: Tensor) -> Tensor:
        """HNeRV: frames ``[B, 3, H, W]`` in [0, 1] -> embeddings ``[B, d, gh, gw]``."""
        if self._checkpointing():
            return checkpoint(self.encoder, self.pad(frames), use_reentrant=False)
        return self.encoder(self.pad(frames))

    def decode(self, code: Tensor) -> Tensor:
        """HNeRV: embeddings ``[B, d, gh, gw]``; NeRV: normalised times ``[B]``. Returns frames
        ``[B, 3, H, W]`` in [0, 1]."""
        if self.cfg.kind == "nerv":
            gh, gw = self.cfg.grid
            x = self.stem(frame_position_encoding(code, levels=self.cfg.pe_levels))
            x = x.view(-1, self.cfg.width, gh, gw)
        else:
            x = self.stem(code)
        ck = self._checkpointing()
        for b in self.blocks[:-1]:
            x = checkpoint(b, x, use_reentrant=False) if ck else b(x)
        if not (ck or self.large):
            return self.crop(self._last(x))
        # The last block and the head hold the pass's largest (full-resolution) activations:
        # run in row bands (checkpointed in training, so the backward pass recomputes one band
        # at a time). A function of the frame size only: encoder and decoder band alike.
        rows = max(1, BAND_PIXELS // (x.shape[-1] * self.cfg.strides[-1] ** 2))
        bands = []
        for r0 in range(0, x.shape[-2], rows):
            r1 = min(r0 + rows, x.shape[-2])
            bands.append(checkpoint(self._last_band, x, r0, r1, use_reentrant=False) if ck
                         else self._last_band(x, r0, r1))
        return self.crop(torch.cat(bands, dim=-2))

    def _last(self, x: Tensor) -> Tensor:
        return torch.tanh(self.head(self.blocks[-1](x))) * 0.5 + 0.5

    def _last_band(self, x: Tensor, r0: int, r1: int) -> Tensor:
        """:meth:`_last` for the output rows of input rows ``r0..r1-1`` of ``x [B, C, h, w]``:
        ``[B, 3, s*(r1-r0), s*w]``, the same values as those rows of the whole (up to float
        rounding). The input is cut with the halo the block's conv and the head need, zero
        rows standing for the convs' zero padding beyond the frame."""
        block, s, h = self.blocks[-1], self.cfg.strides[-1], x.shape[-2]
        p = block.conv.padding[0]
        halo = p + 1  # the conv's reach plus one conv row for the head's 3x3
        lo, hi = r0 - halo, r1 + halo
        xs = x[..., max(lo, 0): min(hi, h), :]
        xs = F.pad(xs, (0, 0, max(0, -lo), max(0, hi - h)))
        y = F.conv2d(xs, block.conv.weight, block.conv.bias, padding=(0, p))  # rows r0-1..r1
        y = block.act(block.shuffle(y))  # rows s*(r0-1) .. s*(r1+1)-1
        keep = torch.arange(s * (r0 - 1), s * (r1 + 1), device=x.device)
        y = y * ((keep >= 0) & (keep < s * h)).to(y.dtype).view(-1, 1)  # the head's zero padding
        y = F.conv2d(y, self.head.weight, self.head.bias, padding=(0, 1))
        return torch.tanh(y[..., s - 1: s - 1 + s * (r1 - r0), :]) * 0.5 + 0.5

    def _checkpointing(self) -> bool:
        return self.checkpointed and self.training and torch.is_grad_enabled()

    def forward(self, frames: Tensor, t: Tensor, code_bits: int = 0) -> Tensor:
        """Training pass: ``frames [B, 3, H, W]`` and their times ``t [B]`` -> reconstruction;
        ``code_bits > 0``: HNeRV's embeddings quantized to those bits (straight-through)."""
        if self.cfg.kind == "nerv":
            return self.decode(t)
        code = self.embed(frames)
        if code_bits:
            from neurocodec.codecs.video.quant import fake_quant_embed

            code = fake_quant_embed(code, code_bits)
        return self.decode(code)

    def decoder_parameters(self) -> dict[str, Tensor]:
        """The stored tensors (everything but the encoder), by name."""
        return {n: p for n, p in self.named_parameters() if not n.startswith("encoder.")}

    def stored_count(self) -> int:
        """Stored parameters: decoder, plus HNeRV's embeddings (``frames x d x gh x gw``)."""
        n = sum(p.numel() for p in self.decoder_parameters().values())
        if self.cfg.kind == "hnerv":
            gh, gw = self.cfg.grid
            n += self.cfg.frames * self.cfg.embed_dim * gh * gw
        return n


def build(cfg: INRConfig) -> VideoINR:
    """The model for ``cfg``; strides, embedding width and ``width`` filled in when 0/empty."""
    if not cfg.strides:
        cfg.strides = pick_strides(cfg.height, cfg.width_px)
    gh, gw = cfg.grid
    if cfg.embed_dim <= 0:
        cfg.embed_dim = int(min(16, max(2, round(EMBED_VALUES / (gh * gw)))))
    if cfg.kind == "nerv":
        cfg.kernels = (3, 3)
    if cfg.width <= 0:
        cfg.width = _solve_width(cfg)
    return VideoINR(cfg)


def _solve_width(cfg: INRConfig) -> int:
    def count(w: int) -> int:
        c = INRConfig(**{**cfg.to_dict(), "width": w})
        with torch.device("meta"):
            return VideoINR(c).stored_count()

    while count(cfg.min_width) > cfg.params and cfg.min_width > 4:
        cfg.min_width -= 2  # small budgets: narrower late stages rather than no model
        if cfg.kind == "nerv" and cfg.mlp_hidden > 16:
            cfg.mlp_hidden //= 2
    if count(cfg.min_width) > cfg.params:
        raise InputError(f"--params {cfg.params:,} is too small for {cfg.frames} frames of "
                         f"{cfg.width_px}x{cfg.height} (at least {count(cfg.min_width):,})")
    lo, hi = cfg.min_width, cfg.min_width
    while count(hi) <= cfg.params:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= cfg.params else (lo, mid)
    return lo
