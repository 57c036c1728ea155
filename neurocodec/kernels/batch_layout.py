"""Host-side layout of a batch of rANS streams for lane-parallel GPU decoding.

Every lane of every stream becomes one "global lane": it knows its word segment (in the
concatenation of all streams' words), the first output position of its stream, its lane number
within the stream, its stream's lane count and symbol count. Step ``t`` of a global lane decodes
symbol ``t·L + l`` of its stream, so consecutive lanes of one stream read consecutive indexes
and write consecutive outputs (coalesced), and streams of any sizes share one launch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from neurocodec.entropy import rans
from neurocodec.errors import BitstreamError


@dataclass
class BatchLayout:
    words: np.ndarray  # int32 [W]: every stream's renormalisation words, concatenated
    seg_start: np.ndarray  # int64 [G] per global lane
    seg_end: np.ndarray  # int64 [G]
    out_base: np.ndarray  # int64 [G]: the stream's first output position
    lane: np.ndarray  # int64 [G]: lane number within the stream
    lanes: np.ndarray  # int64 [G]: the stream's lane count
    n: np.ndarray  # int64 [G]: the stream's symbol count
    stream: np.ndarray  # int64 [G]: which stream
    indexes: np.ndarray  # int32 [N]: all streams' table indexes, concatenated
    idx_off: np.ndarray  # int64 [B + 1]
    steps: int  # max over streams of ceil(n / L)


@nb.njit(cache=True, nogil=True)
def _fill(blob16, starts16, lanes, words_tot, lane_off, word_off, idx_off, words, seg_start,
          seg_end, out_base, lane, lanes_g, n_g, stream):
    for b in range(starts16.shape[0]):
        L = lanes[b]
        o = starts16[b]
        w = word_off[b]
        for j in range(L):
            c = np.int64(blob16[o + 4 + 2 * j]) | (np.int64(blob16[o + 5 + 2 * j]) << 16)
            g = lane_off[b] + j
            seg_start[g] = w
            w += c
            seg_end[g] = w
            out_base[g] = idx_off[b]
            lane[g] = j
            lanes_g[g] = L
            n_g[g] = idx_off[b + 1] - idx_off[b]
            stream[g] = b
        src = o + 4 + 2 * L
        for j in range(words_tot[b]):
            words[word_off[b] + j] = blob16[src + j]


def batch_layout(streams, indexes_list, tables) -> BatchLayout:
    """Validate every stream's header as :func:`rans.decode` does (errors name the stream)."""
    if len(streams) != len(indexes_list):
        raise ValueError("streams and indexes_list must have the same length")
    count = len(streams)
    idxs = [np.ascontiguousarray(rans._as_numpy(i), dtype=np.int32).ravel() for i in indexes_list]
    for b, i in enumerate(idxs):
        try:
            rans.check_index_range(i, tables)
        except ValueError as e:
            raise ValueError(f"stream {b}: {e}") from None
    streams = [bytes(s) for s in streams]
    idx_off = rans._offsets([i.size for i in idxs])
    sizes = np.array([len(s) for s in streams], dtype=np.int64)
    starts = rans._offsets(sizes)[:-1]
    blob = b"".join(streams)
    lanes = np.zeros(count, dtype=np.int64)
    words_tot = np.zeros(count, dtype=np.int64)
    bad = rans._check_headers(np.frombuffer(blob, dtype=np.uint8), starts, sizes,
                              idx_off[1:] - idx_off[:-1], tables.precision, rans.FORMAT_VERSION,
                              rans.MAX_LANES, lanes, words_tot)
    if bad >= 0:
        try:
            rans.check_stream(streams[bad], idxs[bad].size, tables)
        except BitstreamError as e:
            raise BitstreamError(f"stream {bad}: {e}") from None
        raise BitstreamError(f"stream {bad}: invalid rANS stream header")  # pragma: no cover
    lane_off = rans._offsets(lanes)
    word_off = rans._offsets(words_tot)
    G = int(lane_off[-1])
    words = np.empty(int(word_off[-1]), dtype=np.int32)
    arrs = [np.empty(G, dtype=np.int64) for _ in range(7)]
    _fill(np.frombuffer(blob, dtype="<u2"), starts // 2, lanes, words_tot, lane_off, word_off,
          idx_off, words, *arrs)
    steps = int(max((-(-(idx_off[1:] - idx_off[:-1]) // lanes)).max(), 0)) if count else 0
    indexes = np.concatenate(idxs) if idxs else np.zeros(0, np.int32)
    return BatchLayout(words, *arrs, indexes, idx_off, steps)


def first_bad(layout: BatchLayout, good: np.ndarray) -> None:
    """Raise BitstreamError for the first global lane whose final check failed."""
    bad = np.flatnonzero(~good.astype(bool))
    if bad.size:
        g = int(bad[0])
        raise BitstreamError(f"stream {int(layout.stream[g])}: rANS stream corrupted or "
                             f"truncated (lane {int(layout.lane[g])})")
