"""Large images in bounded memory: entropy tiles and banded transforms.

The whole-image path holds several float64 ``[M, H/8, W/8]`` activations of the
hyper-synthesis and context networks at once: ~220 (hyperprior) to ~450 (mlic) bytes per
pixel, 2.7 GB and 5.4 GB to decode a 4000x3000 photo. Here:

* An image larger than ``tile`` pixels on a side (:data:`ENTROPY_TILE`) is coded as a grid of
  entropy tiles, row-major: each ``tile x tile`` block of ``y`` gets its own ``z`` and its own
  streams, and the hyper-synthesis and context networks run on one tile at a time. The header
  says ``meta.tile``; the decoder repeats the same grid with the same code, so encoder and
  decoder agree bit for bit as they do on one tile. Tiles meet only in the entropy model
  (each tile's prior sees zeros beyond its edges, at a small rate cost near them): the
  synthesis runs on the assembled ``y_hat`` of the whole image, so the pixels have no seams.
* The analysis runs in horizontal bands of pixel rows with ``2 * PAD`` rows of context on
  each side. It is the encoder's alone (any ``y`` is a valid encoding); for the DCT-start
  analysis, whose receptive field is 16 pixels, the bands equal the whole-image analysis up
  to float rounding.
* The exact synthesis runs in bands of latent rows (bit-exact, see
  :meth:`~neurocodec.transforms.exact.ExactSynthesis.bands`), each written straight into the
  uint8 output.

What stays whole-image: ``y`` (float32, 12 bytes per pixel at 1/8) and the uint8 output;
about 20 bytes per pixel in all, beyond the loaded model (docs/results/memory.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocodec.codecs.image.base import VariableRateImageModel
from neurocodec.codecs.image.io import to_tensor, to_uint8
from neurocodec.entropy import dispatch
from neurocodec.transforms.exact import ExactSynthesis

# Pixels on a side of an entropy tile (a multiple of every model's PAD). 1024: the context
# networks of mlic-vr peak near 0.4 GB on a tile, and the rate cost of the tile edges stays
# small (the hyperprior's context reaches ~32 pixels past an edge). Smaller images are one tile.
ENTROPY_TILE = 1024
MIN_TILE = 256  # smallest tile a header may declare (bounds the section count per pixel)
# rANS lanes per stream of a tile. Each lane costs 8 bytes (its word count and final state);
# at 32 lanes, 12 tiles x 17 streams of mlic-vr cost +48 kB (+6%) on a 4000x3000 photo, while
# a tiled image has many streams to spread over threads anyway.
TILE_LANES = 4
# Tiles decoded side by side (``dispatch.decode_lockstep``): each round decodes their streams in
# one batch over the cores (or one GPU launch). Each holds its entropy model's state between
# rounds (mlic-vr: ~0.19 GB a 1024-pixel tile; 4 tiles took its 4000x3000 decode from 1.43 to
# 2.0 GB), so two: both cores of a 2-core machine.
DECODE_GROUP = 2
ANALYSIS_BAND_PIXELS = 1 << 22  # pixels per analysis band (float32 activations of ~100 MB)
SYNTHESIS_BAND_ELEMS = 1 << 23  # y elements per synthesis band (float64 ~64 MB)

Box = tuple[int, int, int, int]  # r0, r1, c0, c1


def tile_boxes(h: int, w: int, t: int) -> list[Box]:
    """Row-major ``t x t`` blocks of an ``h x w`` grid (the last row and column smaller)."""
    return [(r, min(r + t, h), c, min(c + t, w)) for r in range(0, h, t) for c in range(0, w, t)]


def z_tiles(z_shape: tuple[int, int], tile: int | None, pad: int) -> list[Box]:
    """The entropy tiles in ``z`` units (``pad`` pixels each); ``tile=None``: one tile."""
    zh, zw = z_shape
    return tile_boxes(zh, zw, max(zh, zw) if tile is None else tile // pad)


def tile_for(h: int, w: int) -> int | None:
    """The tile an ``h x w`` image is coded with: None (one tile) up to ENTROPY_TILE a side."""
    return ENTROPY_TILE if max(h, w) > ENTROPY_TILE else None


def padded_rows(img: np.ndarray, ra: int, rb: int, hp: int, wp: int) -> Tensor:
    """Rows ``ra..rb-1`` of uint8 ``img [H, W, 3]`` replicate-padded to ``hp x wp``, as float
    ``[1, 3, rb - ra, wp]`` in [0, 1]: the same values as padding the whole image."""
    H, W = img.shape[:2]
    x = to_tensor(img[ra : min(rb, H)])
    bottom, right = rb - min(rb, H), wp - W
    if bottom or right:
        x = F.pad(x, (0, right, 0, bottom), mode="replicate")
    return x


def analysis_y(model: VariableRateImageModel, img: np.ndarray, q: int,
               band_pixels: int = ANALYSIS_BAND_PIXELS) -> Tensor:
    """uint8 ``img [H, W, 3]`` -> continuous, gained ``y [1, M, Hp/s, Wp/s]`` of the padded
    image, analysed in bands of rows (see the module docstring)."""
    H, W = img.shape[:2]
    P, s = model.PAD, model.y_stride
    hp, wp = -(-H // P) * P, -(-W // P) * P
    rows, halo = max(P, band_pixels // wp // P * P), 2 * P
    dev = next(model.parameters()).device
    y = None
    for p0 in range(0, hp, rows):
        p1 = min(p0 + rows, hp)
        ra, rb = max(p0 - halo, 0), min(p1 + halo, hp)
        yb = model._analysis_y(padded_rows(img, ra, rb, hp, wp).to(dev), q)
        if y is None:
            y = yb.new_empty(1, yb.shape[1], hp // s, wp // s)
        y[..., p0 // s : p1 // s, :] = yb[..., (p0 - ra) // s : (p1 - ra) // s, :]
    return y


@torch.no_grad()
def compress_tiled(model: VariableRateImageModel, img: np.ndarray, q: int, tile: int
                   ) -> tuple[list[bytes], tuple[int, int]]:
    """uint8 ``img [H, W, 3]`` -> the streams of every entropy tile in order (each tile's
    ``model.num_streams``) and the ``z`` shape of the whole padded image."""
    y = analysis_y(model, img, q)
    z_shape = (y.shape[-2] // 4, y.shape[-1] // 4)
    streams: list[bytes] = []
    for r0, r1, c0, c1 in z_tiles(z_shape, tile, model.PAD):
        yt = y[..., 4 * r0 : 4 * r1, 4 * c0 : 4 * c1].contiguous()
        streams += model.compress_latents(yt, model._hyper_analysis(yt, q), q, TILE_LANES)[0]
    return streams, z_shape


@torch.no_grad()
def decompress_tiles(model: VariableRateImageModel, sections: list[bytes],
                     z_shape: tuple[int, int], q: int, tile: int | None) -> Tensor:
    """The sections of :func:`compress_tiled` (or of ``model.compress``: ``tile=None``) ->
    float32 ``y_hat [1, M, 4*zh, 4*zw]`` of the whole image."""
    k = model.num_streams
    boxes = z_tiles(z_shape, tile, model.PAD)
    nets = model.entropy_nets()
    y_hat = None
    for g in range(0, len(boxes), DECODE_GROUP):
        group = boxes[g : g + DECODE_GROUP]
        decoders = [model.latent_decoder(sections[(g + j) * k : (g + j + 1) * k],
                                         (r1 - r0, c1 - c0), q, nets)
                    for j, (r0, r1, c0, c1) in enumerate(group)]
        for (r0, r1, c0, c1), yt in zip(group, dispatch.decode_lockstep(decoders)):
            if tile is None:
                return yt
            if y_hat is None:
                y_hat = yt.new_empty(1, yt.shape[1], 4 * z_shape[0], 4 * z_shape[1])
            y_hat[..., 4 * r0 : 4 * r1, 4 * c0 : 4 * c1] = yt
    return y_hat


def synthesize_uint8(model: VariableRateImageModel, y_hat: Tensor, q: int,
                     out_hw: tuple[int, int], band_elems: int = SYNTHESIS_BAND_ELEMS
                     ) -> np.ndarray:
    """``y_hat [1, M, h, w]`` -> uint8 ``[H, W, 3]`` cropped to ``out_hw``: what
    ``to_uint8(model._decode_synthesis(y_hat, q).clamp(0, 1))`` gives, in bands of rows when
    the synthesis is exact (the float64 synthesis of the GDN stacks runs whole)."""
    h, w = out_hw
    syn = model._cached_decoder_synthesis()
    if not (isinstance(syn, ExactSynthesis) and syn.bandable):
        return to_uint8(model._decode_synthesis(y_hat, q).clamp(0, 1)[..., :h, :w])
    out = np.empty((h, w, 3), np.uint8)
    rows = max(1, band_elems // (y_hat.shape[1] * y_hat.shape[-1]))
    for r0, xb in syn.bands(y_hat, q, rows):
        if r0 >= h:
            break  # only padding is left
        xb = xb[..., : h - r0, :w]
        out[r0 : r0 + xb.shape[-2]] = to_uint8(xb.clamp(0, 1))
    return out
