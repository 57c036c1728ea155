"""Triton rANS encode/decode, one GPU thread per lane, bit-exact with ``entropy.rans``.

Layout: program ``pid`` owns lanes ``[pid*BLOCK, pid*BLOCK + BLOCK)``; step ``t`` of lane
``l`` handles symbol ``t*L + l``, so a warp's index and output accesses are contiguous
(coalesced). Each lane reads its own word segment backwards. The symbol search is the coarse
inverse table of the CPU coder followed by a fixed-length binary search between two
consecutive table entries (at most 64 + 1 candidates, 7 steps) — no data-dependent loop.
Tables are gathered from global memory and stay in L1/L2 (a 64-scale table is 0.8 MB; its
hot centre is a few KB).

State arithmetic is int64: the state stays below 2**32 and every product below 2**48.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from neurocodec.entropy import rans
from neurocodec.entropy.tables import LUT_SHIFT, CdfTables
from neurocodec.errors import BitstreamError

BLOCK = 32
SEARCH_STEPS = 7  # ceil(log2(2**LUT_SHIFT + 1))


@triton.jit
def _refill(x, rd, words_ptr, m):
    """Renormalise a lane state below 2**16 with the next word of its segment (read backwards)."""
    need = m & (x < 65536)
    rd = tl.where(need, rd - 1, rd)
    w = tl.load(words_ptr + tl.maximum(rd, 0), mask=need, other=0).to(tl.int64)
    return tl.where(need, (x << 16) | w, x), rd


@triton.jit
def _decode_symbol(x, rd, k, m, words_ptr, cdf_ptr, cdf_stride, len_ptr, off_ptr, lut_ptr,
                   lut_stride, PREC: tl.constexpr, LUT_SHIFT: tl.constexpr,
                   SEARCH_STEPS: tl.constexpr):
    """One symbol of every lane in ``m`` with table ``k``: returns ``(value, state, read
    position)``; lanes outside ``m`` keep their state."""
    slot = x & ((1 << PREC) - 1)
    j = slot >> LUT_SHIFT
    lo = tl.load(lut_ptr + k * lut_stride + j, mask=m, other=0).to(tl.int64)
    nlen = tl.load(len_ptr + k, mask=m, other=1).to(tl.int64)
    # Upper end of the candidate range: the next coarse entry (or the last symbol).
    jn = tl.minimum(j + 1, lut_stride - 1)
    hi = tl.load(lut_ptr + k * lut_stride + jn, mask=m, other=0).to(tl.int64)
    hi = tl.where(j + 1 < lut_stride, hi, nlen - 1)
    # Largest s in [lo, hi] with cdf[s] <= slot (cdf[lo] <= slot holds).
    for _ in range(SEARCH_STEPS):
        mid = (lo + hi + 1) >> 1
        c = tl.load(cdf_ptr + k * cdf_stride + mid, mask=m, other=0).to(tl.int64)
        go = c <= slot
        lo = tl.where(go, mid, lo)
        hi = tl.where(go, hi, mid - 1)
    s = lo
    c0 = tl.load(cdf_ptr + k * cdf_stride + s, mask=m, other=0).to(tl.int64)
    c1 = tl.load(cdf_ptr + k * cdf_stride + s + 1, mask=m, other=1).to(tl.int64)
    xn = (c1 - c0) * (x >> PREC) + slot - c0
    xn, rd = _refill(xn, rd, words_ptr, m)
    esc = m & (s == nlen - 1)
    # Escape: two raw 16-bit chunks, high first (harmless no-ops where esc is false).
    hi16 = xn & 0xFFFF
    xe, rd = _refill(xn >> 16, rd, words_ptr, esc)
    lo16 = xe & 0xFFFF
    xe2, rd = _refill(xe >> 16, rd, words_ptr, esc)
    raw = (hi16 << 16) | lo16
    raw = tl.where(raw >= 2147483648, raw - 4294967296, raw)
    off = tl.load(off_ptr + k, mask=m, other=0).to(tl.int64)
    val = tl.where(esc, raw, s + off)
    return val, tl.where(m, tl.where(esc, xe2, xn), x), rd


@triton.jit
def _decode_kernel(words_ptr, seg_start_ptr, seg_end_ptr, idx_ptr, cdf_ptr, cdf_stride,
                   len_ptr, off_ptr, lut_ptr, lut_stride, out_ptr, status_ptr, n, lanes,
                   steps, PREC: tl.constexpr, LUT_SHIFT: tl.constexpr,
                   SEARCH_STEPS: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    lane = pid * BLOCK + tl.arange(0, BLOCK)
    lmask = lane < lanes
    start = tl.load(seg_start_ptr + lane, mask=lmask, other=0)
    rd = tl.load(seg_end_ptr + lane, mask=lmask, other=2) - 2
    ok = lmask & (rd >= start)
    rd = tl.where(ok, rd, start)
    w0 = tl.load(words_ptr + tl.maximum(rd, 0), mask=lmask, other=0).to(tl.int64)
    w1 = tl.load(words_ptr + tl.maximum(rd, 0) + 1, mask=lmask, other=0).to(tl.int64)
    x = (w1 << 16) | w0
    for t in range(steps):
        i = t * lanes + lane
        m = lmask & (i < n)
        k = tl.load(idx_ptr + i, mask=m, other=0).to(tl.int64)
        val, x, rd = _decode_symbol(x, rd, k, m, words_ptr, cdf_ptr, cdf_stride, len_ptr,
                                    off_ptr, lut_ptr, lut_stride, PREC, LUT_SHIFT, SEARCH_STEPS)
        tl.store(out_ptr + i, val.to(tl.int32), mask=m)
    good = ok & (x == 65536) & (rd == start)
    tl.store(status_ptr + lane, good.to(tl.int32), mask=lmask)


@triton.jit
def _put(x, start, freq, prec, out_ptr, base, pos, m):
    """One rANS push: renormalise (at most one word), then encode (start, freq)."""
    emit = m & (x >= (freq << (32 - prec)))
    tl.store(out_ptr + base + pos, (x & 0xFFFF).to(tl.int32), mask=emit)
    pos = tl.where(emit, pos + 1, pos)
    x = tl.where(emit, x >> 16, x)
    q = x // freq
    xn = (q << prec) + (x - q * freq) + start
    return tl.where(m, xn, x), pos


@triton.jit
def _encode_symbol(x, pos, v, k, m, cdf_ptr, cdf_stride, len_ptr, off_ptr, out_ptr, base,
                   PREC: tl.constexpr):
    """Push value ``v`` with table ``k`` on every lane in ``m`` (escaped values: their 32 raw
    bits first, then the escape symbol); returns ``(state, words written)``."""
    nlen = tl.load(len_ptr + k, mask=m, other=1).to(tl.int64)
    off = tl.load(off_ptr + k, mask=m, other=0).to(tl.int64)
    s = v - off
    esc = m & ((s < 0) | (s >= nlen - 1))
    raw = v & 0xFFFFFFFF
    x, pos = _put(x, raw & 0xFFFF, 1, 16, out_ptr, base, pos, esc)
    x, pos = _put(x, raw >> 16, 1, 16, out_ptr, base, pos, esc)
    s = tl.where(esc, nlen - 1, s)
    c0 = tl.load(cdf_ptr + k * cdf_stride + s, mask=m, other=0).to(tl.int64)
    c1 = tl.load(cdf_ptr + k * cdf_stride + s + 1, mask=m, other=1).to(tl.int64)
    return _put(x, c0, c1 - c0, PREC, out_ptr, base, pos, m)


@triton.jit
def _encode_kernel(sym_ptr, idx_ptr, cdf_ptr, cdf_stride, len_ptr, off_ptr, out_ptr, pos_ptr,
                   state_ptr, cap, n, lanes, steps, PREC: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    lane = pid * BLOCK + tl.arange(0, BLOCK)
    lmask = lane < lanes
    base = lane.to(tl.int64) * cap
    x = tl.full([BLOCK], 65536, tl.int64)
    pos = tl.zeros([BLOCK], tl.int64)
    for tt in range(steps):
        t = steps - 1 - tt
        i = t * lanes + lane
        m = lmask & (i < n)
        k = tl.load(idx_ptr + i, mask=m, other=0).to(tl.int64)
        v = tl.load(sym_ptr + i, mask=m, other=0).to(tl.int64)
        x, pos = _encode_symbol(x, pos, v, k, m, cdf_ptr, cdf_stride, len_ptr, off_ptr, out_ptr,
                                base, PREC)
    tl.store(out_ptr + base + pos, (x & 0xFFFF).to(tl.int32), mask=lmask)
    tl.store(out_ptr + base + pos + 1, (x >> 16).to(tl.int32), mask=lmask)
    tl.store(pos_ptr + lane, pos + 2, mask=lmask)
    tl.store(state_ptr + lane, x, mask=lmask)


def _table_tensors(tables: CdfTables, device) -> dict:
    return {"cdf": torch.as_tensor(tables.cdf, device=device),
            "len": torch.as_tensor(tables.lengths, device=device),
            "off": torch.as_tensor(tables.offsets, device=device),
            "lut": torch.as_tensor(tables.lut, device=device)}


def encode(symbols: torch.Tensor, indexes: torch.Tensor, tables: CdfTables,
           lanes: int = 32) -> bytes:
    """Same bytes as :func:`neurocodec.entropy.rans.encode`; symbols/indexes: int32 ``[N]``
    tensors on the kernel's device (CUDA, or CPU under ``TRITON_INTERPRET=1``)."""
    dev = symbols.device
    sym = symbols.reshape(-1).to(torch.int32).contiguous()
    idx = indexes.reshape(-1).to(torch.int32).contiguous()
    n = sym.numel()
    if idx.numel() != n:
        raise ValueError("symbols and indexes must have the same length")
    rans.check_index_range(idx, tables)
    rans.check_lanes(lanes)
    t = _table_tensors(tables, dev)
    steps = (n + lanes - 1) // lanes
    cap = 3 * steps + 2
    out = torch.zeros(lanes * cap, dtype=torch.int32, device=dev)
    pos = torch.zeros(lanes, dtype=torch.int64, device=dev)
    state = torch.zeros(lanes, dtype=torch.int64, device=dev)
    grid = (triton.cdiv(lanes, BLOCK),)
    _encode_kernel[grid](sym, idx, t["cdf"], t["cdf"].shape[1], t["len"], t["off"], out, pos,
                         state, cap, n, lanes, steps, PREC=tables.precision, BLOCK=BLOCK)
    words = out.view(lanes, cap).cpu().numpy().astype(np.uint16)
    return rans.assemble(words, pos.cpu().numpy(), tables.precision, n)


def decode(data: bytes, indexes: torch.Tensor, tables: CdfTables) -> torch.Tensor:
    """Decode on the device of ``indexes``; returns int32 ``[N]`` there. Same checks and
    errors as the CPU decoder."""
    dev = indexes.device
    idx = indexes.reshape(-1).to(torch.int32).contiguous()
    rans.check_index_range(idx, tables)
    data = bytes(data)
    lanes, counts = rans.check_stream(data, idx.numel(), tables)
    n, precision = idx.numel(), tables.precision
    off = rans.HEADER.size + 4 * lanes
    words = torch.from_numpy(np.frombuffer(data, dtype="<u2", offset=off).astype(np.int32)).to(dev)
    seg_end = torch.from_numpy(np.cumsum(counts)).to(dev)
    seg_start = seg_end - torch.from_numpy(counts).to(dev)
    t = _table_tensors(tables, dev)
    out = torch.empty(n, dtype=torch.int32, device=dev)
    status = torch.zeros(lanes, dtype=torch.int32, device=dev)
    if words.numel() == 0:
        raise BitstreamError("rANS stream corrupted or truncated (no words)")
    steps = (n + lanes - 1) // lanes
    grid = (triton.cdiv(lanes, BLOCK),)
    _decode_kernel[grid](words, seg_start, seg_end, idx, t["cdf"], t["cdf"].shape[1], t["len"],
                         t["off"], t["lut"], t["lut"].shape[1], out, status, n, lanes, steps,
                         PREC=precision, LUT_SHIFT=LUT_SHIFT, SEARCH_STEPS=SEARCH_STEPS,
                         BLOCK=BLOCK)
    bad = (status == 0).nonzero()
    if bad.numel():
        raise BitstreamError(f"rANS stream corrupted or truncated (lane {int(bad[0])})")
    return out


# ---------------------------------------------------------------------------------------------
# Batches: one launch for many streams. Every lane of every stream is one thread ("global lane",
# see kernels/batch_layout.py): a warp holds 32 consecutive lanes, of one stream or of two
# neighbours, so the GPU fills with warps however small each stream is.


@triton.jit
def _decode_batch_kernel(words_ptr, seg_start_ptr, seg_end_ptr, base_ptr, lane_ptr, lanes_ptr,
                         n_ptr, idx_ptr, cdf_ptr, cdf_stride, len_ptr, off_ptr, lut_ptr,
                         lut_stride, out_ptr, status_ptr, total_lanes, steps,
                         PREC: tl.constexpr, LUT_SHIFT: tl.constexpr,
                         SEARCH_STEPS: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    g = pid * BLOCK + tl.arange(0, BLOCK)
    gmask = g < total_lanes
    start = tl.load(seg_start_ptr + g, mask=gmask, other=0)
    rd = tl.load(seg_end_ptr + g, mask=gmask, other=2) - 2
    base = tl.load(base_ptr + g, mask=gmask, other=0)
    lane = tl.load(lane_ptr + g, mask=gmask, other=0)
    lanes = tl.load(lanes_ptr + g, mask=gmask, other=1)
    n = tl.load(n_ptr + g, mask=gmask, other=0)
    ok = gmask & (rd >= start)
    rd = tl.where(ok, rd, start)
    w0 = tl.load(words_ptr + tl.maximum(rd, 0), mask=gmask, other=0).to(tl.int64)
    w1 = tl.load(words_ptr + tl.maximum(rd, 0) + 1, mask=gmask, other=0).to(tl.int64)
    x = (w1 << 16) | w0
    for t in range(steps):
        i = t * lanes + lane
        m = gmask & (i < n)
        o = base + i
        k = tl.load(idx_ptr + o, mask=m, other=0).to(tl.int64)
        val, x, rd = _decode_symbol(x, rd, k, m, words_ptr, cdf_ptr, cdf_stride, len_ptr,
                                    off_ptr, lut_ptr, lut_stride, PREC, LUT_SHIFT, SEARCH_STEPS)
        tl.store(out_ptr + o, val.to(tl.int32), mask=m)
    good = ok & (x == 65536) & (rd == start)
    tl.store(status_ptr + g, good.to(tl.int32), mask=gmask)


def decode_batch_prepare(streams, indexes_list, tables: CdfTables, device=None) -> dict:
    """Validate the streams and move the batch layout to ``device``: the launch's arguments."""
    from neurocodec.kernels.batch_layout import batch_layout, cat_indexes, sizes_of

    if device is None:
        first = indexes_list[0] if len(indexes_list) else None
        device = getattr(first, "device", None) or "cuda"
    dev = torch.device(device)
    idx = cat_indexes(indexes_list, tables, dev)
    lay = batch_layout(streams, sizes_of(indexes_list), tables)

    def t(a):
        return torch.as_tensor(a, device=dev)

    words = t(lay.words) if lay.words.size else torch.zeros(1, dtype=torch.int32, device=dev)
    if not idx.numel():
        idx = torch.zeros(1, dtype=torch.int32, device=dev)
    tt = _table_tensors(tables, dev)
    total = int(lay.lane.size)
    return {"layout": lay, "tables": tables, "count": len(streams), "total": total,
            "args": (words, t(lay.seg_start), t(lay.seg_end), t(lay.out_base), t(lay.lane),
                     t(lay.lanes), t(lay.n), idx, tt["cdf"], tt["cdf"].shape[1], tt["len"],
                     tt["off"], tt["lut"], tt["lut"].shape[1]),
            "out": torch.empty(max(int(lay.idx_off[-1]), 1), dtype=torch.int32, device=dev),
            "status": torch.zeros(max(total, 1), dtype=torch.int32, device=dev)}


def decode_batch_run(prep: dict) -> None:
    """The one launch: decode into ``prep["out"]``, lane checks into ``prep["status"]``."""
    if not prep["total"]:
        return
    grid = (triton.cdiv(prep["total"], BLOCK),)
    _decode_batch_kernel[grid](*prep["args"], prep["out"], prep["status"], prep["total"],
                               prep["layout"].steps, PREC=prep["tables"].precision,
                               LUT_SHIFT=LUT_SHIFT, SEARCH_STEPS=SEARCH_STEPS, BLOCK=BLOCK)


def decode_batch(streams, indexes_list, tables: CdfTables, device=None) -> list[torch.Tensor]:
    """Decode many streams in one launch; one int32 tensor per stream on ``device`` (default:
    the first index tensor's device, else CUDA). Equal to ``rans.decode`` per stream; errors
    name the stream (and lane)."""
    from neurocodec.kernels.batch_layout import first_bad

    if len(streams) != len(indexes_list):
        raise ValueError("streams and indexes_list must have the same length")
    if not len(streams):
        return []
    prep = decode_batch_prepare(streams, indexes_list, tables, device)
    decode_batch_run(prep)
    lay, out = prep["layout"], prep["out"]
    first_bad(lay, prep["status"][: prep["total"]].cpu().numpy())
    return [out[lay.idx_off[b] : lay.idx_off[b + 1]] for b in range(prep["count"])]


@triton.jit
def _encode_batch_kernel(sym_ptr, idx_ptr, cdf_ptr, cdf_stride, len_ptr, off_ptr, out_ptr,
                         pos_ptr, wbase_ptr, base_ptr, lane_ptr, lanes_ptr, n_ptr, total_lanes,
                         steps, PREC: tl.constexpr, BLOCK: tl.constexpr):
    """Global lane ``g`` encodes its stream's symbols ``t·L + l`` (last first) into its word
    area at ``wbase[g]`` (the CPU batch coder's work layout) and stores its word count."""
    pid = tl.program_id(0)
    g = pid * BLOCK + tl.arange(0, BLOCK)
    gmask = g < total_lanes
    wbase = tl.load(wbase_ptr + g, mask=gmask, other=0)
    base = tl.load(base_ptr + g, mask=gmask, other=0)
    lane = tl.load(lane_ptr + g, mask=gmask, other=0)
    lanes = tl.load(lanes_ptr + g, mask=gmask, other=1)
    n = tl.load(n_ptr + g, mask=gmask, other=0)
    my_steps = (n + lanes - 1) // lanes
    x = tl.full([BLOCK], 65536, tl.int64)
    pos = tl.zeros([BLOCK], tl.int64)
    for tt in range(steps):
        t = my_steps - 1 - tt
        i = t * lanes + lane
        m = gmask & (t >= 0) & (i < n)
        o = base + i
        k = tl.load(idx_ptr + o, mask=m, other=0).to(tl.int64)
        v = tl.load(sym_ptr + o, mask=m, other=0).to(tl.int64)
        x, pos = _encode_symbol(x, pos, v, k, m, cdf_ptr, cdf_stride, len_ptr, off_ptr, out_ptr,
                                wbase, PREC)
    tl.store(out_ptr + wbase + pos, (x & 0xFFFF).to(tl.int32), mask=gmask)
    tl.store(out_ptr + wbase + pos + 1, (x >> 16).to(tl.int32), mask=gmask)
    tl.store(pos_ptr + g, pos + 2, mask=gmask)


def encode_batch(symbols_list, indexes_list, tables: CdfTables, lanes=32,
                 device=None) -> list[bytes]:
    """Encode many streams in one launch; the same bytes as ``rans.encode_batch``. Inputs may
    be tensors or arrays; the kernel runs on ``device`` (default: the first symbol tensor's
    device, else CUDA). The device compacts the lanes' words; only the stream words and the
    lane counts travel to the host, which writes the headers."""
    from neurocodec.kernels.batch_layout import assemble_compact, cat_indexes, sizes_of

    if len(symbols_list) != len(indexes_list):
        raise ValueError("symbols_list and indexes_list must have the same length")
    count = len(symbols_list)
    lanes_arr = rans._batch_lanes(lanes, count)
    if count == 0:
        return []
    if device is None:
        device = getattr(symbols_list[0], "device", None) or "cuda"
    dev = torch.device(device)
    sizes = np.array(sizes_of(symbols_list), dtype=np.int64)
    if sizes.tolist() != sizes_of(indexes_list):
        b = int(np.flatnonzero(sizes != np.array(sizes_of(indexes_list)))[0])
        raise ValueError(f"stream {b}: symbols and indexes must have the same length")
    parts = [torch.as_tensor(s).reshape(-1).to(dev) for s in symbols_list]
    sym = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int32, device=dev)
    if sym.dtype != torch.int32:
        if sym.is_floating_point() or sym.is_complex() or (sym.numel() and (
                int(sym.min()) < -2**31 or int(sym.max()) >= 2**31)):
            raise ValueError("symbols must be int32 values")
        sym = sym.to(torch.int32)
    idx = cat_indexes(indexes_list, tables, dev)
    sym_off = rans._offsets(sizes)
    steps_b = (sizes + lanes_arr - 1) // lanes_arr
    caps = 3 * steps_b + 2
    pos_off = rans._offsets(lanes_arr)
    rep = np.repeat(np.arange(count), lanes_arr)
    lane = np.arange(rep.size) - pos_off[rep]
    wbase = rans._offsets(caps[rep])[:-1]  # lane g's word area, cap of its stream
    total = rep.size

    def t(a):
        return torch.as_tensor(a, device=dev)

    if sym.numel() == 0:
        sym = torch.zeros(1, dtype=torch.int32, device=dev)
        idx = torch.zeros(1, dtype=torch.int32, device=dev)
    tt = _table_tensors(tables, dev)
    wb = t(wbase)
    work = torch.zeros(int(wbase[-1] + caps[rep[-1]]), dtype=torch.int32, device=dev)
    pos = torch.zeros(total, dtype=torch.int64, device=dev)
    grid = (triton.cdiv(total, BLOCK),)
    _encode_batch_kernel[grid](sym, idx, tt["cdf"], tt["cdf"].shape[1], tt["len"], tt["off"],
                               work, pos, wb, t(sym_off[rep]), t(lane), t(lanes_arr[rep]),
                               t(sizes[rep]), total, int(steps_b.max()), PREC=tables.precision,
                               BLOCK=BLOCK)
    # Compact on the device: lane g's pos[g] words, lanes in order, streams in order.
    ends = torch.cumsum(pos, 0)
    g_of = torch.repeat_interleave(torch.arange(total, device=dev), pos)
    j = torch.arange(g_of.numel(), device=dev) - (ends - pos)[g_of]
    payload = work[wb[g_of] + j].to(torch.int16).cpu().numpy().view(np.uint16)
    return assemble_compact(payload, pos.cpu().numpy(), lanes_arr, sizes, tables.precision)


def compile_specs() -> dict:
    """Signatures of the kernels above beyond the two single-stream ones, for
    :mod:`neurocodec.kernels.compile_check`."""
    p32, p64 = "*i32", "*i64"
    sig = {"words_ptr": p32, "seg_start_ptr": p64, "seg_end_ptr": p64, "base_ptr": p64,
           "lane_ptr": p64, "lanes_ptr": p64, "n_ptr": p64, "idx_ptr": p32, "cdf_ptr": p32,
           "cdf_stride": "i32", "len_ptr": p32, "off_ptr": p32, "lut_ptr": p32,
           "lut_stride": "i32", "out_ptr": p32, "status_ptr": p32, "total_lanes": "i32",
           "steps": "i32"}
    const = {"PREC": 16, "LUT_SHIFT": LUT_SHIFT, "SEARCH_STEPS": SEARCH_STEPS, "BLOCK": BLOCK}
    esig = {"sym_ptr": p32, "idx_ptr": p32, "cdf_ptr": p32, "cdf_stride": "i32",
            "len_ptr": p32, "off_ptr": p32, "out_ptr": p32, "pos_ptr": p64, "wbase_ptr": p64,
            "base_ptr": p64, "lane_ptr": p64, "lanes_ptr": p64, "n_ptr": p64,
            "total_lanes": "i32", "steps": "i32"}
    return {"_decode_batch_kernel": (_decode_batch_kernel, sig, const),
            "_encode_batch_kernel": (_encode_batch_kernel, esig, {"PREC": 16, "BLOCK": BLOCK})}
