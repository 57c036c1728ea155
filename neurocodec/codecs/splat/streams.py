"""Context-adaptive integer streams for the splat coder, on the shared rANS backend.

A *stream* codes several integer channels (one value per Gaussian each) in one rANS stream of
:mod:`neurocodec.entropy.rans` with the deterministic generalized-Gaussian table family of
:mod:`neurocodec.entropy.arrays`. Every channel comes with a *context* per value — a small
integer the decoder already knows when it reaches this stream (the Gaussian's size class, the
quantization step of its rotation, how far it lies from its predecessor, ...) — and the encoder
picks, for each (channel, context) pair, the family table that codes those values in the fewest
bits (their exact cost under the quantized table). So the probability model adapts to the
context at one byte per (channel, context).

Each channel is coded either as is, minus a centre (``RAW``), or as differences from the
previous Gaussian's value along the file's (Morton) order (``DELTA``), whichever is cheaper.

Layout: for each channel ``u8 mode | i32 centre (LE) | u8 table[n_contexts]``, then the rANS
stream of every channel's symbols, channel after channel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from neurocodec.entropy import arrays, rans
from neurocodec.errors import BitstreamError

RAW, DELTA = 0, 1
_CH = struct.Struct("<Bi")
INT32 = (-(1 << 31), (1 << 31) - 1)
# Symbols are clipped here: beyond every table they are escapes anyway, and a decoder's
# running sums stay far inside int64.
MAX_ABS = 1 << 30


@dataclass
class Channel:
    values: np.ndarray  # int64 [N]
    ctx: np.ndarray  # int [N] in 0..n_ctx-1
    n_ctx: int
    delta_ok: bool = True  # False: only RAW (e.g. an index)


def _costs_by_ctx(sym: np.ndarray, ctx: np.ndarray, n_ctx: int) -> tuple[float, np.ndarray]:
    tables = np.zeros(n_ctx, np.uint8)
    total = 0.0
    for c in range(n_ctx):
        sel = sym[ctx == c]
        if sel.size:
            cost = arrays.group_costs(sel)
            tables[c] = int(np.argmin(cost))
            total += float(cost[tables[c]])
    return total + 8 * n_ctx, tables


def _symbols(values: np.ndarray, mode: int, centre: int) -> np.ndarray:
    if mode == DELTA:
        return np.diff(values, prepend=np.int64(0))
    return values - centre


def encode_stream(channels: list[Channel], lanes: int | None = None) -> bytes:
    n = max((len(c.values) for c in channels), default=0)
    lanes = lanes or int(np.clip(n // 4096, 1, 32))  # 136 header bytes at 32 lanes
    head, syms, idx = [], [], []
    for ch in channels:
        v = np.asarray(ch.values, np.int64)
        ctx = np.asarray(ch.ctx, np.int64)
        centre = int(np.median(v)) if v.size else 0
        best = None
        for mode in (RAW, DELTA) if ch.delta_ok else (RAW,):
            s = np.clip(_symbols(v, mode, centre), -MAX_ABS, MAX_ABS)
            cost, tables = _costs_by_ctx(s, ctx, ch.n_ctx)
            if best is None or cost < best[0]:
                best = (cost, mode, s, tables)
        _, mode, s, tables = best
        head.append(_CH.pack(mode, centre if mode == RAW else 0) + tables.tobytes())
        syms.append(s.astype(np.int32))
        idx.append(tables.astype(np.int32)[ctx])
    sym = np.concatenate(syms) if syms else np.zeros(0, np.int32)
    ind = np.concatenate(idx) if idx else np.zeros(0, np.int32)
    return b"".join(head) + rans.encode(sym, ind, arrays.family(), lanes=lanes)


def check_stream(data: bytes, n_contexts: list[int], n: int, what: str
                 ) -> list[tuple[int, int, np.ndarray]]:
    """Each channel's ``(mode, centre, tables)`` after checking the channel headers and the
    rANS header against ``n`` values per channel. Reads headers only: a decoder calls it
    before allocating anything ``n`` implies."""
    fam = arrays.family()
    pos, out = 0, []
    for n_ctx in n_contexts:
        if pos + _CH.size + n_ctx > len(data):
            raise BitstreamError(f"{what}: stream truncated in its channel headers")
        mode, centre = _CH.unpack_from(data, pos)
        pos += _CH.size
        tables = np.frombuffer(data, np.uint8, count=n_ctx, offset=pos).astype(np.int32)
        pos += n_ctx
        if mode not in (RAW, DELTA) or (mode == DELTA and centre != 0):
            raise BitstreamError(f"{what}: invalid channel mode {mode}")
        if n_ctx and int(tables.max()) >= fam.num_tables:
            raise BitstreamError(f"{what}: stream names a table that does not exist")
        out.append((mode, centre, tables))
    try:
        _, _, count, _ = rans.parse_header(data[pos:])
    except BitstreamError as e:
        raise BitstreamError(f"{what}: {e}") from None
    if count != n * len(n_contexts):
        raise BitstreamError(f"{what}: stream holds {count} symbols, the header needs "
                             f"{n * len(n_contexts)}")
    return out


def decode_stream(data: bytes, contexts: list[tuple[np.ndarray, int]], n: int,
                  what: str) -> list[np.ndarray]:
    """The int64 channels of :func:`encode_stream` (``n`` values each) given each channel's
    ``(ctx, n_contexts)``; any inconsistency is a :class:`BitstreamError`."""
    fam = arrays.family()
    channels = check_stream(data, [n_ctx for _, n_ctx in contexts], n, what)
    modes, idx = [], []
    for (ctx, n_ctx), (mode, centre, tables) in zip(contexts, channels):
        if ctx.size != n or (n and (int(ctx.min()) < 0 or int(ctx.max()) >= n_ctx)):
            raise BitstreamError(f"{what}: context out of range")
        modes.append((mode, centre))
        idx.append(tables[ctx])
    body = data[sum(_CH.size + n_ctx for _, n_ctx in contexts):]
    flat = rans.decode(body, np.concatenate(idx) if idx else np.zeros(0, np.int32), fam)
    out = []
    for c, (mode, centre) in enumerate(modes):
        s = flat[c * n: (c + 1) * n].astype(np.int64)
        out.append(np.cumsum(s) if mode == DELTA else s + centre)
    return out
