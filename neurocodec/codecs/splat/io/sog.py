"""PlayCanvas SOG v2 ("spatially ordered Gaussians"): lossless WebP textures plus
``meta.json``, either as a folder or bundled in one zip (``.sog``).

Addressing: a SOG folder is read from the folder itself or from its ``meta.json``; it is
written by naming ``DIR/meta.json`` (the folder ``DIR`` is created, or replaced with
``force`` when it already holds a SOG). A ``.sog`` path is the zip bundle (the same files at
its root).

Every texture is ``W x H`` RGBA, one texel per Gaussian in row-major order (``W`` a multiple
of 4 near ``sqrt(N)``, ``H`` a multiple of 4), Gaussians sorted along a Morton curve:

* ``means_l.webp`` / ``means_u.webp``: low / high bytes of 16-bit positions after the
  transform ``t = sign(x) * ln(1 + |x|)``, ``t = min + (max - min) * q / 65535`` per axis
  (``meta.means.mins/maxs``) — steps of range/65535 in ``t``, finer near the origin;
* ``scales.webp``: RGB are indices into ``meta.scales.codebook`` (256 log-scales shared by
  the three axes);
* ``quats.webp``: the unit (w, x, y, z) quaternion, largest |component| made positive and
  dropped (A = 252 + its index), the other three in index order as
  ``round(255 * (v * sqrt(2) / 2 + 0.5))`` (steps of 0.0055 over ±1/sqrt(2));
* ``sh0.webp``: RGB index ``meta.sh0.codebook`` (256 f_dc values), A = ``sigmoid(opacity)``
  in 1/255 steps;
* ``shN_labels.webp`` (R + 256 G = a palette index per Gaussian) and ``shN_centroids.webp``
  (``meta.shN.count`` palette entries, 64 per row, each ``K`` texels wide, RGB index
  ``meta.shN.codebook``, 256 values): the higher SH bands, vector quantized.

The writer fits the codebooks by 1-D k-means and the SH palette by two-level k-means (256
coarse clusters split in proportion to their size, up to 65,536 entries; a scene of at most
65,536 Gaussians gets one entry per Gaussian). Quantization is deterministic.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from neurocodec.codecs.container import umask_mode, write_atomic
from neurocodec.errors import InputError

from ._common import (
    DEFAULT_LIMITS,
    SH_COEFFS,
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

FILES = ("means_l.webp", "means_u.webp", "scales.webp", "quats.webp", "sh0.webp",
         "shN_centroids.webp", "shN_labels.webp")
MAX_PALETTE = 65536
# A texture may be padded (a multiple-of-4 grid; other writers use powers of two); anything
# far beyond the count is not a SOG texture, and decoding it would only waste memory.
MAX_TEXEL_SLACK = 1 << 16
MAX_MEMBER = 1 << 30  # no SOG texture or meta.json comes near 1 GB
_SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------------- reading

def _webp_size(b: bytes, name: str, src: str | Path) -> tuple[int, int]:
    """(width, height) from a WebP's RIFF header, read before decoding so a texture's size
    is checked first."""
    if len(b) < 30 or b[:4] != b"RIFF" or b[8:12] != b"WEBP":
        raise bad(src, f"SOG {name} is not a WebP image")
    kind = b[12:16]
    if kind == b"VP8L":
        if b[20] != 0x2F:
            raise bad(src, f"SOG {name} has a bad lossless WebP signature")
        bits = int.from_bytes(b[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    if kind == b"VP8 " and b[23:26] == b"\x9d\x01\x2a":
        return (int.from_bytes(b[26:28], "little") & 0x3FFF,
                int.from_bytes(b[28:30], "little") & 0x3FFF)
    raise bad(src, f"SOG {name} is not a WebP image ({kind!r} chunk)")


def _texture(get: Callable[[str], bytes], name: str, count: int, src: str | Path,
             width: int | None = None, max_texels: int | None = None) -> np.ndarray:
    """``[texels, 4]`` uint8 RGBA of a texture holding at least ``count`` texels (and at most
    ``max_texels``, by default about 4 per Gaussian)."""
    import imagecodecs

    b = get(name)
    w, h = _webp_size(b, name, src)
    if width is not None and w != width:
        raise bad(src, f"SOG {name} is {w} texels wide, expected {width}")
    if w * h < count:
        raise bad(src, f"SOG {name} has {w}x{h} texels, fewer than the {count} it must hold")
    if w * h > (4 * count + MAX_TEXEL_SLACK if max_texels is None else max_texels):
        raise bad(src, f"SOG {name} has {w}x{h} texels, far more than the {count} it holds")
    try:
        img = imagecodecs.webp_decode(b)
    except Exception as e:  # imagecodecs' WebpError
        raise bad(src, f"SOG {name} cannot be decoded ({str(e)[:80]})") from None
    if img.ndim != 3 or img.shape[:2] != (h, w) or img.shape[2] not in (3, 4):
        raise bad(src, f"SOG {name} decodes to an unexpected shape {img.shape}")
    if img.shape[2] == 3:  # libwebp drops an all-opaque alpha channel
        img = np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], axis=2)
    return img.reshape(-1, 4)


def _num_list(v: object, what: str, src: str | Path, length: int | None = None) -> np.ndarray:
    ok = (isinstance(v, list) and (length is None or len(v) == length) and len(v) > 0
          and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v))
    if not ok:
        raise bad(src, f"SOG meta.json: {what} must be a list of "
                       f"{length if length else 'some'} numbers")
    a = np.asarray(v, np.float64)
    if not np.isfinite(a).all():
        raise bad(src, f"SOG meta.json: {what} holds a non-finite number")
    return a


def _section(meta: dict, key: str, n_files: int, src: str | Path) -> dict:
    sec = meta.get(key)
    if not isinstance(sec, dict):
        raise bad(src, f"SOG meta.json has no {key!r} section")
    files = sec.get("files")
    if (not isinstance(files, list) or len(files) != n_files
            or not all(isinstance(f, str) for f in files)):
        raise bad(src, f"SOG meta.json: {key}.files must list {n_files} file names")
    for f in files:
        # plain names only: a meta.json must not reach outside its folder or zip
        if (not f or "/" in f or "\\" in f or f in (".", "..") or len(f) > 255
                or not f.isprintable()):
            raise bad(src, f"SOG meta.json: {key}.files holds a bad name {f[:40]!r}")
    return sec


def _codebook(sec: dict, key: str, src: str | Path) -> np.ndarray:
    cb = _num_list(sec.get("codebook"), f"{key}.codebook", src)
    if len(cb) > 256:
        raise bad(src, f"SOG meta.json: {key}.codebook has {len(cb)} entries (at most 256)")
    return cb.astype(np.float32)


def _lookup(cb: np.ndarray, idx: np.ndarray, key: str, src: str | Path) -> np.ndarray:
    if len(cb) < 256 and idx.size and int(idx.max()) >= len(cb):
        raise bad(src, f"SOG {key} texture indexes past its {len(cb)}-entry codebook")
    return cb[idx]


def decode_sog(meta_bytes: bytes, get: Callable[[str], bytes], src: str | Path = "<sog>",
               limits: DecodeLimits = DEFAULT_LIMITS) -> SplatScene:
    """A SOG v2 scene from its ``meta.json`` and a function giving each file's bytes."""
    try:
        meta = json.loads(meta_bytes)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(src, f"SOG meta.json is not JSON ({str(e)[:60]})") from None
    except RecursionError:  # a crafted meta.json of thousands of nested arrays
        raise bad(src, "SOG meta.json is nested too deeply") from None
    if not isinstance(meta, dict):
        raise bad(src, "SOG meta.json is not a JSON object")
    version = meta.get("version")
    if version is None:
        raise bad(src, "SOG v1 (meta.json without 'version') is not supported; convert it to "
                       "v2 with splat-transform")
    if version != 2:
        raise bad(src, f"SOG version {str(version)[:20]} is not supported (expected 2)")
    n = meta.get("count")
    if type(n) is not int or n < 0:
        raise bad(src, "SOG meta.json: count must be a non-negative integer")
    check_count(src, n, limits)

    means = _section(meta, "means", 2, src)
    mins = _num_list(means.get("mins"), "means.mins", src, 3)
    maxs = _num_list(means.get("maxs"), "means.maxs", src, 3)
    lo = _texture(get, means["files"][0], n, src)[:n, :3].astype(np.int64)
    hi = _texture(get, means["files"][1], n, src)[:n, :3].astype(np.int64)
    t = mins + (maxs - mins) * ((lo | (hi << 8)) / 65535.0)
    pos = np.sign(t) * np.expm1(np.abs(t))

    qsec = _section(meta, "quats", 1, src)
    q = _texture(get, qsec["files"][0], n, src)[:n]
    tag = q[:, 3].astype(np.int64) - 252
    invalid = (tag < 0) | (tag > 3)
    if invalid.any():
        warnings.warn(f"{src}: {int(invalid.sum())} SOG quaternions carry an invalid tag; "
                      f"set to identity", stacklevel=2)
    tag = np.where(invalid, 0, tag)
    small = (q[:, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / _SQRT2
    quats = np.zeros((n, 4))
    slots = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[tag]
    quats[np.arange(n)[:, None], slots] = small
    quats[np.arange(n), tag] = np.sqrt(np.maximum(0.0, 1.0 - (small * small).sum(axis=1)))
    quats[invalid] = (1.0, 0.0, 0.0, 0.0)

    ssec = _section(meta, "scales", 1, src)
    scb = _codebook(ssec, "scales", src)
    scales = _lookup(scb, _texture(get, ssec["files"][0], n, src)[:n, :3], "scales", src)

    csec = _section(meta, "sh0", 1, src)
    ccb = _codebook(csec, "sh0", src)
    c = _texture(get, csec["files"][0], n, src)[:n]
    sh_dc = _lookup(ccb, c[:, :3], "sh0", src)
    opac = logit_u8(c[:, 3])

    sh_rest = np.zeros((n, 0, 3), np.float32)
    if meta.get("shN") is not None:
        nsec = _section(meta, "shN", 2, src)
        bands, count = nsec.get("bands"), nsec.get("count")
        if type(bands) is not int or bands not in (1, 2, 3):
            raise bad(src, "SOG meta.json: shN.bands must be 1, 2 or 3")
        if type(count) is not int or not 1 <= count <= MAX_PALETTE:
            raise bad(src, f"SOG meta.json: shN.count must be in 1..{MAX_PALETTE}")
        k = SH_COEFFS[bands]
        ncb = _codebook(nsec, "shN", src)
        import imagecodecs  # noqa: F401  (fail here, not mid-way, if it is missing)

        cen_bytes = get(nsec["files"][0])
        cw, ch = _webp_size(cen_bytes, nsec["files"][0], src)
        if cw != 64 * k:
            raise bad(src, f"SOG {nsec['files'][0]} is {cw} texels wide, expected {64 * k} "
                           f"for {bands} SH bands")
        if ch > -(-count // 64):
            raise bad(src, f"SOG {nsec['files'][0]} has {ch} rows for {count} palette entries")
        cen = _texture(lambda _: cen_bytes, nsec["files"][0], 0, src, width=64 * k,
                       max_texels=cw * ch)
        entries = cen.reshape(ch * 64, k, 4)[:, :, :3]  # entry i: row i // 64, texels i % 64 * K
        labels_tex = _texture(get, nsec["files"][1], n, src)[:n]
        labels = labels_tex[:, 0].astype(np.int64) | (labels_tex[:, 1].astype(np.int64) << 8)
        usable = min(count, len(entries))
        out = labels >= usable
        if out.any():
            warnings.warn(f"{src}: {int(out.sum())} SOG SH labels point past the palette; "
                          f"their higher SH bands are zero", stacklevel=2)
        sh_rest = np.zeros((n, k, 3), np.float32)
        keep = ~out
        sh_rest[keep] = _lookup(ncb, entries[labels[keep]], "shN", src)

    scene = SplatScene(means=pos.astype(np.float32), scales=scales.astype(np.float32),
                       quats=quats.astype(np.float32), opacities=opac,
                       sh_dc=sh_dc.astype(np.float32), sh_rest=sh_rest)
    return drop_nonfinite(scene, src)


def _zip_getter(data: bytes, src: str | Path) -> tuple[bytes, Callable[[str], bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
            NotImplementedError, RuntimeError) as e:  # NotImplementedError: "zip file version 8.4"
        raise bad(src, f"not a SOG bundle: cannot open it as a zip ({str(e)[:60]})") from None

    def get(name: str) -> bytes:
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise bad(src, f"SOG bundle has no {name[:60]!r}") from None
        # zipfile stops at the declared size, so checking it bounds what is decompressed
        if info.file_size > MAX_MEMBER or info.file_size > 1100 * info.compress_size + 1024:
            raise bad(src, f"SOG bundle member {name!r} declares an implausible size")
        try:
            return zf.read(info)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                NotImplementedError, RuntimeError) as e:
            raise bad(src, f"SOG bundle member {name!r} is corrupt ({str(e)[:60]})") from None

    return get("meta.json"), get


def read_sog(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> SplatScene:
    """Read a SOG bundle (``.sog`` zip), a SOG folder, or a folder's ``meta.json``."""
    p = Path(path)
    if p.is_dir() or p.name == "meta.json" or p.suffix.lower() == ".json":
        folder, meta_path = (p, p / "meta.json") if p.is_dir() else (p.parent, p)

        def get(name: str) -> bytes:
            return load(folder / name)

        return decode_sog(load(meta_path), get, meta_path, limits)
    return decode_sog_bundle(load(p), p, limits)


def decode_sog_bundle(data: bytes, src: str | Path = "<sog>",
                      limits: DecodeLimits = DEFAULT_LIMITS) -> SplatScene:
    """A bundled ``.sog`` (zip) from its bytes."""
    meta, get = _zip_getter(data, src)
    return decode_sog(meta, get, src, limits)


# ----------------------------------------------------------------------------------- writing

def _spread10(v: np.ndarray) -> np.ndarray:
    """Bits 0..9 of ``v`` moved to bits 0, 3, 6, ..., 27 (for a 3-D Morton code)."""
    v = v.astype(np.uint64) & np.uint64(0x3FF)
    for shift, mask in ((16, 0x30000FF), (8, 0x300F00F), (4, 0x30C30C3), (2, 0x9249249)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def morton_order(means: np.ndarray) -> np.ndarray:
    """``int64 [N]``: the permutation that sorts Gaussians along a 30-bit Morton curve of
    their positions (the order :func:`encode_sog_files` writes them in)."""
    if len(means) == 0:
        return np.zeros(0, np.int64)
    m = means.astype(np.float64)
    lo, span = m.min(axis=0), np.ptp(m, axis=0)
    span[span == 0] = 1.0
    q = np.clip(np.floor((m - lo) / span * 1023.0), 0, 1023)
    code = (_spread10(q[:, 0]) << np.uint64(2)) | (_spread10(q[:, 1]) << np.uint64(1)) | \
        _spread10(q[:, 2])
    return np.argsort(code, kind="stable")


def kmeans1d(values: np.ndarray, k: int = 256, iters: int = 16
             ) -> tuple[np.ndarray, np.ndarray]:
    """A ``k``-entry float32 codebook (sorted; padded with its last value when the data has
    fewer distinct values) and uint8 labels minimising squared error (Lloyd from quantiles).

    In 1-D a cluster is an interval of the sorted values, so each Lloyd step is ``k`` binary
    searches and prefix-sum differences, not a pass over the data."""
    v = values.astype(np.float64).ravel()
    srt = np.sort(v)
    uniq = np.unique(srt)
    if len(uniq) <= k:
        c = uniq
    else:
        c = np.unique(np.quantile(srt, (np.arange(k) + 0.5) / k))
        csum = np.concatenate([[0.0], np.cumsum(srt)])
        for _ in range(iters):
            edges = np.concatenate([[0], np.searchsorted(srt, (c[1:] + c[:-1]) / 2.0, "right"),
                                    [len(srt)]])
            cnt = np.diff(edges)
            sums = csum[edges[1:]] - csum[edges[:-1]]
            c = np.unique(np.where(cnt > 0, sums / np.maximum(cnt, 1), c))
    cb = c.astype(np.float32)
    cb64 = cb.astype(np.float64)
    lab = np.searchsorted((cb64[1:] + cb64[:-1]) / 2.0, v)
    cb = np.concatenate([cb, np.full(k - len(cb), cb[-1], np.float32)]) if len(cb) < k else cb
    return cb, lab.astype(np.uint8).reshape(values.shape)


def _assign(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Nearest centroid of each row, in blocks (bounded memory). float32 distances: twice as
    fast as float64, and a near-tie that flips only swaps two equally good centroids."""
    c32 = c.astype(np.float32)
    cc = (c32 * c32).sum(axis=1)
    out = np.empty(len(x), np.int64)
    for i in range(0, len(x), 16384):
        xb = x[i:i + 16384].astype(np.float32)
        out[i:i + 16384] = np.argmin(cc[None, :] - 2.0 * (xb @ c32.T), axis=1)
    return out


def _kmeans(x: np.ndarray, k: int, iters: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    c = x[np.sort(rng.choice(len(x), k, replace=False))].copy()
    lab = _assign(x, c)
    for _ in range(iters):
        order = np.argsort(lab, kind="stable")
        ls = lab[order]
        starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
        sums = np.add.reduceat(x[order], starts, axis=0)
        cnt = np.diff(np.r_[starts, len(ls)])
        c[ls[starts]] = sums / cnt[:, None]  # empty clusters keep their centroid
        lab = _assign(x, c)
    return c, lab


def sh_palette(x: np.ndarray, max_entries: int = MAX_PALETTE, iters: int = 4
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(palette [P, D], labels [N])`` vector-quantizing the rows of ``x``: the rows
    themselves when ``N <= max_entries``, else two-level k-means (256 coarse clusters, each
    split into sub-clusters in proportion to its size, at most 1,024)."""
    x = x.astype(np.float64)
    n = len(x)
    if n <= max_entries:
        return x, np.arange(n)
    rng = np.random.default_rng(0)
    k1 = 256
    sample = x[np.sort(rng.choice(n, min(n, 64 * k1), replace=False))]
    c1, _ = _kmeans(sample, k1, iters, rng)
    lab1 = _assign(x, c1)
    budget = max_entries - k1  # each cluster gets >= 1 entry: the total stays <= max_entries
    palette, labels, base = [], np.empty(n, np.int64), 0
    for j in range(k1):
        idx = np.flatnonzero(lab1 == j)
        if len(idx) == 0:
            continue
        kj = int(min(len(idx), 1024, max(1, budget * len(idx) // n)))
        if kj == len(idx):
            cj, lj = x[idx], np.arange(kj)
        else:
            cj, lj = _kmeans(x[idx], kj, iters, rng)
        palette.append(cj)
        labels[idx] = base + lj
        base += len(cj)
    return np.concatenate(palette), labels


def _grid(n: int) -> tuple[int, int]:
    w = int(math.ceil(math.sqrt(n) / 4.0)) * 4
    return w, int(math.ceil(n / w / 4.0)) * 4


def _webp(rgba: np.ndarray, w: int, h: int) -> bytes:
    import imagecodecs

    img = np.zeros((w * h, 4), np.uint8)
    img[:len(rgba)] = rgba
    # method 2 at the default effort: measured on real scenes as small as method 4 (the libwebp
    # default) and ~6x faster
    return bytes(imagecodecs.webp_encode(img.reshape(h, w, 4), lossless=True, level=75, method=2))


def encode_sog_files(scene: SplatScene, morton: bool = True) -> dict[str, bytes]:
    """``{file name: bytes}`` of a SOG v2 scene (``meta.json`` and its WebP textures).

    With ``morton`` (default) Gaussians are written in :func:`morton_order`, which makes the
    textures smaller; the reader returns them in that order."""
    require_finite(scene, "SOG")
    n = scene.n
    if n == 0:
        raise InputError("cannot write SOG: the scene has no Gaussians")
    s = scene.subset(morton_order(scene.means)) if morton else scene
    w, h = _grid(n)
    files: dict[str, bytes] = {}
    opaque = np.full((n, 1), 255, np.uint8)

    t = np.sign(s.means.astype(np.float64)) * np.log1p(np.abs(s.means.astype(np.float64)))
    mins, maxs = t.min(axis=0), t.max(axis=0)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    u = np.clip(np.round((t - mins) / span * 65535.0), 0, 65535).astype(np.int64)
    files["means_l.webp"] = _webp(np.concatenate([(u & 0xFF).astype(np.uint8), opaque], 1), w, h)
    files["means_u.webp"] = _webp(np.concatenate([(u >> 8).astype(np.uint8), opaque], 1), w, h)

    q = normalize_quats(s.quats)
    big = np.argmax(np.abs(q), axis=1)
    q *= np.where(q[np.arange(n), big] < 0, -1.0, 1.0)[:, None]
    slots = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[big]
    small = q[np.arange(n)[:, None], slots]
    qb = np.clip(np.round(255.0 * (small * (_SQRT2 / 2.0) + 0.5)), 0, 255).astype(np.uint8)
    files["quats.webp"] = _webp(np.concatenate([qb, (252 + big).astype(np.uint8)[:, None]], 1),
                                w, h)

    scb, slab = kmeans1d(s.scales)
    files["scales.webp"] = _webp(np.concatenate([slab, opaque], 1), w, h)
    ccb, clab = kmeans1d(s.sh_dc)
    alpha = np.clip(np.round(sigmoid(s.opacities) * 255.0), 0, 255).astype(np.uint8)
    files["sh0.webp"] = _webp(np.concatenate([clab, alpha[:, None]], 1), w, h)

    meta: dict = {
        "version": 2, "asset": {"generator": "neurocodec"}, "count": n,
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(),
                  "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": scb.tolist(), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": ccb.tolist(), "files": ["sh0.webp"]},
    }
    k = s.sh_rest.shape[1]
    if k:
        pal, lab = sh_palette(s.sh_rest.reshape(n, 3 * k))
        p = len(pal)
        ncb, plab = kmeans1d(pal)
        plab = plab.reshape(p, k, 3)
        rows = -(-p // 64)
        cen = np.zeros((rows * 64, k, 4), np.uint8)
        cen[:p, :, :3] = plab
        cen[:, :, 3] = 255
        files["shN_centroids.webp"] = _webp(cen.reshape(-1, 4), 64 * k, rows)
        lab_rgba = np.stack([lab & 0xFF, lab >> 8, np.zeros(n, np.int64),
                             np.full(n, 255)], axis=1).astype(np.uint8)
        files["shN_labels.webp"] = _webp(lab_rgba, w, h)
        meta["shN"] = {"count": p, "bands": s.sh_degree, "codebook": ncb.tolist(),
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}
    files = {"meta.json": json.dumps(meta, separators=(",", ":")).encode(), **files}
    return files


def encode_sog(scene: SplatScene, morton: bool = True) -> bytes:
    """The bundled ``.sog`` (a zip of :func:`encode_sog_files`, stored, fixed timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in encode_sog_files(scene, morton).items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _write_folder(folder: Path, files: dict[str, bytes], force: bool) -> None:
    """Write ``files`` as the folder ``folder`` through a temporary sibling folder and a
    rename: a reader never sees a half-written SOG, and a failure leaves nothing behind."""
    if folder.resolve() == Path.cwd().resolve() or not folder.name:
        raise InputError(f"{folder}: name a SOG folder to write, as DIR/meta.json")
    parent = folder.parent
    if not parent.is_dir():
        raise InputError(f"{parent}: output directory does not exist")
    old = None
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir() or folder.is_symlink():
            raise InputError(f"{folder}: exists and is not a folder")
        inside = list(folder.iterdir())
        if inside:
            if not force:
                raise InputError(f"{folder}: output exists (use --force to overwrite)")
            if (not (folder / "meta.json").is_file()
                    or any(not f.is_file() or f.suffix not in (".webp", ".json", ".txt")
                           for f in inside)):
                # never delete a folder of other things because its name was given
                raise InputError(f"{folder}: exists and is not a SOG folder; not replacing it")
            old = folder
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise InputError(f"{parent}: cannot write ({e.strerror})") from None
    try:
        os.chmod(tmp, umask_mode(folder=True))  # not mkdtemp's 0700
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if old is not None:
            trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=parent))
            os.replace(folder, trash / "sog")
            os.replace(tmp, folder)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, folder)  # replaces an empty folder too
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_sog(path: str | Path, scene: SplatScene, force: bool = False,
              morton: bool = True) -> None:
    """``X.sog`` → the zip bundle; ``DIR/meta.json`` → the folder ``DIR``."""
    p = Path(path)
    if p.name == "meta.json":
        if p.parent.exists() and p.parent.is_dir() and not force and any(p.parent.iterdir()):
            raise InputError(f"{p.parent}: output exists (use --force to overwrite)")
        _write_folder(p.parent, encode_sog_files(scene, morton), force)
    else:
        write_atomic(p, encode_sog(scene, morton), force=force)
