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
        tl.store(out_ptr + i, val.to(tl.int32), mask=m)
        x = tl.where(m, tl.where(esc, xe2, xn), x)
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
        x, pos = _put(x, c0, c1 - c0, PREC, out_ptr, base, pos, m)
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
