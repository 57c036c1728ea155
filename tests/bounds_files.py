"""Hand-made container files for the bounds tests, written without the library's writer
(which refuses invalid headers): any header, any sections, version 1 or 2.

No pytest import here: the crafted-file test loads this module in a fresh child process
whose peak memory is measured.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np

from neurocodec.codecs.container import uleb128

PREFIX = struct.Struct("<4sBBHII")


def raw_container(header: dict | bytes, sections: list[bytes], version: int = 2,
                  n_sections: int | None = None) -> bytes:
    """A container with valid CRCs around whatever ``header`` and ``sections`` are (a dict
    header is serialised as the writer does; bytes are used as they are)."""
    head = header if isinstance(header, bytes) else json.dumps(
        header, sort_keys=True, separators=(",", ":")).encode()
    n = len(sections) if n_sections is None else n_sections
    parts = [PREFIX.pack(b"NCDC", version, 0, n, len(head), zlib.crc32(head)), head]
    for s in sections:
        length = struct.pack("<I", len(s)) if version == 1 else uleb128(len(s))
        parts += [length, struct.pack("<I", zlib.crc32(s)), s]
    return b"".join(parts)


def rans_stream(n_symbols: int, n_words: int, lanes: int = 32, precision: int = 16,
                seed: int = 0) -> bytes:
    """A stream whose header is consistent with its length (so it passes ``parse_header``)
    but whose words are random: ``n_symbols`` is whatever the caller claims."""
    counts = np.full(lanes, n_words // lanes, dtype="<u4")
    counts[0] += n_words % lanes
    words = np.random.default_rng(seed).integers(0, 1 << 16, n_words, dtype=np.uint16)
    head = struct.pack("<BBHI", 1, precision, lanes, n_symbols)
    return head + counts.tobytes() + words.astype("<u2").tobytes()


def crafted_huge_image(codec, side: int = 32767, z_bytes: int = 1_400_000) -> bytes:
    """The file of issue 10: a ``side x side`` image whose ``z`` stream (~``z_bytes``) declares
    exactly the symbols that size implies, so it would decode, and a small ``y`` stream that
    declares far fewer than the shape implies. Decoded without checks, the float64
    hyper-synthesis of that ``z`` would allocate ~51 GB (hyperprior-vr)."""
    pad = codec.model.PAD
    zs = [-(-side // pad)] * 2
    n_z = codec.model.stream_symbol_counts(tuple(zs))[0]
    prec_z, prec_y = codec.model.z_tables.precision, codec.model.y_tables.precision
    header = {"medium": "image", "codec": codec.family, "model": codec.name,
              "weights": codec.digest, "shape": [side, side, 3],
              "meta": {"quality": 0, "z_shape": zs, "input_mode": "RGB"}}
    return raw_container(header, [rans_stream(n_z, z_bytes // 2, precision=prec_z),
                                  rans_stream(1000, 64, precision=prec_y, seed=1)])
