"""A plain-torch lane-parallel rANS batch decoder: every lane of every stream advances one
symbol per step as one vector of torch ops, on any device. The reference point the Triton
kernel must beat on a GPU (benchmarks/entropy_gpu.py); bit-exact with ``entropy.rans``.
"""

from __future__ import annotations

import torch

from neurocodec.entropy.tables import LUT_SHIFT, CdfTables
from neurocodec.kernels.batch_layout import batch_layout, cat_indexes, first_bad, sizes_of

SEARCH_STEPS = 7  # ceil(log2(2**LUT_SHIFT + 1))


def decode_batch(streams, indexes_list, tables: CdfTables, device="cpu") -> list[torch.Tensor]:
    """Decode streams made by ``rans.encode``/``encode_batch``; int32 tensors on ``device``."""
    if len(streams) != len(indexes_list):
        raise ValueError("streams and indexes_list must have the same length")
    dev = torch.device(device)
    idx = cat_indexes(indexes_list, tables, dev).long()
    lay = batch_layout(streams, sizes_of(indexes_list), tables)

    def t(a):
        return torch.as_tensor(a, device=dev)

    words = t(lay.words).long()
    start, end = t(lay.seg_start), t(lay.seg_end)
    base, lane, lanes, n = t(lay.out_base), t(lay.lane), t(lay.lanes), t(lay.n)
    cdf = t(tables.cdf).long().reshape(-1)
    lut = t(tables.lut).long().reshape(-1)
    nlen_t = t(tables.lengths).long()
    off_t = t(tables.offsets).long()
    cs, ls = tables.cdf.shape[1], tables.lut.shape[1]
    prec = tables.precision
    out = torch.empty(idx.numel(), dtype=torch.int32, device=dev)
    if words.numel() == 0:
        words = torch.zeros(1, dtype=torch.long, device=dev)
    rd = end - 2
    ok = rd >= start
    rd = torch.where(ok, rd, start)
    rc = rd.clamp(min=0)
    x = (words[(rc + 1).clamp(max=words.numel() - 1)] << 16) | words[rc]

    def refill(x, rd, need):
        need = need & (x < 65536)
        rd = rd - need.long()
        w = words[rd.clamp(min=0)]
        return torch.where(need, (x << 16) | w, x), rd

    for step in range(lay.steps):
        i = step * lanes + lane
        m = i < n
        gi = torch.where(m, base + i, 0)
        k = idx[gi] if idx.numel() else torch.zeros_like(gi)
        slot = x & ((1 << prec) - 1)
        j = slot >> LUT_SHIFT
        lo = lut[k * ls + j]
        nlen = nlen_t[k]
        hi = torch.where(j + 1 < ls, lut[k * ls + (j + 1).clamp(max=ls - 1)], nlen - 1)
        for _ in range(SEARCH_STEPS):
            mid = (lo + hi + 1) >> 1
            go = cdf[k * cs + mid] <= slot
            lo = torch.where(go, mid, lo)
            hi = torch.where(go, hi, mid - 1)
        c0, c1 = cdf[k * cs + lo], cdf[k * cs + lo + 1]
        xn = (c1 - c0) * (x >> prec) + slot - c0
        xn, rd = refill(xn, rd, m)
        esc = m & (lo == nlen - 1)
        hi16 = xn & 0xFFFF
        xe, rd = refill(xn >> 16, rd, esc)
        lo16 = xe & 0xFFFF
        xe2, rd = refill(xe >> 16, rd, esc)
        raw = (hi16 << 16) | lo16
        raw = torch.where(raw >= 2**31, raw - 2**32, raw)
        val = torch.where(esc, raw, lo + off_t[k])
        out[gi[m]] = val[m].to(torch.int32)
        x = torch.where(m, torch.where(esc, xe2, xn), x)
    good = ok & (x == 65536) & (rd == start)
    first_bad(lay, good.cpu().numpy())
    return [out[lay.idx_off[b] : lay.idx_off[b + 1]] for b in range(len(streams))]
