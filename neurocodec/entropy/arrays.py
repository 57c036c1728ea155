"""Integer arrays (quantized network weights, embeddings, splat attributes) coded with the rANS
backend, each group of values with the table of a fixed parametric family that codes it best.

The family (zero-mean discretized generalized Gaussians — from heavy-tailed through Laplacian
and Gaussian to nearly uniform — over log-spaced standard deviations, 16-bit precision, escape
for anything outside) is built deterministically, so the decoder rebuilds it;
a file carries one table index (one byte) per group and then one rANS stream of every value.
The encoder picks each group's table by its exact cost in bits under the quantized table — a
per-group fitted probability model whose description costs 8 bits.

Stream layout: ``u16 G`` (little endian), ``G`` table indexes (u8), the rANS stream.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np

from neurocodec.entropy import rans
from neurocodec.entropy.tables import CdfTables, _from_freqs, generalized_gaussian_tables
from neurocodec.errors import BitstreamError

PRECISION = 16
SCALES = np.exp(np.linspace(np.log(0.08), np.log(128.0), 30))
SHAPES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
ESCAPE_BITS = 32  # raw bits the coder writes after an escape symbol
_HEAD = struct.Struct("<H")
MAX_GROUPS = (1 << 16) - 1


@lru_cache(maxsize=1)
def family() -> CdfTables:
    """The 240 tables: for each of :data:`SHAPES`, one per standard deviation in
    :data:`SCALES` (table ``i * len(SCALES) + j`` has shape ``i`` and scale ``j``)."""
    freqs, offsets = [], []
    for t in (generalized_gaussian_tables(SCALES, b, PRECISION) for b in SHAPES):
        for k in range(t.num_tables):
            freqs.append(np.diff(t.cdf[k, : t.lengths[k] + 1]))
            offsets.append(int(t.offsets[k]))
    return _from_freqs(freqs, np.array(offsets), PRECISION)


@lru_cache(maxsize=1)
def _bit_costs() -> tuple[np.ndarray, int, int]:
    """``cost [K, V]``: bits of coding value ``lo + j`` with table ``k`` (escapes included) over
    the value range ``lo..hi`` every table of the family spans."""
    t = family()
    lo = int(t.offsets.min())
    hi = int((t.offsets + t.lengths - 2).max())
    cost = np.empty((t.num_tables, hi - lo + 1))
    for k in range(t.num_tables):
        f = np.diff(t.cdf[k, : t.lengths[k] + 1]).astype(np.float64)
        bits = PRECISION - np.log2(f)
        row = np.full(hi - lo + 1, bits[-1] + ESCAPE_BITS)
        o = int(t.offsets[k]) - lo
        row[o: o + f.size - 1] = bits[:-1]
        cost[k] = row
    return cost, lo, hi


def group_costs(values: np.ndarray) -> np.ndarray:
    """Bits of ``values`` (any ints) under each table: float ``[K]``."""
    cost, lo, hi = _bit_costs()
    v = np.asarray(values, np.int64).ravel()
    inside = (v >= lo) & (v <= hi)
    hist = np.bincount(v[inside] - lo, minlength=hi - lo + 1).astype(np.float64)
    # Values beyond every table are escapes in all of them: the same cost under any choice.
    outside = float((~inside).sum()) * (ESCAPE_BITS + PRECISION)
    return cost @ hist + outside


def choose_tables(groups: list[np.ndarray]) -> np.ndarray:
    """The cheapest table of each group: uint8 ``[G]``."""
    return np.array([int(np.argmin(group_costs(g))) for g in groups], np.uint8)


def encode_arrays(groups: list[np.ndarray], lanes: int | None = None) -> bytes:
    """One stream for integer arrays ``groups`` (each any shape; flattened in C order).
    ``lanes`` default: one per 64k values (1..32) — each lane costs 8 bytes of flush and
    count, which a 40 kB network file notices and its decode speed does not."""
    if len(groups) > MAX_GROUPS:
        raise ValueError(f"at most {MAX_GROUPS} groups")
    idx = choose_tables(groups)
    sym = np.concatenate([np.asarray(g, np.int64).ravel() for g in groups] or [np.zeros(0)])
    if sym.size and (sym.min() < np.iinfo(np.int32).min or sym.max() > np.iinfo(np.int32).max):
        raise ValueError("values must fit in int32")
    per = np.repeat(idx.astype(np.int32), [np.asarray(g).size for g in groups])
    lanes = lanes or int(np.clip(sym.size // 65536, 1, 32))
    body = rans.encode(sym.astype(np.int32), per, family(), lanes=lanes)
    return _HEAD.pack(len(groups)) + idx.tobytes() + body


def check_header(data: bytes, sizes: list[int]) -> None:
    """Raise :class:`BitstreamError` unless ``data`` holds ``len(sizes)`` table indexes and a
    rANS stream of ``sum(sizes)`` symbols (its header consistent with its length). Reads
    headers only: a decoder calls it before allocating anything ``sizes`` implies."""
    if len(data) < _HEAD.size:
        raise BitstreamError("array stream truncated")
    (g,) = _HEAD.unpack_from(data)
    if g != len(sizes):
        raise BitstreamError(f"array stream has {g} groups, the decoder expects {len(sizes)}")
    if len(data) < _HEAD.size + g:
        raise BitstreamError("array stream truncated in its table indexes")
    n = rans.parse_header(data[_HEAD.size + g:])[2]
    if n != sum(sizes):
        raise BitstreamError(f"array stream holds {n} values, the decoder expects {sum(sizes)}")


def decode_arrays(data: bytes, sizes: list[int]) -> list[np.ndarray]:
    """The int32 arrays (flat) of :func:`encode_arrays`, given each group's size."""
    check_header(data, sizes)
    g = len(sizes)
    idx = np.frombuffer(data, np.uint8, count=g, offset=_HEAD.size).astype(np.int32)
    if g and int(idx.max()) >= family().num_tables:
        raise BitstreamError("array stream names a table that does not exist")
    per = np.repeat(idx, sizes)
    flat = rans.decode(data[_HEAD.size + g:], per, family())
    return np.split(flat, np.cumsum(sizes)[:-1]) if sizes else []
