"""Small valid files the fuzzer mutates: made once per process (``functools.cache``) from the
data shipped in the package (``neurocodec/data``), so one decode of any of them takes
milliseconds. When the repository's ``tests/data`` is present (a checkout), its splat
samples written by other tools (PlayCanvas splat-transform, Niantic's SPZ, SuperSplat) join
the seeds: layouts our writers do not produce.

Every seed is deterministic: fixed crops, fixed numpy/torch seeds, one thread.
"""

from __future__ import annotations

import io
import math
from functools import cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
REPO_DATA = Path(__file__).resolve().parent.parent.parent / "tests" / "data"


def repo_samples(pattern: str, folder: str = "splat") -> list[bytes]:
    d = REPO_DATA / folder
    return [p.read_bytes() for p in sorted(d.glob(pattern)) if p.is_file()] if d.is_dir() else []


# ------------------------------------------------------------------------------ images

@cache
def photo() -> np.ndarray:
    """uint8 ``[24, 40, 3]``: a textured crop of kodim23."""
    from PIL import Image

    with Image.open(DATA / "kodim23.png") as im:
        return np.asarray(im.convert("RGB"))[200:224, 300:340].copy()


@cache
def image_codec(name: str):
    from neurocodec.codecs.registry import load_codec

    return load_codec(name)


@cache
def image_ncb(name: str) -> list[bytes]:
    """Files of a shipped image model: an odd-sized crop and a tiny one, two qualities."""
    c = image_codec(name)
    img = photo()
    return [c.encode(img[:21, :35].copy(), 1), c.encode(img[:8, :12].copy(), c.qualities[-1])]


@cache
def image_files() -> list[tuple]:
    """``(extension, bytes[, frame])``: the crop in every format and mode the image reader
    meets."""
    from PIL import Image

    img = Image.fromarray(photo())
    out = []

    def add(ext: str, im: Image.Image, fmt: str, **kw) -> None:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **kw)
        out.append((ext, buf.getvalue()))

    add(".png", img, "PNG")
    add(".png", img.convert("RGBA"), "PNG")
    add(".png", img.convert("P"), "PNG")
    add(".png", Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257), "PNG")
    add(".png", img.convert("LA"), "PNG")
    add(".jpg", img, "JPEG", quality=80)
    add(".jpg", img, "JPEG", quality=60, progressive=True)
    add(".jpg", img.convert("CMYK"), "JPEG")
    add(".webp", img, "WEBP", quality=70)
    add(".webp", img, "WEBP", lossless=True)
    add(".gif", img.convert("P"), "GIF")
    frames = [img.convert("P"), img.rotate(90).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out.append((".gif", buf.getvalue(), 1))  # an animation: read with frame=1
    add(".bmp", img, "BMP")
    add(".tif", img, "TIFF", compression="tiff_lzw")
    add(".ppm", img, "PPM")
    return out


# ------------------------------------------------------------------------------ video

@cache
def clip() -> np.ndarray:
    """uint8 ``[2, 16, 16, 3]`` from the bundled clip, read natively (no ffmpeg)."""
    raw = (DATA / "clip_8f_64x64.y4m").read_bytes()
    head, _, body = raw.partition(b"\n")
    assert b"W64" in head and b"H64" in head
    frame = 64 * 64 * 3 // 2
    out = []
    for t in range(2):
        start = body.index(b"FRAME\n", t * (frame + 6)) + 6
        y = np.frombuffer(body, np.uint8, 64 * 64, start).reshape(64, 64)[20:36, 20:36]
        out.append(np.repeat(y[..., None], 3, axis=2))
    return np.stack(out).copy()


@cache
def video_ncb(kind: str) -> list[bytes]:
    """Fitted for one epoch (the decoder's work does not depend on how well it fits)."""
    from neurocodec.codecs.video.codec import INRCodec

    c = INRCodec(kind)
    params = {"hnerv": 4200, "nerv": 5200}[kind]
    fit = {"epochs": 1, "progress": "off", "threads": 1}
    a = clip()
    return [c.encode(a, 0, params=params, **fit),
            c.encode(np.ascontiguousarray(a[:1]), 0, params=params + 800, **fit)]


def y4m(w: int, h: int, frames: int, chroma: str = "420jpeg", params: str = "") -> bytes:
    """A YUV4MPEG2 file written natively (planes from the crop)."""
    sub = {"420jpeg": 2 * ((w + 1) // 2) * ((h + 1) // 2), "420mpeg2": 2 * ((w + 1) // 2) *
           ((h + 1) // 2), "444": 2 * w * h, "mono": 0, "422": 2 * ((w + 1) // 2) * h}[chroma]
    src = photo().ravel()
    size = w * h + sub
    head = f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C{chroma}{params}\n".encode()
    body = b"".join(b"FRAME\n" + np.resize(np.roll(src, 7 * t), size).tobytes()
                    for t in range(frames))
    return head + body


@cache
def y4m_files() -> list[bytes]:
    return [y4m(16, 16, 2), y4m(15, 9, 1, "420mpeg2", " XCOLORRANGE=FULL"), y4m(8, 8, 1, "444"),
            y4m(8, 6, 2, "mono"), y4m(10, 4, 1, "422")]


@cache
def yuv_files() -> list[tuple[bytes, tuple[int, int]]]:
    """``(bytes, (W, H))`` of raw I420 clips."""
    src = photo().ravel()
    return [(np.resize(src, 2 * 384).tobytes(), (16, 16)),
            (np.resize(src, 15 * 9 + 2 * 8 * 5).tobytes(), (15, 9))]


# ------------------------------------------------------------------------------ splats

@cache
def seal() -> object:
    """The first 48 Gaussians of the bundled seal (a real scene, SH degree 0)."""
    from neurocodec.codecs.splat.io import read_scene

    s = read_scene(DATA / "seal_4k.ply")
    return s.subset(np.arange(48))


@cache
def synthetic(n: int, degree: int, seed: int = 0) -> object:
    """A random scene of ``n`` Gaussians with SH of ``degree`` (what the seal lacks)."""
    from neurocodec.codecs.splat.scene import SH_COEFFS, SplatScene

    r = np.random.default_rng(seed)
    f = np.float32
    return SplatScene(means=r.normal(0, 2, (n, 3)).astype(f),
                      scales=r.normal(-4, 1, (n, 3)).astype(f),
                      quats=r.normal(0, 1, (n, 4)).astype(f),
                      opacities=r.normal(0, 2, n).astype(f),
                      sh_dc=r.normal(0, 0.5, (n, 3)).astype(f),
                      sh_rest=r.normal(0, 0.2, (n, SH_COEFFS[degree], 3)).astype(f))


def scenes() -> list:
    return [seal(), synthetic(40, 3), synthetic(20, 1, 1)]


@cache
def gsc_ncb() -> list[bytes]:
    from neurocodec.codecs.splat.coder import SplatCoder

    c = SplatCoder()
    return [c.encode(seal(), 2), c.encode(synthetic(40, 3), 5), c.encode(synthetic(20, 1, 1), 0)]


def _big_endian_ply(data: bytes) -> bytes:
    """The same PLY in big-endian byte order (every property is a float)."""
    head, _, body = data.partition(b"end_header\n")
    return (head.replace(b"binary_little_endian", b"binary_big_endian") + b"end_header\n"
            + np.frombuffer(body, "<f4").astype(">f4").tobytes())


@cache
def ply_files() -> list[bytes]:
    from neurocodec.codecs.splat.io import encode_ply

    mine = [encode_ply(s) for s in scenes()]
    return mine + [_big_endian_ply(mine[1])] + [
        b for b in repo_samples("*.ply") if b"packed_position" not in b[:4096]][:2]


def compressed_ply(scene) -> bytes:
    """A PlayCanvas compressed PLY of ``scene`` (we have no writer: this one is for seeds)."""
    from neurocodec.codecs.splat.scene import SH_C0

    n, k = scene.n, scene.sh_rest.shape[1]
    chunks = -(-n // 256)
    ci = np.arange(n) // 256
    rgb = 0.5 + SH_C0 * scene.sh_dc.astype(np.float64)

    def boxes(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.stack([v[ci == c].min(axis=0) for c in range(chunks)])
        hi = np.stack([v[ci == c].max(axis=0) for c in range(chunks)])
        return lo, hi

    def pack(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        t = (v - lo[ci]) / np.where(hi > lo, hi - lo, 1.0)[ci]
        q = [np.clip(np.round(t[:, a] * ((1 << b) - 1)), 0, (1 << b) - 1).astype(np.uint32)
             for a, b in enumerate((11, 10, 11))]
        return (q[0] << 21) | (q[1] << 11) | q[2]

    m, s = scene.means.astype(np.float64), scene.scales.astype(np.float64)
    (mlo, mhi), (slo, shi), (clo, chi) = boxes(m), boxes(s), boxes(rgb)
    quat = scene.quats.astype(np.float64)
    quat = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    big = np.argmax(np.abs(quat), axis=1)
    quat *= np.where(quat[np.arange(n), big] < 0, -1.0, 1.0)[:, None]
    rot = big.astype(np.uint32) << 30
    for j, shift in enumerate((20, 10, 0)):
        slot = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[big, j]
        v = quat[np.arange(n), slot] / math.sqrt(2.0) + 0.5
        rot |= np.clip(np.round(v * 1023), 0, 1023).astype(np.uint32) << shift
    t = (rgb - clo[ci]) / np.where(chi > clo, chi - clo, 1.0)[ci]
    c8 = np.clip(np.round(t * 255), 0, 255).astype(np.uint32)
    a8 = np.clip(np.round(255 / (1 + np.exp(-scene.opacities.astype(np.float64)))), 0,
                 255).astype(np.uint32)
    color = (c8[:, 0] << 24) | (c8[:, 1] << 16) | (c8[:, 2] << 8) | a8
    names = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y",
             "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z", "min_r", "min_g",
             "min_b", "max_r", "max_g", "max_b"]
    chunk = np.concatenate([mlo, mhi, slo, shi, clo, chi], axis=1).astype("<f4")
    vert = np.stack([pack(m, mlo, mhi), rot, pack(s, slo, shi), color], axis=1).astype("<u4")
    head = ["ply", "format binary_little_endian 1.0", f"element chunk {chunks}"]
    head += [f"property float {p}" for p in names]
    head += [f"element vertex {n}"] + [f"property uint {p}" for p in
                                       ("packed_position", "packed_rotation", "packed_scale",
                                        "packed_color")]
    body = chunk.tobytes() + vert.tobytes()
    if k:
        head += [f"element sh {n}"] + [f"property uchar f_rest_{i}" for i in range(3 * k)]
        sh = scene.sh_rest.transpose(0, 2, 1).reshape(n, 3 * k).astype(np.float64)
        body += np.clip(np.round((sh / 8 + 0.5) * 256 - 0.5), 0, 255).astype(np.uint8).tobytes()
    return ("\n".join(head) + "\nend_header\n").encode() + body


@cache
def compressed_ply_files() -> list[bytes]:
    return [compressed_ply(seal()), compressed_ply(synthetic(40, 3))] + [
        b for b in repo_samples("*.compressed.ply")][:2]


@cache
def splat_files() -> list[bytes]:
    from neurocodec.codecs.splat.io import encode_splat

    return [encode_splat(seal()), encode_splat(synthetic(40, 3))] + repo_samples("*.splat")


@cache
def spz_files() -> list[bytes]:
    from neurocodec.codecs.splat.io import encode_spz

    b = synthetic(40, 3)
    return [encode_spz(b, version=2), encode_spz(b, version=3), encode_spz(seal(), version=3),
            encode_spz(b, version=4), encode_spz(synthetic(20, 1, 1), version=4)] + \
        repo_samples("*.spz")


@cache
def sog_files() -> list[bytes]:
    from neurocodec.codecs.splat.io import encode_sog

    return [encode_sog(synthetic(40, 3)), encode_sog(seal()),
            encode_sog(synthetic(20, 1, 1))] + repo_samples("*.sog")


@cache
def sog_folders() -> list[dict[str, bytes]]:
    from neurocodec.codecs.splat.io import encode_sog_files

    out = [encode_sog_files(synthetic(40, 3)), encode_sog_files(seal())]
    d = REPO_DATA / "splat" / "st_small_sh3_sog"
    if d.is_dir():
        out.append({p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()})
    return out


# ------------------------------------------------------------------------------ entropy

@cache
def rans_streams() -> list[tuple[bytes, np.ndarray]]:
    """``(stream, table indexes)``: values of the array family's tables, a few escapes, on
    1, 4 and 33 lanes."""
    from neurocodec.entropy import arrays, rans

    r = np.random.default_rng(0)
    fam = arrays.family()
    out = []
    for n, lanes in ((300, 1), (200, 4), (500, 33)):
        idx = r.integers(0, fam.num_tables, n).astype(np.int32)
        sym = np.round(r.laplace(0, 3, n)).astype(np.int32)
        sym[:: 97] = r.integers(-(1 << 20), 1 << 20, len(sym[:: 97]))
        out.append((rans.encode(sym, idx, fam, lanes=lanes), idx))
    return out


@cache
def array_streams() -> list[tuple[bytes, list[int]]]:
    """``(stream, group sizes)`` of :func:`neurocodec.entropy.arrays.encode_arrays`."""
    from neurocodec.entropy import arrays

    r = np.random.default_rng(1)
    groups = [np.round(r.normal(0, s, size)).astype(np.int64)
              for s, size in ((0.5, 50), (4, 64), (30, 3), (1, 1))]
    sizes = [g.size for g in groups]
    return [(arrays.encode_arrays(groups), sizes), (arrays.encode_arrays(groups[:2]), sizes[:2])]
