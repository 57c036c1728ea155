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


def batch_layout(streams, sizes, tables) -> BatchLayout:
    """Validate every stream's header as :func:`rans.decode` does against ``sizes[b]`` symbols
    (errors name the stream) and lay the batch out for the kernels."""
    if len(streams) != len(sizes):
        raise ValueError("streams and indexes_list must have the same length")
    count = len(streams)
    streams = [bytes(s) for s in streams]
    idx_off = rans._offsets([int(v) for v in sizes])
    sizes_b = np.array([len(s) for s in streams], dtype=np.int64)
    starts = rans._offsets(sizes_b)[:-1]
    blob = b"".join(streams)
    lanes = np.zeros(count, dtype=np.int64)
    words_tot = np.zeros(count, dtype=np.int64)
    bad = rans._check_headers(np.frombuffer(blob, dtype=np.uint8), starts, sizes_b,
                              idx_off[1:] - idx_off[:-1], tables.precision, rans.FORMAT_VERSION,
                              rans.MAX_LANES, lanes, words_tot)
    if bad >= 0:
        try:
            rans.check_stream(streams[bad], int(sizes[bad]), tables)
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
    steps = int((-(-(idx_off[1:] - idx_off[:-1]) // lanes)).max()) if count else 0
    return BatchLayout(words, *arrs, idx_off, steps)


def sizes_of(indexes_list) -> list[int]:
    """Element counts of arrays or tensors (of any shape)."""
    return [int(i.numel()) if hasattr(i, "numel") else int(np.size(i)) for i in indexes_list]


def cat_indexes(indexes_list, tables, device):
    """All streams' table indexes as one int32 tensor on ``device`` (concatenated there: device
    tensors never visit the host), range-checked; the error names the first bad stream."""
    import torch

    parts = [torch.as_tensor(i).reshape(-1).to(device, torch.int32) for i in indexes_list]
    idx = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int32, device=device)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= tables.num_tables):
        for b, p in enumerate(parts):
            try:
                rans.check_index_range(p, tables)
            except ValueError as e:
                raise ValueError(f"stream {b}: {e}") from None
    return idx


def first_bad(layout: BatchLayout, good: np.ndarray) -> None:
    """Raise BitstreamError for the first global lane whose final check failed."""
    bad = np.flatnonzero(~good.astype(bool))
    if bad.size:
        g = int(bad[0])
        raise BitstreamError(f"stream {int(layout.stream[g])}: rANS stream corrupted or "
                             f"truncated (lane {int(layout.lane[g])})")


@nb.njit(cache=True, nogil=True)
def _assemble(payload, pos, pos_off, lanes, n, prec, version, out, out_off):
    src = 0
    for b in range(lanes.shape[0]):
        L = lanes[b]
        o = out_off[b]
        out[o] = version | (prec << 8)
        out[o + 1] = L
        out[o + 2] = n[b] & 0xFFFF
        out[o + 3] = (n[b] >> 16) & 0xFFFF
        w = 0
        for lane in range(L):
            c = pos[pos_off[b] + lane]
            out[o + 4 + 2 * lane] = c & 0xFFFF
            out[o + 5 + 2 * lane] = (c >> 16) & 0xFFFF
            w += c
        d = o + 4 + 2 * L
        out[d : d + w] = payload[src : src + w]
        src += w


def assemble_compact(payload, pos, lanes, n, precision) -> list[bytes]:
    """Streams from every lane's words back to back (``payload``) and the lanes' word counts
    ``pos`` (streams in order, lanes in order): header, counts and segments, as ``rans.encode``."""
    pos_off = rans._offsets(lanes)
    words = np.add.reduceat(pos, pos_off[:-1])
    out_off = rans._offsets(rans.HEADER.size // 2 + 2 * lanes + words)
    out = np.empty(int(out_off[-1]), dtype="<u2")
    _assemble(payload, pos.astype(np.int64), pos_off, lanes, np.asarray(n, np.int64), precision,
              rans.FORMAT_VERSION, out, out_off)
    blob = out.tobytes()
    return [blob[2 * out_off[b] : 2 * out_off[b + 1]] for b in range(lanes.size)]
