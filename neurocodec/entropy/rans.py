"""Interleaved rANS coder (CPU, numba). The format is written down in docs/entropy-format.md.

Symbol ``i`` belongs to lane ``i % L``. Each lane is an independent rANS coder with a 32-bit
state kept in ``[2**16, 2**32)`` and 16-bit renormalisation words, and owns one contiguous
segment of the stream, so a GPU can give one thread to each lane.
"""

from __future__ import annotations

import struct

import numba as nb
import numpy as np
from numba import typed

from neurocodec.entropy.tables import LUT_SHIFT, CdfTables
from neurocodec.entropy.work_queue import take, workers
from neurocodec.errors import BitstreamError

FORMAT_VERSION = 1
HEADER = struct.Struct("<BBHI")  # version, precision, lanes, number of symbols
STATE_LOW = 1 << 16
MAX_LANES = 4096
RAW_BITS = 16  # escaped values are written as two raw 16-bit chunks


@nb.njit(cache=True, nogil=True)
def _put_raw(x, chunk, lane, out, pos):
    """Push 16 raw bits (an escaped value's chunk) onto state ``x``; rare, so not inlined."""
    if x >= STATE_LOW:
        out[lane, pos[lane]] = x & 0xFFFF
        pos[lane] += 1
        x >>= 16
    return (x << 16) + chunk


@nb.njit(cache=True, nogil=True)
def _encode_kernel(symbols, indexes, cdf, lengths, offsets, prec, lanes, out, pos):
    n = symbols.shape[0]
    state = np.full(lanes, STATE_LOW, dtype=np.int64)
    lane = (n - 1) % lanes if n else 0
    for i in range(n - 1, -1, -1):
        k = indexes[i]
        esc = lengths[k] - 1
        s = np.int64(symbols[i]) - offsets[k]
        x = state[lane]
        if s < 0 or s >= esc:
            raw = np.int64(symbols[i]) & 0xFFFFFFFF
            x = _put_raw(x, raw & 0xFFFF, lane, out, pos)
            x = _put_raw(x, raw >> 16, lane, out, pos)
            s = esc
        start = np.int64(cdf[k, s])
        freq = np.int64(cdf[k, s + 1]) - start
        # Renormalise so that the coded state stays below 2**32 (one word at most, prec <= 16).
        if x >= (freq << (32 - prec)):
            p = pos[lane]
            out[lane, p] = x & 0xFFFF
            pos[lane] = p + 1
            x >>= 16
        q = x // freq
        state[lane] = (q << prec) + x - q * freq + start
        lane = lane - 1 if lane > 0 else lanes - 1
    # Flush: the final state, as two words, is read first by the decoder.
    for lane in range(lanes):
        out[lane, pos[lane]] = state[lane] & 0xFFFF
        out[lane, pos[lane] + 1] = state[lane] >> 16
        pos[lane] += 2


@nb.njit(cache=True, nogil=True)
def _get_raw(x, words, rd, seg_start, lane):
    """Pop 16 raw bits from state ``x``; returns ``(chunk, x)``, or ``x = -1`` past the segment."""
    chunk = x & 0xFFFF
    x >>= 16
    if x < STATE_LOW:
        if rd[lane] <= seg_start[lane]:
            return 0, np.int64(-1)
        rd[lane] -= 1
        x = (x << 16) | np.int64(words[rd[lane]])
    return chunk, x


@nb.njit(cache=True, nogil=True)
def _decode_kernel(words, seg_start, seg_end, indexes, cdf, lengths, offsets, lut, prec, lanes,
                   out):
    """Returns 0 on success, or ``-(lane + 1)`` for the first lane found corrupted."""
    n = indexes.shape[0]
    mask = (1 << prec) - 1
    state = np.zeros(lanes, dtype=np.int64)
    rd = seg_end.copy()
    for lane in range(lanes):
        if rd[lane] - seg_start[lane] < 2:
            return -(lane + 1)
        rd[lane] -= 2
        state[lane] = (np.int64(words[rd[lane] + 1]) << 16) | np.int64(words[rd[lane]])
    lane = 0
    for i in range(n):
        k = indexes[i]
        x = state[lane]
        slot = x & mask
        s = np.int64(lut[k, slot >> LUT_SHIFT])
        hi = np.int64(cdf[k, s + 1])
        while hi <= slot:
            s += 1
            hi = np.int64(cdf[k, s + 1])
        start = np.int64(cdf[k, s])
        x = (hi - start) * (x >> prec) + slot - start
        # Branch-free renormalisation (the branch is unpredictable). A lane that reads past
        # its own segment is caught by the checks after the loop; max() keeps reads in bounds.
        need = np.int64(x < STATE_LOW)
        r = rd[lane] - need
        w = np.int64(words[max(r, 0)])
        x = (x << (16 * need)) | (w * need)
        rd[lane] = r
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
            out[i] = v - 0x100000000 if v >= 0x80000000 else v
        else:
            out[i] = s + offsets[k]
        state[lane] = x
        lane = lane + 1 if lane + 1 < lanes else 0
    for lane in range(lanes):
        if state[lane] != STATE_LOW or rd[lane] != seg_start[lane]:
            return -(lane + 1)
    return 0


@nb.njit(cache=True, nogil=True)
def _gather(out, pos, dst):
    j = 0
    for lane in range(out.shape[0]):
        dst[j : j + pos[lane]] = out[lane, : pos[lane]]
        j += pos[lane]


def check_index_range(indexes, tables: CdfTables) -> None:
    """Raise ValueError unless every index (numpy array or tensor) names one of the tables."""
    if indexes.numel() if hasattr(indexes, "numel") else indexes.size:
        if int(indexes.min()) < 0 or int(indexes.max()) >= tables.num_tables:
            raise ValueError(f"table indexes must lie in [0, {tables.num_tables})")


def check_lanes(lanes: int) -> None:
    if not 1 <= lanes <= MAX_LANES:
        raise ValueError(f"lanes must be in 1..{MAX_LANES}")


def _check_indexes(indexes, tables: CdfTables) -> np.ndarray:
    indexes = np.ascontiguousarray(_as_numpy(indexes), dtype=np.int32).ravel()
    check_index_range(indexes, tables)
    return indexes


def _as_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def encode(symbols, indexes, tables: CdfTables, lanes: int = 32) -> bytes:
    """Encode int32 values with per-symbol tables into one interleaved rANS stream.

    CPU only; :mod:`neurocodec.entropy.dispatch` sends CUDA tensors to the kernel instead.

    Args:
        symbols: int32 ``[N]`` values (any int32; values outside a table's support are escaped).
        indexes: int32 ``[N]`` table index of each symbol.
        tables: the CDF tables.
        lanes: number of interleaved lanes (1..4096).
    """
    symbols = _int32_symbols(symbols)
    indexes = _check_indexes(indexes, tables)
    if symbols.size != indexes.size:
        raise ValueError("symbols and indexes must have the same length")
    check_lanes(lanes)
    n = symbols.size
    per_lane = (n + lanes - 1) // lanes
    out = np.zeros((lanes, 3 * per_lane + 2), dtype=np.uint16)
    pos = np.zeros(lanes, dtype=np.int64)
    _encode_kernel(symbols, indexes, tables.cdf, tables.lengths.astype(np.int64),
                   tables.offsets.astype(np.int64), tables.precision, lanes, out, pos)
    return assemble(out, pos, tables.precision, n)


def assemble(out: np.ndarray, pos: np.ndarray, precision: int, n: int) -> bytes:
    """The stream from per-lane word buffers ``out [L, cap]`` holding ``pos[l]`` words each.

    The encoder wrote each lane's words in reverse consumption order; the decoder reads a
    segment from its end, so segments are stored as written."""
    lanes = out.shape[0]
    counts = pos.astype("<u4")
    head = HEADER.pack(FORMAT_VERSION, precision, lanes, n) + counts.tobytes()
    buf = np.empty(len(head) // 2 + int(pos.sum()), dtype="<u2")
    buf[: len(head) // 2] = np.frombuffer(head, dtype="<u2")
    _gather(out, pos.astype(np.int64), buf[len(head) // 2 :])
    return buf.tobytes()


def check_stream(data: bytes, n_indexes: int, tables: CdfTables) -> tuple[int, np.ndarray]:
    """Validate a stream against the decoder's indexes and tables, before any allocation that
    depends on it; returns ``(lanes, word_counts)``."""
    precision, lanes, n, counts = parse_header(data)
    if n != n_indexes:
        raise BitstreamError(f"stream holds {n} symbols but {n_indexes} indexes were given")
    if precision != tables.precision:
        raise BitstreamError(f"stream precision {precision} != table precision {tables.precision}")
    return lanes, counts


def parse_header(data: bytes) -> tuple[int, int, int, np.ndarray]:
    """Validate the stream header; returns ``(precision, lanes, n_symbols, word_counts)``."""
    if len(data) < HEADER.size:
        raise BitstreamError(f"rANS stream truncated: {len(data)} bytes, header needs {HEADER.size}")
    version, precision, lanes, n = HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unsupported rANS stream version {version}")
    if not 1 <= lanes <= MAX_LANES:
        raise BitstreamError(f"invalid lane count {lanes} in rANS stream")
    if len(data) < HEADER.size + 4 * lanes:
        raise BitstreamError("rANS stream truncated in its lane table")
    counts = np.frombuffer(data, dtype="<u4", count=lanes, offset=HEADER.size).astype(np.int64)
    expected = HEADER.size + 4 * lanes + 2 * int(counts.sum())
    if expected != len(data):
        raise BitstreamError(f"rANS stream is {len(data)} bytes but its header declares {expected}")
    return precision, lanes, n, counts


def decode(data: bytes, indexes, tables: CdfTables):
    """Decode a stream made by :func:`encode` with the same indexes and tables (CPU; see
    :mod:`neurocodec.entropy.dispatch` for the kernel).

    Returns int32 ``[N]``. Raises :class:`BitstreamError` on a truncated, corrupted or
    mismatched stream; memory use is bounded by the stream's size and ``len(indexes)``.
    """
    data = bytes(data)
    indexes = _check_indexes(indexes, tables)
    lanes, counts = check_stream(data, indexes.size, tables)
    n = indexes.size
    words = np.frombuffer(data, dtype="<u2", offset=HEADER.size + 4 * lanes)
    seg_end = np.cumsum(counts)
    seg_start = seg_end - counts
    out = np.empty(n, dtype=np.int32)
    rc = _decode_kernel(words, seg_start, seg_end, indexes, tables.cdf,
                        tables.lengths.astype(np.int64), tables.offsets.astype(np.int64),
                        tables.lut_cpu, tables.precision, lanes, out)
    if rc != 0:
        raise BitstreamError(f"rANS stream corrupted or truncated (lane {-rc - 1})")
    return out


# ---------------------------------------------------------------------------------------------
# Batches: many independent streams of the format above in one call, spread over the cores.
#
# Streams are concatenated (symbols, indexes and output in one buffer each, with per-stream
# offsets); one worker per core runs the single-stream kernels on the next unclaimed stream
# (neurocodec.entropy.work_queue), longest first, so a batch keeps every core busy to its end;
# each stream's bytes are exactly those of :func:`encode`.


@nb.njit(cache=True, nogil=True)
def _put_u32(buf, p, v):
    buf[p] = v & 0xFFFF
    buf[p + 1] = (v >> 16) & 0xFFFF


@nb.njit(cache=True, nogil=True)
def _indexes_ok(indexes, num_tables):
    for i in range(indexes.shape[0]):
        if indexes[i] < 0 or indexes[i] >= num_tables:
            return False
    return True


def _raise_bad_index(bad_index, tables: CdfTables) -> None:
    if bad_index.any():
        b = int(np.flatnonzero(bad_index)[0])
        raise ValueError(f"stream {b}: table indexes must lie in [0, {tables.num_tables})")


@nb.njit(cache=True, nogil=True, parallel=True)
def _encode_batch_kernel(symbols, indexes, sym_off, lanes, cdf, lengths, offsets, prec,
                         work, work_off, caps, pos, pos_off, bad_index, order, n_workers):
    """Phase 1 (parallel, streams taken in ``order``): encode stream ``b`` (``symbols[b]``,
    ``indexes[b]``: arrays of typed lists) into its work area ``[lanes[b], caps[b]]``;
    ``bad_index[b]`` is set (and the stream skipped) if one of its table indexes is out of
    range."""
    nb_ = sym_off.shape[0] - 1
    counter = np.zeros(1, dtype=np.int64)
    for _ in nb.prange(n_workers):
        while True:
            j = take(counter, nb_)
            if j < 0:
                break
            b = order[j]
            ind = indexes[b]
            if not _indexes_ok(ind, cdf.shape[0]):
                bad_index[b] = 1
                continue
            L = lanes[b]
            w = work[work_off[b] : work_off[b] + L * caps[b]].reshape((L, caps[b]))
            _encode_kernel(symbols[b], ind, cdf, lengths, offsets, prec, L, w,
                           pos[pos_off[b] : pos_off[b] + L])


@nb.njit(cache=True, nogil=True, parallel=True)
def _assemble_batch_kernel(sym_off, lanes, prec, version, work, work_off, caps, pos, pos_off,
                           out, out_off):
    """Phase 2 (parallel): write stream ``b`` (header, counts, segments) at ``out_off[b]``."""
    nb_ = sym_off.shape[0] - 1
    for b in nb.prange(nb_):
        L = lanes[b]
        n = sym_off[b + 1] - sym_off[b]
        o = out_off[b]
        out[o] = version | (prec << 8)
        out[o + 1] = L
        _put_u32(out, o + 2, n)
        p = pos[pos_off[b] : pos_off[b] + L]
        for lane in range(L):
            _put_u32(out, o + 4 + 2 * lane, p[lane])
        j = o + 4 + 2 * L
        w = work[work_off[b] : work_off[b] + L * caps[b]].reshape((L, caps[b]))
        for lane in range(L):
            out[j : j + p[lane]] = w[lane, : p[lane]]
            j += p[lane]


def _int32_symbols(symbols) -> np.ndarray:
    symbols = np.ascontiguousarray(_as_numpy(symbols)).ravel()
    if symbols.dtype != np.int32:
        if symbols.dtype.kind not in "iu" or (symbols.size and (
                symbols.min() < np.iinfo(np.int32).min or symbols.max() > np.iinfo(np.int32).max)):
            raise ValueError("symbols must be int32 values")
        symbols = symbols.astype(np.int32)
    return symbols


def _batch_lanes(lanes, count: int) -> np.ndarray:
    if np.ndim(lanes) == 0:
        lanes = [int(lanes)] * count
    lanes = [int(v) for v in lanes]
    if len(lanes) != count:
        raise ValueError(f"{len(lanes)} lane counts given for {count} streams")
    for v in lanes:
        check_lanes(v)
    return np.asarray(lanes, dtype=np.int64)


def _offsets(sizes) -> np.ndarray:
    off = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=off[1:])
    return off


def encode_batch(symbols_list, indexes_list, tables: CdfTables, lanes=32) -> list[bytes]:
    """Encode many independent streams in one call, in parallel over streams (CPU cores).

    Stream ``b`` is byte for byte ``encode(symbols_list[b], indexes_list[b], tables, lanes_b)``.

    Args:
        symbols_list, indexes_list: sequences of int32 ``[N_b]`` arrays (or tensors).
        tables: the CDF tables shared by every stream.
        lanes: lanes per stream, one int for all or one per stream (each 1..4096).
    """
    if len(symbols_list) != len(indexes_list):
        raise ValueError("symbols_list and indexes_list must have the same length")
    count = len(symbols_list)
    lanes_arr = _batch_lanes(lanes, count)
    if count == 0:
        return []
    syms = [_int32_symbols(s) for s in symbols_list]
    idxs = [np.ascontiguousarray(_as_numpy(i), dtype=np.int32).ravel() for i in indexes_list]
    for b, (s, i) in enumerate(zip(syms, idxs)):
        if s.size != i.size:
            raise ValueError(f"stream {b}: symbols and indexes must have the same length")
    sym_off = _offsets([s.size for s in syms])
    symbols, indexes = _typed_int32_list(syms), _typed_int32_list(idxs)
    sizes = sym_off[1:] - sym_off[:-1]
    caps = 3 * ((sizes + lanes_arr - 1) // lanes_arr) + 2
    work_off = _offsets(lanes_arr * caps)
    pos_off = _offsets(lanes_arr)
    # Uninitialised: lanes only read back what they wrote, and np.empty of a large array is
    # backed by huge pages (np.zeros is not: 13k page faults per 8M-symbol batch).
    work = np.empty(int(work_off[-1]), dtype=np.uint16)
    pos = np.zeros(int(pos_off[-1]), dtype=np.int64)
    bad_index = np.zeros(count, dtype=np.uint8)
    lengths, offsets = tables.lengths.astype(np.int64), tables.offsets.astype(np.int64)
    _encode_batch_kernel(symbols, indexes, sym_off, lanes_arr, tables.cdf, lengths, offsets,
                         tables.precision, work, work_off, caps, pos, pos_off, bad_index,
                         _largest_first(sizes), workers(count))
    _raise_bad_index(bad_index, tables)
    words = np.add.reduceat(pos, pos_off[:-1]) if pos.size else np.zeros(count, np.int64)
    out_off = _offsets(HEADER.size // 2 + 2 * lanes_arr + words)
    out = np.empty(int(out_off[-1]), dtype="<u2")
    _assemble_batch_kernel(sym_off, lanes_arr, tables.precision, FORMAT_VERSION, work, work_off,
                           caps, pos, pos_off, out, out_off)
    return [out[out_off[b] : out_off[b + 1]].tobytes() for b in range(count)]


@nb.njit(cache=True, nogil=True)
def _check_headers(buf, starts, sizes, n_expected, prec, version, max_lanes, lanes_out,
                   words_out):
    """Header checks of every stream (the same as :func:`parse_header`/:func:`check_stream`);
    returns the index of the first bad stream, or -1. Fills lanes and word totals."""
    for b in range(starts.shape[0]):
        o, size = starts[b], sizes[b]
        if size < 8:
            return b
        if buf[o] != version or buf[o + 1] != prec:
            return b
        L = np.int64(buf[o + 2]) | (np.int64(buf[o + 3]) << 8)
        n = (np.int64(buf[o + 4]) | (np.int64(buf[o + 5]) << 8) | (np.int64(buf[o + 6]) << 16)
             | (np.int64(buf[o + 7]) << 24))
        if L < 1 or L > max_lanes or size < 8 + 4 * L or n != n_expected[b]:
            return b
        total = np.int64(0)
        for lane in range(L):
            p = o + 8 + 4 * lane
            total += (np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
                      | (np.int64(buf[p + 2]) << 16) | (np.int64(buf[p + 3]) << 24))
        if 8 + 4 * L + 2 * total != size:
            return b
        lanes_out[b] = L
        words_out[b] = total
    return -1


BAD_INDEX = 1  # decode_batch kernel status: a table index out of range (kernel errors are < 0)


@nb.njit(cache=True, nogil=True, parallel=True)
def _decode_batch_kernel(words, starts, lanes, idx_off, indexes, cdf, lengths, offsets, lut,
                         prec, out, rc, order, n_workers):
    """Decode stream ``b`` (its u16 words start at ``starts[b]``, its table indexes are the
    array ``indexes[b]`` of a typed list) into ``out[idx_off[b]:]``, streams taken in
    ``order``; ``rc[b]`` gets the single-stream kernel's return code, or BAD_INDEX."""
    n = starts.shape[0]
    counter = np.zeros(1, dtype=np.int64)
    for _ in nb.prange(n_workers):
        while True:
            j = take(counter, n)
            if j < 0:
                break
            b = order[j]
            ind = indexes[b]
            if not _indexes_ok(ind, cdf.shape[0]):
                rc[b] = BAD_INDEX
                continue
            L = lanes[b]
            o = starts[b]
            counts = np.empty(L, dtype=np.int64)
            for lane in range(L):
                counts[lane] = np.int64(words[o + 4 + 2 * lane]) | (
                    np.int64(words[o + 5 + 2 * lane]) << 16)
            seg_end = np.cumsum(counts)
            seg_start = seg_end - counts
            w0 = o + 4 + 2 * L
            w = words[w0 : w0 + seg_end[-1]]
            rc[b] = _decode_kernel(w, seg_start, seg_end, ind, cdf, lengths, offsets, lut,
                                   prec, L, out[idx_off[b] : idx_off[b + 1]])


def _out_buffer(out: np.ndarray | None, n: int) -> np.ndarray:
    if out is None:
        return np.empty(n, dtype=np.int32)
    if not (isinstance(out, np.ndarray) and out.dtype == np.int32 and out.ndim == 1
            and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError("out must be a writeable, C-contiguous 1-D int32 array")
    if out.size < n:
        raise ValueError(f"out holds {out.size} symbols; the streams have {n}")
    return out


def _typed_int32_list(arrays: list[np.ndarray]) -> typed.List:
    """The arrays themselves (C-contiguous int32), as a numba typed list: no concatenated copy,
    which was the largest serial part of a batch. Appending to a preallocated list takes half
    the time of ``List(arrays)``."""
    out = typed.List.empty_list(nb.types.int32[::1], allocated=len(arrays))
    for a in arrays:
        out.append(a if a.flags.writeable else a.copy())
    return out


def _largest_first(sizes) -> np.ndarray:
    """Stream order for the workers: the longest first, so that the last ones taken are short."""
    return np.argsort(-np.asarray(sizes, dtype=np.int64), kind="stable")


def decode_batch(streams, indexes_list, tables: CdfTables, out: np.ndarray | None = None
                 ) -> list[np.ndarray]:
    """Decode many streams made by :func:`encode`/:func:`encode_batch` in one call, in
    parallel over streams; returns one int32 array per stream, equal to :func:`decode`'s.

    ``out``: optional int32 buffer (1-D, C-contiguous, writeable) of at least the total
    symbol count to decode into; the arrays returned are then views of it (after an error its
    contents are unspecified). A caller that decodes batch after batch can reuse one buffer: a
    fresh one is page-faulted in by the decoding threads, and on a 2-core VM two threads
    faulting in a 32 MB batch spent 18.6 ms of system time where one spent 4.4 ms.

    Raises :class:`BitstreamError` naming the first bad stream (and lane) on a truncated,
    corrupted or mismatched stream, and ValueError naming it for out-of-range table indexes
    (checked per stream after the headers, in parallel); memory use is bounded by the streams'
    and indexes' sizes.
    """
    if len(streams) != len(indexes_list):
        raise ValueError("streams and indexes_list must have the same length")
    count = len(streams)
    if count == 0:
        return []
    if count == 1 and out is None:  # the single-stream decoder: no parallel region to start
        try:
            return [decode(streams[0], indexes_list[0], tables)]
        except (BitstreamError, ValueError) as e:
            raise type(e)(f"stream 0: {e}") from None
    streams = [bytes(s) for s in streams]
    idxs = [np.ascontiguousarray(_as_numpy(i), dtype=np.int32).ravel() for i in indexes_list]
    n_sym = np.array([i.size for i in idxs], dtype=np.int64)
    idx_off = _offsets(n_sym)
    indexes = _typed_int32_list(idxs)  # range-checked per stream in the parallel kernel
    sizes = np.array([len(s) for s in streams], dtype=np.int64)
    starts = _offsets(sizes)[:-1]
    blob = b"".join(streams)
    lanes_arr = np.zeros(count, dtype=np.int64)
    words_arr = np.zeros(count, dtype=np.int64)
    bad = _check_headers(np.frombuffer(blob, dtype=np.uint8), starts, sizes,
                         n_sym, tables.precision, FORMAT_VERSION, MAX_LANES,
                         lanes_arr, words_arr)
    if bad >= 0:  # re-run the single-stream checks for their exact message
        try:
            check_stream(streams[bad], idxs[bad].size, tables)
        except BitstreamError as e:
            raise BitstreamError(f"stream {bad}: {e}") from None
        raise BitstreamError(f"stream {bad}: invalid rANS stream header")  # pragma: no cover
    words = np.frombuffer(blob, dtype="<u2")  # every stream has even length: checked above
    out = _out_buffer(out, int(idx_off[-1]))
    rc = np.zeros(count, dtype=np.int64)
    _decode_batch_kernel(words, starts // 2, lanes_arr, idx_off, indexes, tables.cdf,
                         tables.lengths.astype(np.int64), tables.offsets.astype(np.int64),
                         tables.lut_cpu, tables.precision, out, rc,
                         _largest_first(n_sym), workers(count))
    _raise_bad_index(rc == BAD_INDEX, tables)
    bad_rc = np.flatnonzero(rc)
    if bad_rc.size:
        b = int(bad_rc[0])
        raise BitstreamError(f"stream {b}: rANS stream corrupted or truncated "
                             f"(lane {-int(rc[b]) - 1})")
    return [out[idx_off[b] : idx_off[b + 1]] for b in range(count)]
