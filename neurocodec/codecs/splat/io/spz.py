"""Niantic ``.spz`` (versions 1–4 read; 2, 3 and 4 written).

A 16-byte header ``magic "NGSP" (u32 0x5053474e) | version u32 | N u32 | sh_degree u8 |
fractional_bits u8 | flags u8 | reserved u8`` and six attribute blocks, in this order:

* positions ``[N, 3]``: 24-bit signed little-endian fixed point, ``x * 2^fractional_bits``
  (12 bits: steps of 1/4096, range ±2048); version 1 stores float16 instead;
* alphas ``[N]``: ``round(sigmoid(opacity) * 255)``;
* colours ``[N, 3]``: ``round(f_dc * 0.15 * 255 + 127.5)`` (steps of 1/38.25 in f_dc,
  range ±3.33);
* scales ``[N, 3]``: ``round((log_scale + 10) * 16)`` (steps of 1/16, range -10..5.94);
* rotations: version 3+ "smallest three" of the unit (x, y, z, w) quaternion in a u32 — 2 bits
  index of the largest |component| (made positive), then the other three in index order, each a
  sign bit and 9 bits of ``|q| / sqrt(1/2) * 511`` (steps of 0.0014); versions 1–2 store
  ``round(q * 127.5 + 127.5)`` of x, y, z (w ≥ 0 implied);
* SH ``[N, K, 3]`` (coefficient-major, colour innermost, as :class:`SplatScene`):
  ``q = round(v * 128) + 128`` rounded to buckets of 2^(8-bits) — 5 bits for the degree-1
  band (steps of 1/16), 4 bits above (1/8), range ±1. An Adobe "SH quantization" extension
  (type 0xADBE0001) may replace the ±1 range by ``[sh_min, sh_max]``: ``v = min + q/255 *
  (max - min)``.

Versions 1–3 gzip header and blocks as one stream. Version 4 keeps a 32-byte plain header
(the fields above, then ``num_streams u8`` at byte 15 and ``toc_offset u32`` at 16, zeros to
32), optional extension records ``[type u32][length u32][payload]`` in ``[32, toc_offset)``, a
table of ``num_streams`` ``(compressed u64, uncompressed u64)`` pairs, then one zstd stream per
block (5 streams, or 6 with SH).

Coordinates: by default stored as in the PLY (no axis change), as PlayCanvas's splat-transform
3.x reads and writes them. Niantic's library documents SPZ as "RUB" (x right, y up, z back)
and its PLY converter turns the PLY's "RDF" into it — a 180° rotation about x: y and z negated,
the quaternion's y and z negated, and the SH coefficients odd in y·z flipped. Files made that
way (``raw/biker.spz`` in our data is one) read upside down against their PLY unless
``rub=True`` is passed, which undoes (when reading) or applies (when writing) that rotation.
"""

from __future__ import annotations

import gzip
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from neurocodec.codecs.container import write_atomic
from neurocodec.errors import InputError

from ._common import (
    DEFAULT_LIMITS,
    DecodeLimits,
    SplatScene,
    bad,
    check_count,
    drop_nonfinite,
    load,
    logit_u8,
    normalize_quats,
    require_finite,
    sigmoid,
)

MAGIC = 0x5053474E
COLOR_SCALE = 0.15
SH_DIM = {0: 0, 1: 3, 2: 8, 3: 15, 4: 24}
FLAG_ANTIALIASED, FLAG_EXTENSIONS = 0x1, 0x2
EXT_SH_QUANT = 0xADBE0001
SQRT1_2 = float(np.sqrt(0.5))
# deflate cannot expand data by more than ~1032:1; a header that claims more is lying.
GZIP_MAX_RATIO = 1032
# room for extension records inside a gzip stream (a few dozen bytes in practice)
MAX_EXTENSION_BYTES = 1 << 16


def _block_sizes(n: int, version: int, sh_dim: int) -> list[int]:
    return [n * 3 * (2 if version == 1 else 3), n, n * 3, n * 3, n * (4 if version >= 3 else 3),
            n * sh_dim * 3]


def _parse_extensions(block: bytes, src: str | Path, legacy: bool) -> tuple[float, float]:
    """SH range ``(min, max)`` from extension records (``(-1, 1)`` without the SH one).

    Records are ``[type][length][payload]``; early gzip-era writers left the length out, so in
    a gzip stream a block that does not tile as length-prefixed records is tried that way."""
    def tiled(with_len: bool) -> tuple[float, float] | None:
        i, rng = 0, (-1.0, 1.0)
        fixed = {EXT_SH_QUANT: 10, 0xADBE0002: 12}
        while i < len(block):
            if i + 4 > len(block):
                return None
            (typ,) = struct.unpack_from("<I", block, i)
            if with_len:
                if i + 8 > len(block):
                    return None
                (size,) = struct.unpack_from("<I", block, i + 4)
                start = i + 8
            elif typ in fixed:
                size, start = fixed[typ], i + 4
            else:
                return None
            if start + size > len(block):
                return None
            if typ == EXT_SH_QUANT and size >= 10:
                lo, hi = struct.unpack_from("<ff", block, start + 2)
                rng = (lo, hi)
            i = start + size
        return rng

    got = tiled(True)
    if got is None and legacy:
        got = tiled(False)
    if got is None:
        raise bad(src, "SPZ extension records are malformed")
    lo, hi = got
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise bad(src, "SPZ SH quantization range is not finite")
    return got


def _gunzip(data: bytes, src: str | Path, limits: DecodeLimits) -> bytes:
    """Inflate a v1–3 stream, reading the header first so the declared size (checked against
    the caps and deflate's best ratio) bounds everything that is decompressed after it."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        head = d.decompress(data, 16)
        if len(head) < 16:
            raise bad(src, "SPZ stream ends inside its header")
        magic, version, n, deg = struct.unpack_from("<IIIB", head)
        if magic != MAGIC:
            raise bad(src, "not an SPZ file (no NGSP header inside the gzip stream)")
        if not 1 <= version <= 3:
            raise bad(src, f"gzip SPZ of version {version} (expected 1..3)")
        if deg not in SH_DIM:
            raise bad(src, f"SPZ SH degree {deg} (expected 0..4)")
        check_count(src, n, limits)
        want = 16 + sum(_block_sizes(n, version, SH_DIM[deg]))
        if want > len(data) * GZIP_MAX_RATIO + 1024:
            raise bad(src, f"SPZ header declares {n} Gaussians ({want} bytes), more than "
                           f"{len(data)} compressed bytes can hold")
        limit = want + MAX_EXTENSION_BYTES
        out = [head]
        got = len(head)
        tail = d.unconsumed_tail
        while not d.eof and got <= limit:
            chunk = d.decompress(tail, limit + 1 - got)
            tail = d.unconsumed_tail
            if not chunk and not tail:
                break
            out.append(chunk)
            got += len(chunk)
        if not d.eof:
            if got > limit:
                raise bad(src, "SPZ stream is longer than its header declares")
            raise bad(src, "SPZ gzip stream is truncated")
    except zlib.error as e:
        raise bad(src, f"SPZ gzip stream is corrupt ({e})") from None
    return b"".join(out)


# SH coefficients (coefficient-major index k, degree 1..3) whose basis function is odd under
# (y, z) -> (-y, -z): y, z | xy, xz | y(3x²-y²), y(4z²-x²-y²), z(2z²-3x²-3y²), z(x²-y²)
_RUB_SH_FLIP = (0, 1, 3, 6, 8, 10, 11, 13)


def rotate_x180(scene: SplatScene) -> SplatScene:
    """``scene`` rotated 180° about x — between the PLY's RDF axes and SPZ's RUB (its own
    inverse)."""
    sign = np.ones(scene.sh_rest.shape[1], np.float32)
    sign[[k for k in _RUB_SH_FLIP if k < len(sign)]] = -1.0
    return SplatScene(means=scene.means * np.float32([1, -1, -1]),
                      scales=scene.scales.copy(),
                      quats=scene.quats * np.float32([1, 1, -1, -1]),
                      opacities=scene.opacities.copy(), sh_dc=scene.sh_dc.copy(),
                      sh_rest=scene.sh_rest * sign[None, :, None],
                      extra={k: v.copy() for k, v in scene.extra.items()})


def decode_spz(data: bytes, src: str | Path = "<spz>",
               limits: DecodeLimits = DEFAULT_LIMITS, rub: bool = False) -> SplatScene:
    """An ``.spz`` file's bytes → :class:`SplatScene` (NaN/Inf Gaussians dropped, warned).
    ``rub``: the file is in Niantic's RUB axes; rotate it back to the PLY's."""
    if data[:2] == b"\x1f\x8b":
        raw = _gunzip(data, src, limits)
        legacy = True
    elif data[:4] == struct.pack("<I", MAGIC):
        raw, legacy = data, None  # v4, or an un-gzipped v2/v3 (splat-transform reads those too)
    else:
        raise bad(src, "not an SPZ file (neither gzip nor NGSP magic)")
    if len(raw) < 16:
        raise bad(src, "SPZ header is truncated")
    _, version, n, deg, frac, flags = struct.unpack_from("<IIIBBB", raw)
    if not 1 <= version <= 4:
        raise bad(src, f"SPZ version {version} is not supported (expected 1..4)")
    if deg not in SH_DIM:
        raise bad(src, f"SPZ SH degree {deg} (expected 0..4)")
    if frac > 24:
        raise bad(src, f"SPZ fractional bits {frac} (expected 0..24)")
    check_count(src, n, limits)
    sh_dim = SH_DIM[deg]
    sizes = _block_sizes(n, version, sh_dim)
    sh_range = (-1.0, 1.0)
    if version >= 4:
        if legacy:
            raise bad(src, "SPZ version 4 must not be gzip-wrapped")
        blocks = _v4_blocks(raw, src, sizes, sh_dim, flags)
        if flags & FLAG_EXTENSIONS:
            toc = struct.unpack_from("<I", raw, 16)[0]
            sh_range = _parse_extensions(raw[32:toc], src, legacy=False)
    else:
        need = 16 + sum(sizes)
        if len(raw) < need:
            raise bad(src, f"SPZ data truncated: {len(raw)} bytes, its header declares {need}")
        ext = len(raw) - need
        if ext and not flags & FLAG_EXTENSIONS:
            raise bad(src, f"SPZ data has {ext} bytes more than its header declares")
        if flags & FLAG_EXTENSIONS:
            sh_range = _parse_extensions(raw[16:16 + ext], src, legacy=True)
        blocks, off = [], 16 + ext
        for s in sizes:
            blocks.append(np.frombuffer(raw, np.uint8, s, off))
            off += s
    scene = _unpack(blocks, n, version, sh_dim, frac, sh_range, src)
    return drop_nonfinite(rotate_x180(scene) if rub else scene, src)


def _v4_blocks(raw: bytes, src: str | Path, sizes: list[int], sh_dim: int,
               flags: int) -> list[np.ndarray]:
    import imagecodecs

    if len(raw) < 32:
        raise bad(src, "SPZ v4 header is truncated")
    n_streams = raw[15]
    (toc,) = struct.unpack_from("<I", raw, 16)
    want_streams = 6 if sh_dim else 5
    if n_streams != want_streams:
        raise bad(src, f"SPZ v4 has {n_streams} streams (expected {want_streams})")
    if toc < 32 or (toc != 32 and not flags & FLAG_EXTENSIONS):
        raise bad(src, f"SPZ v4 table of contents at byte {toc} (expected 32)")
    off = toc + 16 * n_streams
    if off > len(raw):
        raise bad(src, "SPZ v4 table of contents is truncated")
    blocks = []
    for i in range(n_streams):
        csize, usize = struct.unpack_from("<QQ", raw, toc + 16 * i)
        if usize != sizes[i]:
            raise bad(src, f"SPZ v4 stream {i} declares {usize} bytes, its header implies "
                           f"{sizes[i]}")
        if off + csize > len(raw):
            raise bad(src, f"SPZ v4 stream {i} is truncated")
        if usize == 0:
            blocks.append(np.zeros(0, np.uint8))
            off += csize
            continue
        try:
            # out=usize: the decoder may not write (or allocate) more than the block's size
            out = imagecodecs.zstd_decode(raw[off:off + csize], out=usize)
        except Exception as e:  # imagecodecs raises its own ZstdError (not a stable type)
            raise bad(src, f"SPZ v4 stream {i} is corrupt ({str(e)[:80]})") from None
        if len(out) != usize:
            raise bad(src, f"SPZ v4 stream {i} holds {len(out)} bytes, not {usize}")
        blocks.append(np.frombuffer(out, np.uint8))
        off += csize
    if len(blocks) == 5:
        blocks.append(np.zeros(0, np.uint8))  # degree 0: no SH stream
    return blocks


def _unpack(blocks: list[np.ndarray], n: int, version: int, sh_dim: int, frac: int,
            sh_range: tuple[float, float], src: str | Path) -> SplatScene:
    pos_b, alpha_b, color_b, scale_b, rot_b, sh_b = blocks
    if version == 1:
        means = np.frombuffer(pos_b.tobytes(), "<f2").reshape(n, 3).astype(np.float32)
    else:
        b = pos_b.reshape(n, 3, 3).astype(np.int32)
        fixed = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        fixed = (fixed ^ 0x800000) - 0x800000  # sign-extend 24 -> 32 bits
        means = (fixed.astype(np.float64) / (1 << frac)).astype(np.float32)
    scales = (scale_b.reshape(n, 3).astype(np.float32) / 16.0 - 10.0).astype(np.float32)
    sh_dc = ((color_b.reshape(n, 3).astype(np.float32) / 255.0 - 0.5) / COLOR_SCALE)
    if version >= 3:
        comp = np.frombuffer(rot_b.tobytes(), "<u4").astype(np.int64)
        largest = comp >> 30
        vals = np.empty((n, 3))
        for j, shift in enumerate((20, 10, 0)):  # stored in index order, first in the top bits
            f = (comp >> shift) & 0x3FF
            mag = SQRT1_2 * (f & 0x1FF) / 511.0
            vals[:, j] = np.where(f >> 9, -mag, mag)
        xyzw = np.empty((n, 4))
        slots = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
        xyzw[np.arange(n)[:, None], slots] = vals
        xyzw[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - (vals * vals).sum(axis=1)))
    else:
        xyz = rot_b.reshape(n, 3).astype(np.float64) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(axis=1)))
        xyzw = np.concatenate([xyz, w[:, None]], axis=1)
    quats = xyzw[:, [3, 0, 1, 2]].astype(np.float32)  # (x, y, z, w) -> the PLY's (w, x, y, z)
    sh = sh_b.reshape(n, sh_dim, 3).astype(np.float32)
    lo, hi = sh_range
    if (lo, hi) == (-1.0, 1.0):
        sh = (sh - 128.0) / 128.0
    else:
        sh = lo + sh / 255.0 * (hi - lo)
    if sh_dim > 15:
        warnings.warn(f"{src}: SH degree 4 is beyond the 3DGS degree 3; its band 4 is dropped",
                      stacklevel=3)
        sh = sh[:, :15]
    return SplatScene(means=means, scales=scales, quats=quats, opacities=logit_u8(alpha_b),
                      sh_dc=sh_dc.astype(np.float32),
                      sh_rest=np.ascontiguousarray(sh, dtype=np.float32))


def read_spz(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS,
             rub: bool = False) -> SplatScene:
    return decode_spz(load(path), path, limits, rub=rub)


def _quantize_sh(v: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = np.clip(np.round(v.astype(np.float64) * 128.0) + 128.0, 0, 255).astype(np.int64)
    return np.clip((q + bucket // 2) // bucket * bucket, 0, 255).astype(np.uint8)


def _pack_smallest_three(q_wxyz: np.ndarray) -> np.ndarray:
    q = normalize_quats(q_wxyz)[:, [1, 2, 3, 0]]  # -> (x, y, z, w)
    n = len(q)
    largest = np.argmax(np.abs(q), axis=1)
    negate = q[np.arange(n), largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        neg = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        mag = np.minimum(np.floor(511.0 * np.abs(q[:, i]) / SQRT1_2 + 0.5), 511).astype(np.uint32)
        packed = (comp << np.uint32(10)) | (neg << np.uint32(9)) | mag
        comp = np.where(largest == i, comp, packed)
    return comp.astype("<u4")


def encode_spz(scene: SplatScene, version: int = 3, sh1_bits: int = 5, sh_rest_bits: int = 4,
               antialiased: bool = False, rub: bool = False, zstd_level: int = 12) -> bytes:
    """``.spz`` bytes of ``scene``.

    ``version`` 3 (default: one gzip stream, read by every SPZ viewer), 4 (zstd streams, the
    newest; splat-transform ≥ 3.x and Niantic's library ≥ 3.0 read it) or 2 (8-bit rotations).
    Positions use 12 fractional bits, fewer when a coordinate would not fit 24 bits (the header
    records the count). ``sh1_bits`` / ``sh_rest_bits`` (1..8) set the SH buckets; the decoder
    needs no note of them. ``rub``: store in Niantic's RUB axes (see the module notes)."""
    if version not in (2, 3, 4):
        raise InputError(f"SPZ version {version} cannot be written (2, 3 or 4)")
    if not (1 <= sh1_bits <= 8 and 1 <= sh_rest_bits <= 8):
        raise InputError("SPZ SH bits must be in 1..8")
    require_finite(scene, "SPZ")
    if rub:
        scene = rotate_x180(scene)
    n, k = scene.n, scene.sh_rest.shape[1]
    deg = scene.sh_degree
    top = float(np.abs(scene.means).max()) if n else 0.0
    frac = 12
    while frac > 0 and round(top * (1 << frac)) > (1 << 23) - 1:
        frac -= 1  # fewer fractional bits rather than a wrapped (mirrored) coordinate
    if round(top * (1 << frac)) > (1 << 23) - 1:
        raise InputError(f"cannot write SPZ: a coordinate ({top:.3g}) exceeds the 24-bit range")
    fixed = np.round(scene.means.astype(np.float64) * (1 << frac)).astype(np.int64)
    pos = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], axis=-1)
    alphas = np.clip(np.round(sigmoid(scene.opacities) * 255.0), 0, 255).astype(np.uint8)
    colors = np.clip(np.round(scene.sh_dc.astype(np.float64) * (COLOR_SCALE * 255.0) + 127.5),
                     0, 255).astype(np.uint8)
    scales = np.clip(np.round((scene.scales.astype(np.float64) + 10.0) * 16.0), 0,
                     255).astype(np.uint8)
    if version >= 3:
        rot = _pack_smallest_three(scene.quats).tobytes()
    else:
        q = normalize_quats(scene.quats)[:, [1, 2, 3, 0]]
        q = q * np.where(q[:, 3:] < 0, -127.5, 127.5) + 127.5
        rot = np.clip(np.round(q[:, :3]), 0, 255).astype(np.uint8).tobytes()
    sh = np.empty((n, k, 3), np.uint8)
    if k:
        sh[:, :3] = _quantize_sh(scene.sh_rest[:, :3], sh1_bits)
        sh[:, 3:] = _quantize_sh(scene.sh_rest[:, 3:], sh_rest_bits)
    blocks = [pos.astype(np.uint8).tobytes(), alphas.tobytes(), colors.tobytes(),
              scales.tobytes(), rot, sh.tobytes()]
    flags = FLAG_ANTIALIASED if antialiased else 0
    if version < 4:
        head = struct.pack("<IIIBBBB", MAGIC, version, n, deg, frac, flags, 0)
        # mtime=0: the same scene always gives the same bytes
        return gzip.compress(head + b"".join(blocks), compresslevel=6, mtime=0)
    import imagecodecs

    streams = [imagecodecs.zstd_encode(b, level=zstd_level) for b in blocks[:6 if k else 5]]
    head = struct.pack("<IIIBBBBI", MAGIC, 4, n, deg, frac, flags, len(streams), 32) + bytes(12)
    toc = b"".join(struct.pack("<QQ", len(s), len(b)) for s, b in zip(streams, blocks))
    return head + toc + b"".join(streams)


def write_spz(path: str | Path, scene: SplatScene, force: bool = False, version: int = 3,
              **kw) -> None:
    """Write ``scene`` as ``.spz`` atomically (see :func:`encode_spz` for the options)."""
    write_atomic(path, encode_spz(scene, version=version, **kw), force=force)
