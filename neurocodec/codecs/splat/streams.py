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

That is gsc format 1 (still decoded). Format 2 codes *context streams* (below): channels
predicted from decoded neighbours, with each symbol's table picked by a context of decoded
symbols, and optionally the low bits of wide values apart.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numba as nb
import numpy as np

from neurocodec.entropy import arrays, rans
from neurocodec.entropy.rans import STATE_LOW, _get_raw
from neurocodec.entropy.tables import LUT_SHIFT
from neurocodec.errors import BitstreamError

RAW, DELTA = 0, 1
_CH = struct.Struct("<Bi")
INT32 = (-(1 << 31), (1 << 31) - 1)
# Symbols are clipped here: beyond every table they are escapes anyway, and a decoder's
# running sums stay far inside int64.
MAX_ABS = 1 << 30


def _costs_by_ctx(sym: np.ndarray, ctx: np.ndarray, n_ctx: int) -> tuple[float, np.ndarray]:
    """The cheapest family table per context and the total bits (table bytes included): the
    exact cost of :func:`arrays.group_costs`, from one histogram of (context, value) pairs
    without BLAS (whose threads cost more than these small products)."""
    out = _ctx_costs(sym, ctx, n_ctx)
    tables = np.argmin(out, axis=1).astype(np.uint8)
    return float(out[np.arange(n_ctx), tables].sum()) + 8 * n_ctx, tables


def _ctx_costs(sym: np.ndarray, ctx: np.ndarray, n_ctx: int) -> np.ndarray:
    cost_t, lo, hi = _cost_t()
    v = np.asarray(sym, np.int64)
    ctx = np.asarray(ctx, np.int64)
    inside = (v >= lo) & (v <= hi)
    span = hi - lo + 1
    hist = np.bincount(ctx[inside] * span + (v[inside] - lo), minlength=n_ctx * span)
    nz = np.flatnonzero(hist)
    out = np.zeros((n_ctx, cost_t.shape[1]))
    _accumulate(nz // span, nz % span, hist[nz].astype(np.float64), cost_t, out)
    out += (np.bincount(ctx[~inside], minlength=n_ctx)
            * float(arrays.ESCAPE_BITS + arrays.PRECISION))[:, None]
    return out


def _ctx_bits(sym: np.ndarray, ctx: np.ndarray, n_ctx: int) -> np.ndarray:
    """Bits per context with its cheapest table."""
    return _ctx_costs(sym, ctx, n_ctx).min(axis=1)


@nb.njit(cache=True, nogil=True)
def _accumulate(ctx, col, count, cost_t, out):
    for t in range(ctx.shape[0]):
        c, b, h = ctx[t], col[t], count[t]
        for k in range(cost_t.shape[1]):
            out[c, k] += h * cost_t[b, k]


@lru_cache(maxsize=1)
def _cost_t() -> tuple[np.ndarray, int, int]:
    cost, lo, hi = arrays._bit_costs()
    return np.ascontiguousarray(cost.T), lo, hi


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
    """The int64 channels of a format-1 stream (``n`` values each) given each channel's
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


# --- format 2: predicted channels with contexts from decoded neighbours ------------------------
#
# A *context stream* codes channels (one value per Gaussian each) in one rANS stream, channel
# after channel. Channel ``c`` is coded either as is minus a centre (``RAW``) or minus a
# prediction (``PRED``): the rounded mean of its value at the Gaussian's *neighbours* (earlier
# Gaussians, given as a list per Gaussian that the decoder already has, e.g. the nearest
# previously decoded ones in space) that share the Gaussian's *class* (e.g. its rotation's
# dropped component; none: 0). The symbol's table is chosen by a context that combines
#
# * a static context (as above: size class, rotation step, ...),
# * ``bucket(sum |symbol| over the neighbours, in this channel)`` (``n_self`` buckets), and
# * ``bucket(sum |symbol| of this Gaussian in the earlier channels of ``cross``)`` (``n_cross``),
#
# where ``bucket(m) = min(floor(log2(1 + m)), n - 1)``. The decoder computes each symbol's
# context from symbols it has already decoded, so the rANS loop runs with its own table
# selection (:func:`_decode_ctx_kernel`); the bytes are those of :func:`rans.encode`.
#
# A *split* channel (wide values: position residuals) codes ``hi = s >> b`` in its place and
# ``lo = (s & (2^b - 1)) - 2^(b-1)`` after every channel, ``b`` (0..MAX_SHIFT) and the low part's
# table chosen per static context by the encoder; contexts see ``hi``.
#
# Layout: for each channel ``u8 mode | i32 centre (LE) | u8 table[n_static * n_self * n_cross]``
# (split channels: then ``u8 shift[n_static] | u8 low_table[n_static]``), then the rANS stream:
# every channel's symbols, channel after channel, then the split channels' low parts.

PRED = 2
MAX_SHIFT = 8  # low bits a split channel may code apart


def _split(s: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s = (hi << shift) + lo + half`` with ``lo`` centred in ``[-half, half)``."""
    half = np.where(shift > 0, np.int64(1) << np.maximum(shift - 1, 0), 0)
    return s >> shift, (s & ((np.int64(1) << shift) - 1)) - half


def _join(hi: np.ndarray, lo: np.ndarray, shift: np.ndarray) -> np.ndarray:
    half = np.where(shift > 0, np.int64(1) << np.maximum(shift - 1, 0), 0)
    return (hi << shift) + lo + half


def _choose_shifts(s: np.ndarray, static: np.ndarray, n_static: int) -> np.ndarray:
    """Per static context, the shift whose high part (one table) and low part (one table)
    cost the fewest bits."""
    costs = np.empty((MAX_SHIFT + 1, n_static))
    for sh in range(MAX_SHIFT + 1):
        hi, lo = _split(s, np.full(s.size, sh, np.int64))
        costs[sh] = _ctx_bits(hi, static, n_static) + _ctx_bits(lo, static, n_static)
    return np.argmin(costs, axis=0).astype(np.int64)


@dataclass
class CtxChannel:
    values: np.ndarray  # int64 [N]
    static: np.ndarray  # int [N] in 0..n_static-1
    n_static: int
    n_self: int = 1  # buckets of the neighbours' symbol magnitudes (1: unused)
    n_cross: int = 1  # buckets of this Gaussian's symbol magnitudes in earlier channels
    cross: tuple[int, ...] = ()  # those earlier channels
    cls: np.ndarray | None = None  # int [N]: predict only from neighbours of the same class
    pred_ok: bool = True  # False: only RAW
    split: bool = False  # low bits apart, per static context (wide values: positions)

    @property
    def n_ctx(self) -> int:
        return self.n_static * self.n_self * self.n_cross


@dataclass
class CtxSpec:
    """What the decoder knows of a channel before decoding it."""

    static: np.ndarray
    n_static: int
    n_self: int = 1
    n_cross: int = 1
    cross: tuple[int, ...] = ()
    cls: np.ndarray | Callable[[list[np.ndarray]], np.ndarray] | None = None  # or from the
    # channels decoded before this one
    split: bool = False

    @property
    def n_ctx(self) -> int:
        return self.n_static * self.n_self * self.n_cross


@nb.njit(cache=True, nogil=True)
def _bucket(m, n):
    b = 0
    m += 1
    while m > 1 and b < n - 1:
        m >>= 1
        b += 1
    return b


@nb.njit(cache=True, nogil=True)
def _ctx_of(i, c, sym, n, nbr, static, n_self, n_cross, cross):
    """Context of symbol ``i`` of channel ``c`` (``sym`` flat, channel-major, ``n`` per
    channel; only symbols before it are read)."""
    b1 = 0
    if n_self > 1:
        m = np.int64(0)
        for t in range(nbr.shape[1]):
            j = nbr[i, t]
            if j >= 0:
                m += abs(np.int64(sym[c * n + j]))
        b1 = _bucket(m, n_self)
    b2 = 0
    if n_cross > 1:
        m = np.int64(0)
        for x in range(cross.shape[0]):
            m += abs(np.int64(sym[cross[x] * n + i]))
        b2 = _bucket(m, n_cross)
    return (static[i] * n_self + b1) * n_cross + b2


@nb.njit(cache=True, nogil=True)
def _contexts(sym, c, n, nbr, static, n_self, n_cross, cross, out):
    for i in range(n):
        out[i] = _ctx_of(i, c, sym, n, nbr, static, n_self, n_cross, cross)


@nb.njit(cache=True, nogil=True, inline="always")
def _prediction(i, values, nbr, cls):
    """The prediction of value ``i``: the rounded mean of ``values`` at its neighbours of the
    same class (0 without one); only values before ``i`` are read."""
    s = np.int64(0)
    cnt = 0
    for t in range(nbr.shape[1]):
        j = nbr[i, t]
        if j >= 0 and cls[j] == cls[i]:
            s += values[j]
            cnt += 1
    return (s + cnt // 2) // cnt if cnt else np.int64(0)


@nb.njit(cache=True, nogil=True)
def _predict(values, nbr, cls, out):
    """Residuals ``values - prediction`` (encoder), see :func:`_prediction`."""
    for i in range(values.shape[0]):
        out[i] = values[i] - _prediction(i, values, nbr, cls)


@nb.njit(cache=True, nogil=True)
def _unpredict(res, nbr, cls, limit, out):
    """The decoder's inverse of :func:`_predict`; False if a value leaves ``[-limit, limit]``."""
    for i in range(res.shape[0]):
        v = _prediction(i, out, nbr, cls) + np.int64(res[i])
        if v > limit or v < -limit:
            return False
        out[i] = v
    return True


@nb.njit(cache=True, nogil=True)
def _decode_ctx_kernel(words, seg_start, seg_end, n, n_ch, nbr, statics, n_selfs, n_crosses,
                       cross_off, cross_all, tab_off, tables, cdf, lengths, offsets, lut, prec,
                       lanes, out):
    """:func:`rans._decode_kernel` with each symbol's table picked from its context (computed
    from the symbols decoded before it). Returns 0, or ``-(lane + 1)`` on a corrupted lane."""
    mask = (1 << prec) - 1
    state = np.zeros(lanes, dtype=np.int64)
    rd = seg_end.copy()
    for lane in range(lanes):
        if rd[lane] - seg_start[lane] < 2:
            return -(lane + 1)
        rd[lane] -= 2
        state[lane] = (np.int64(words[rd[lane] + 1]) << 16) | np.int64(words[rd[lane]])
    lane = 0
    for c in range(n_ch):
        cross = cross_all[cross_off[c]: cross_off[c + 1]]
        static = statics[c]
        for i in range(n):
            k = tables[tab_off[c] + _ctx_of(i, c, out, n, nbr, static, n_selfs[c],
                                            n_crosses[c], cross)]
            x = state[lane]
            slot = x & mask
            s = np.int64(lut[k, slot >> LUT_SHIFT])
            hi = np.int64(cdf[k, s + 1])
            while hi <= slot:
                s += 1
                hi = np.int64(cdf[k, s + 1])
            start = np.int64(cdf[k, s])
            x = (hi - start) * (x >> prec) + slot - start
            need = np.int64(x < STATE_LOW)
            r = rd[lane] - need
            w = np.int64(words[max(r, 0)])
            x = (x << (16 * need)) | (w * need)
            rd[lane] = r
            f = c * n + i
            if s == lengths[k] - 1:
                if r < seg_start[lane]:
                    return -(lane + 1)
                hi16, x = _get_raw(x, words, rd, seg_start, lane)
                if x < 0:
                    return -(lane + 1)
                lo16, x = _get_raw(x, words, rd, seg_start, lane)
                if x < 0:
                    return -(lane + 1)
                v = (hi16 << 16) | lo16
                out[f] = v - 0x100000000 if v >= 0x80000000 else v
            else:
                out[f] = s + offsets[k]
            state[lane] = x
            lane = lane + 1 if lane + 1 < lanes else 0
    for lane in range(lanes):
        if state[lane] != STATE_LOW or rd[lane] != seg_start[lane]:
            return -(lane + 1)
    return 0


def _cross(ch, c: int) -> np.ndarray:
    x = np.asarray(ch.cross, np.int64)
    if x.size and (x.min() < 0 or x.max() >= c):
        raise ValueError("cross channels must be earlier channels")
    return x


def _nbr(nbr: np.ndarray | None, n: int) -> np.ndarray:
    return np.full((n, 1), -1, np.int64) if nbr is None else np.ascontiguousarray(nbr, np.int64)


def encode_ctx_stream(channels: list[CtxChannel], nbr: np.ndarray | None,
                      lanes: int | None = None) -> bytes:
    """One stream of ``channels`` (``nbr [N, K]``: each Gaussian's neighbours, earlier
    Gaussians or -1; ``None``: none)."""
    n = len(channels[0].values) if channels else 0
    nbr = _nbr(nbr, n)
    lanes = lanes or int(np.clip(n * len(channels) // 16384, 1, 32))
    head, syms, idx, lows = [], [], [], []
    flat = np.zeros(n * len(channels), np.int64)
    for c, ch in enumerate(channels):
        v = np.asarray(ch.values, np.int64)
        static = np.ascontiguousarray(ch.static, np.int64)
        cls = np.zeros(n, np.int64) if ch.cls is None else np.ascontiguousarray(ch.cls, np.int64)
        cross = _cross(ch, c)
        centre = int(np.median(v)) if v.size else 0
        best = None
        for mode in (RAW, PRED) if ch.pred_ok else (RAW,):
            if mode == RAW:
                s = v - centre
            else:
                s = np.empty(n, np.int64)
                _predict(v, nbr, cls, s)
            s = np.clip(s, -MAX_ABS, MAX_ABS)
            flat[c * n: (c + 1) * n] = s
            ctx = np.empty(n, np.int64)
            _contexts(flat, c, n, nbr, static, ch.n_self, ch.n_cross, cross, ctx)
            cost, tables = _costs_by_ctx(s, ctx, ch.n_ctx)
            if best is None or cost < best[0]:
                best = (cost, mode, s, tables, ctx)
        _, mode, s, tables, ctx = best
        extra = b""
        if ch.split:
            shifts = _choose_shifts(s, static, ch.n_static)
            s, lo = _split(s, shifts[static])
            flat[c * n: (c + 1) * n] = s
            _contexts(flat, c, n, nbr, static, ch.n_self, ch.n_cross, cross, ctx)
            _, tables = _costs_by_ctx(s, ctx, ch.n_ctx)
            _, lo_tables = _costs_by_ctx(lo, static, ch.n_static)
            extra = shifts.astype(np.uint8).tobytes() + lo_tables.tobytes()
            lows.append((lo, lo_tables.astype(np.int32)[static]))
        flat[c * n: (c + 1) * n] = s
        head.append(_CH.pack(mode, centre if mode == RAW else 0) + tables.tobytes() + extra)
        syms.append(s.astype(np.int32))
        idx.append(tables.astype(np.int32)[ctx])
    for lo, ind in lows:  # the split channels' low parts, after every channel
        syms.append(lo.astype(np.int32))
        idx.append(ind)
    sym = np.concatenate(syms) if syms else np.zeros(0, np.int32)
    ind = np.concatenate(idx) if idx else np.zeros(0, np.int32)
    return b"".join(head) + rans.encode(sym, ind, arrays.family(), lanes=lanes)


def check_ctx_stream(data: bytes, layout: list[tuple[int, int]], n: int, what: str) -> None:
    """Header-only check of an :func:`encode_ctx_stream` stream before anything ``n`` implies
    is allocated: ``layout`` holds each channel's ``(n_ctx, n_static if split else 0)``;
    the channel headers must fit and the rANS stream must declare ``n`` symbols per channel
    (low-bit pseudo-channels included)."""
    pos = 0
    for n_ctx, split_static in layout:
        pos += _CH.size + n_ctx + 2 * split_static
        if pos > len(data):
            raise BitstreamError(f"{what}: stream truncated in its channel headers")
    n_ch = len(layout) + sum(1 for _, s in layout if s)
    try:
        count = rans.parse_header(data[pos:])[2]
    except BitstreamError as e:
        raise BitstreamError(f"{what}: {e}") from None
    if count != n * n_ch:
        raise BitstreamError(f"{what}: stream holds {count} symbols, the header needs "
                             f"{n * n_ch}")


def decode_ctx_stream(data: bytes, specs: list[CtxSpec], nbr: np.ndarray | None, n: int,
                      what: str, limit: int = MAX_ABS) -> list[np.ndarray]:
    """The int64 channels of :func:`encode_ctx_stream`; any inconsistency, or a value beyond
    ``limit``, is a :class:`BitstreamError`."""
    fam = arrays.family()
    nbr = _nbr(nbr, n)
    pos, modes, tabs, statics, crosses, lows = 0, [], [], [], [], []
    for c, sp in enumerate(specs):
        if pos + _CH.size + sp.n_ctx > len(data):
            raise BitstreamError(f"{what}: stream truncated in its channel headers")
        mode, centre = _CH.unpack_from(data, pos)
        pos += _CH.size
        tables = np.frombuffer(data, np.uint8, count=sp.n_ctx, offset=pos).astype(np.int64)
        pos += sp.n_ctx
        if mode not in (RAW, PRED) or (mode == PRED and centre != 0):
            raise BitstreamError(f"{what}: invalid channel mode {mode}")
        if sp.n_ctx and int(tables.max()) >= fam.num_tables:
            raise BitstreamError(f"{what}: stream names a table that does not exist")
        st = np.ascontiguousarray(sp.static, np.int64)
        if st.size != n or (n and (int(st.min()) < 0 or int(st.max()) >= sp.n_static)):
            raise BitstreamError(f"{what}: context out of range")
        if sp.split:
            if pos + 2 * sp.n_static > len(data):
                raise BitstreamError(f"{what}: stream truncated in its channel headers")
            shifts = np.frombuffer(data, np.uint8, count=sp.n_static, offset=pos).astype(
                np.int64)
            lo_tab = np.frombuffer(data, np.uint8, count=sp.n_static,
                                   offset=pos + sp.n_static).astype(np.int64)
            pos += 2 * sp.n_static
            if sp.n_static and (int(shifts.max()) > MAX_SHIFT
                                or int(lo_tab.max()) >= fam.num_tables):
                raise BitstreamError(f"{what}: invalid low-bit split")
            lows.append((c, shifts, lo_tab, st))
        modes.append((mode, centre))
        tabs.append(tables)
        statics.append(st)
        crosses.append(_cross(sp, c))
    n_main = len(specs)
    for _, _, lo_tab, st in lows:  # pseudo-channels: static context only
        tabs.append(lo_tab)
        statics.append(st)
        crosses.append(np.zeros(0, np.int64))
    body = data[pos:]
    n_ch = len(statics)
    lanes, counts = rans.check_stream(body, n * n_ch, fam)
    words = np.frombuffer(body, dtype="<u2", offset=rans.HEADER.size + 4 * lanes)
    seg_end = np.cumsum(counts)
    seg_start = seg_end - counts
    out = np.empty(n * n_ch, np.int32)
    tab_off = np.cumsum([0] + [t.size for t in tabs]).astype(np.int64)
    cross_off = np.cumsum([0] + [x.size for x in crosses]).astype(np.int64)
    rc = _decode_ctx_kernel(
        words, seg_start, seg_end, n, n_ch, nbr,
        np.stack(statics) if statics else np.zeros((0, n), np.int64),
        np.array([sp.n_self for sp in specs] + [1] * len(lows), np.int64),
        np.array([sp.n_cross for sp in specs] + [1] * len(lows), np.int64), cross_off,
        np.concatenate(crosses) if crosses else np.zeros(0, np.int64), tab_off,
        np.concatenate(tabs) if tabs else np.zeros(0, np.int64), fam.cdf,
        fam.lengths.astype(np.int64), fam.offsets.astype(np.int64), fam.lut_cpu, fam.precision,
        lanes, out)
    if rc != 0:
        raise BitstreamError(f"{what}: rANS stream corrupted or truncated (lane {-rc - 1})")
    res = []
    split = {c: (n_main + t, shifts, st) for t, (c, shifts, _, st) in enumerate(lows)}
    for c, ((mode, centre), sp) in enumerate(zip(modes, specs)):
        s = out[c * n: (c + 1) * n].astype(np.int64)
        if c in split:
            t, shifts, st = split[c]
            s = _join(s, out[t * n: (t + 1) * n].astype(np.int64), shifts[st])
        if mode == RAW:
            v = s + centre
            if n and np.abs(v).max() > limit:
                raise BitstreamError(f"{what}: value out of range")
        else:
            v = np.empty(n, np.int64)
            cls = sp.cls(res) if callable(sp.cls) else sp.cls
            cls = np.zeros(n, np.int64) if cls is None else np.ascontiguousarray(cls, np.int64)
            if not _unpredict(s, nbr, cls, limit, v):
                raise BitstreamError(f"{what}: value out of range")
        res.append(v)
    return res
