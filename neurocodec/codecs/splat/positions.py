"""Positions of the splat coder from format 3 on: each Gaussian's grid cell at its own level,
coded as the gap to the previous Gaussian's in Morton order.

A Gaussian of size class ``k`` is placed in the aligned cell of ``2^k`` grid units a side that
holds it and decoded at the cell's centre (``2^(k-1)`` units in from its corner on each axis;
the grid point itself for ``k = 0``), so it moves at most ``2^(k-1)`` units per axis — the same
bound as rounding to a ``2^k`` step. ``key`` is the 63-bit Morton code of the decoded position.
The coder sorts the Gaussians by key, so each one's cell index at its own level,
``key_i >> 3 k_i``, is never below the previous Gaussian's at that level: the gap
``g_i = (key_i >> 3 k_i) - (key_(i-1) >> 3 k_i) >= 0`` (``key_(-1) = 0``).

Coded: the bit length ``b_i`` of each gap (0 for a zero gap) as a context-stream channel
(:mod:`.streams`, context ``k_i``), and the ``b_i - 1`` bits under each gap's leading one raw,
packed least significant bit first, in a section of their own. Gaps of sorted points are
nearly exponential, so the bits under the leading one are close to uniform (modelling the top
one saved < 0.01 bytes per Gaussian on the real scenes). Against format 2's three per-axis
residuals from the predecessor this codes the order for free: 0.32-0.35 bytes per Gaussian
fewer on biker and donut at quality 4 (2.78 -> 2.43 and 2.77 -> 2.45).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from neurocodec.errors import BitstreamError

KEY_BITS = 63  # also the longest gap, in bits


def spread21(v: np.ndarray) -> np.ndarray:
    """The 21 low bits of ``v`` spread to every third bit (uint64)."""
    v = v.astype(np.uint64) & np.uint64(0x1FFFFF)
    for shift, mask in ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def compact21(v: np.ndarray) -> np.ndarray:
    """The inverse of :func:`spread21`: every third bit of ``v`` gathered (int64)."""
    v = v.astype(np.uint64) & np.uint64(0x1249249249249249)
    for shift, mask in ((2, 0x10C30C30C30C30C3), (4, 0x100F00F00F00F00F), (8, 0x1F0000FF0000FF),
                        (16, 0x1F00000000FFFF), (32, 0x1FFFFF)):
        v = (v | (v >> np.uint64(shift))) & np.uint64(mask)
    return v.astype(np.int64)


def morton_key(xi: np.ndarray) -> np.ndarray:
    """uint64 ``[N]`` Morton codes of integer grid positions ``[N, 3]`` (21 bits each; x in the
    top bit of each triple)."""
    return (spread21(xi[:, 0]) << np.uint64(2)) | (spread21(xi[:, 1]) << np.uint64(1)) | \
        spread21(xi[:, 2])


def from_key(key: np.ndarray) -> np.ndarray:
    """Integer grid positions ``[N, 3]`` of Morton codes ``key``."""
    return np.stack([compact21(key >> np.uint64(2)), compact21(key >> np.uint64(1)),
                     compact21(key)], axis=1)


def cell_keys(xi: np.ndarray, k: np.ndarray) -> np.ndarray:
    """uint64 ``[N]``: the keys of the decoded positions — the centres of the level-``k`` cells
    holding grid positions ``xi [N, 3]``."""
    sh = (np.uint64(3) * k.astype(np.uint64))
    centre = np.where(k > 0, np.uint64(7) << np.maximum(sh, np.uint64(3)) - np.uint64(3),
                      np.uint64(0))
    return ((morton_key(xi) >> sh) << sh) | centre


@nb.njit(cache=True, nogil=True)
def _gaps(keys, k, lengths, out_bits):
    """Bit lengths of the gaps of sorted ``keys`` (into ``lengths``) and the bits under each
    leading one, packed LSB first (into ``out_bits``, zeroed, large enough); returns the
    number of bits written."""
    prev = np.uint64(0)
    pos = 0
    for i in range(keys.shape[0]):
        sh = np.uint64(3 * k[i])
        g = (keys[i] >> sh) - (prev >> sh)
        b = 0
        t = g
        while t:
            b += 1
            t >>= np.uint64(1)
        lengths[i] = b
        for j in range(b - 1):
            if (g >> np.uint64(j)) & np.uint64(1):
                out_bits[pos >> 3] |= np.uint8(1 << (pos & 7))
            pos += 1
        prev = keys[i]
    return pos


@nb.njit(cache=True, nogil=True)
def _keys(lengths, k, bits, n_bits, out):
    """The decoder's inverse of :func:`_gaps`; returns 0, -1 if the bits run out before the
    gaps do, -2 if a key would leave 63 bits."""
    prev = np.uint64(0)
    pos = 0
    for i in range(lengths.shape[0]):
        b = lengths[i]
        g = np.uint64(0)
        if b > 0:
            if pos + b - 1 > n_bits:
                return -1
            g = np.uint64(1) << np.uint64(b - 1)
            for j in range(b - 1):
                if (bits[pos >> 3] >> (pos & 7)) & 1:
                    g |= np.uint64(1) << np.uint64(j)
                pos += 1
        kk = k[i]
        sh = np.uint64(3 * kk)
        cell = (prev >> sh) + g  # < 2^64: both terms are below 2^63
        if cell >> np.uint64(KEY_BITS - 3 * kk):  # beyond a level-k cell index's bits
            return -2
        key = cell << sh
        if kk > 0:
            key |= np.uint64(7) << np.uint64(3 * kk - 3)
        out[i] = key
        prev = key
    return 0


def encode_gaps(keys: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, bytes]:
    """``(bit lengths int64 [N], packed bits)`` of sorted uint64 ``keys`` at levels ``k``."""
    n = len(keys)
    lengths = np.empty(n, np.int64)
    bits = np.zeros((n * (KEY_BITS - 1) + 7) // 8, np.uint8)
    used = _gaps(np.ascontiguousarray(keys, np.uint64), np.ascontiguousarray(k, np.int64),
                 lengths, bits)
    return lengths, bits[: (used + 7) // 8].tobytes()


def decode_keys(lengths: np.ndarray, k: np.ndarray, data: bytes) -> np.ndarray:
    """uint64 keys ``[N]`` from their gaps' bit lengths, levels and packed bits; a
    :class:`BitstreamError` unless the bits are exactly those the lengths need."""
    lengths = np.ascontiguousarray(lengths, np.int64)
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > KEY_BITS):
        raise BitstreamError("positions: invalid gap length")
    need = int(np.maximum(lengths - 1, 0).sum())
    if len(data) != (need + 7) // 8:
        raise BitstreamError(f"positions: {len(data)} bytes of gap bits, the gaps need "
                             f"{(need + 7) // 8}")
    out = np.empty(len(lengths), np.uint64)
    rc = _keys(lengths, np.ascontiguousarray(k, np.int64),
               np.frombuffer(data, np.uint8), 8 * len(data), out)
    if rc == -2:
        raise BitstreamError("positions: a Gaussian lands outside the grid")
    if rc != 0:
        raise BitstreamError("positions: gap bits truncated")
    return out
