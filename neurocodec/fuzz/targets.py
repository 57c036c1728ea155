"""The table of fuzz targets: one per decoder and file reader.

A :class:`Target` names its seeds (valid files, :mod:`neurocodec.fuzz.seeds`), how a case is
made from them (:mod:`neurocodec.fuzz.mutate`, :mod:`neurocodec.fuzz.formats`), the decode
it exercises, and the exceptions that decode documents: ``.ncb`` files, containers and
entropy streams raise :class:`~neurocodec.errors.BitstreamError`; image, video and splat file
readers :class:`~neurocodec.errors.InputError`. Anything else escaping is a bug.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from neurocodec.errors import BitstreamError, InputError
from neurocodec.fuzz import formats as F
from neurocodec.fuzz import mutate as M
from neurocodec.fuzz import seeds as S


@dataclass(frozen=True)
class Target:
    """``make(rng, seeds)`` returns one input for ``run``; ``check(result)`` says what is
    wrong with a decoded result (None: nothing). ``suite``: cases per ``make test``;
    ``share``: this target's fraction of ``--cases`` in the long run (slow readers that
    start ffmpeg for every case get less)."""

    name: str
    what: str
    seeds: Callable[[], list]
    make: Callable[[random.Random, list], Any]
    run: Callable[[Any], Any]
    allowed: tuple[type[BaseException], ...]
    suite: int
    share: float = 1.0
    check: Callable[[Any], str | None] | None = None


# ------------------------------------------------------------------------------ temp files

@cache
def _tmp() -> Path:
    d = Path(tempfile.mkdtemp(prefix="neurocodec-fuzz-"))
    atexit.register(shutil.rmtree, d, True)
    return d


def _file(name: str, data: bytes) -> Path:
    p = _tmp() / name
    p.write_bytes(data)
    return p


def _folder(items: list[tuple[str, bytes]]) -> Path:
    d = _tmp() / "sog"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    for name, b in items:
        if name and "/" not in name and "\\" not in name and name not in (".", ".."):
            (d / name).write_bytes(b)  # a name reaching outside is a zip-only case
    return d


# ------------------------------------------------------------------------------ checks

def _image_ok(img: Any) -> str | None:
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3
            and img.shape[2] == 3 and img.size):
        return f"not a uint8 [H, W, 3] image: {getattr(img, 'shape', type(img))}"
    return None


def _clip_ok(clip: Any) -> str | None:
    if isinstance(clip, tuple):
        clip = clip[0]
    if not (isinstance(clip, np.ndarray) and clip.dtype == np.uint8 and clip.ndim == 4
            and clip.shape[3] == 3 and clip.size):
        return f"not a uint8 [T, H, W, 3] clip: {getattr(clip, 'shape', type(clip))}"
    return None


def _scene_ok(scene: Any, finite: bool = True) -> str | None:
    from neurocodec.codecs.splat.scene import SplatScene

    if not isinstance(scene, SplatScene):
        return f"not a SplatScene: {type(scene)}"
    if finite and not scene.finite().all():
        return "a reader returned non-finite Gaussians (they must be dropped)"
    for a in (scene.means, scene.scales, scene.quats, scene.opacities, scene.sh_dc,
              scene.sh_rest):
        if a.dtype != np.float32:
            return f"attribute of dtype {a.dtype}, not float32"
    return None


# ------------------------------------------------------------------------------ makers

def _ncb_seeds() -> list[bytes]:
    return S.image_ncb("hyperprior-vr3")[:1] + S.video_ncb("nerv")[:1] + S.gsc_ncb()[:1]


def _make_container(rng: random.Random, seeds: list[bytes]) -> bytes:
    if rng.random() < 0.1:
        return rng.choice(F.crafted_headers())
    return F.mutate_container(rng, seeds)


def _make_rans(rng: random.Random, seeds: list) -> tuple[bytes, np.ndarray]:
    data, idx = rng.choice(seeds)
    if rng.random() < 0.7:
        return F.mutate_rans(rng, data), idx
    return M.mutate_bytes(rng, data), idx


def _make_batch(rng: random.Random, seeds: list) -> tuple[list[bytes], list[np.ndarray]]:
    streams, idx = [s for s, _ in seeds], [i for _, i in seeds]
    for _ in range(rng.randint(1, 2)):
        k = rng.randrange(len(streams))
        streams[k] = F.mutate_rans(rng, streams[k]) if rng.random() < 0.7 else \
            M.mutate_bytes(rng, streams[k])
    if rng.random() < 0.1:  # streams swapped: each meets the other's indexes
        streams[0], streams[1] = streams[1], streams[0]
    return streams, idx


def _make_arrays(rng: random.Random, seeds: list) -> tuple[bytes, list[int]]:
    data, sizes = rng.choice(seeds)
    r = rng.random()
    if r < 0.5:
        return F.mutate_rans(rng, data), sizes
    if r < 0.7:  # the group count and table indexes before the stream
        b = bytearray(data)
        i = rng.randrange(min(len(b), 2 + len(sizes)))
        b[i] = rng.choice((0, 1, 3, 4, 5, 239, 240, 255))
        return bytes(b), sizes
    return M.mutate_bytes(rng, data), sizes


def _make_splat(rng: random.Random, seeds: list[bytes]) -> bytes:
    data = rng.choice(seeds)
    if rng.random() < 0.5:
        return M.mutate_bytes(rng, data)
    # float fields of whole rows set to hostile values (the size stays a multiple of 32)
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        row = rng.randrange(len(b) // 32) if b else 0
        field = rng.randrange(6)
        v = rng.choice((b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\x00\x00\x80\xff",
                        b"\x00\x00\x00\x00", b"\x00\x00\x00\x80", b"\xff\xff\x7f\x7f",
                        b"\x01\x00\x00\x00"))
        b[32 * row + 4 * field: 32 * row + 4 * field + 4] = v
    return bytes(b)


def _make_sog_folder(rng: random.Random, seeds: list[dict]) -> list[tuple[str, bytes]]:
    return F.mutate_sog_files(rng, rng.choice(seeds), seeds)


_SIZES = ((16, 16), (15, 9), (8, 8), (0, 16), (16, 0), (-4, 4), (1, 1), (65536, 1),
          (65537, 16), (1 << 40, 2), (2, 3))
_YUV_NAMES = ("clip_16x16.yuv", "clip_15x9_30.yuv", "c_0x0.yuv", "c_99999x1.yuv",
              "c_16x16_0fps.yuv", "c_16x16_999.yuv", "c_16x16_1.5fps.yuv", "noname.yuv")


def _make_yuv(rng: random.Random, seeds: list) -> tuple[str, bytes, tuple[int, int] | None]:
    data, size = rng.choice(seeds)
    r = rng.random()
    if r < 0.4:
        data = M.mutate_bytes(rng, data)
    elif r < 0.7:
        size = rng.choice(_SIZES)
    elif r < 0.85:
        return rng.choice(_YUV_NAMES), data, None
    else:
        data = data * rng.choice((2, 3)) + (b"" if rng.random() < 0.5 else b"\0")
    return "clip.yuv", data, size


def _make_scene_file(rng: random.Random, seeds: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    ext, data = rng.choice(seeds)
    if rng.random() < 0.6:
        data = M.mutate_bytes(rng, data)
    if rng.random() < 0.2:
        data = M.splice(rng, data, rng.choice(seeds)[1])
    if rng.random() < 0.5:  # the content sniffed against another extension
        ext = rng.choice((".ply", ".splat", ".spz", ".sog", ".bin", ".compressed.ply"))
    return ext, data


# ------------------------------------------------------------------------------ runs

def _decode_ncb(codec_of: Callable[[], Any]) -> Callable[[bytes], Any]:
    def run(data: bytes) -> Any:
        from neurocodec.codecs.container import Container

        return codec_of().decode(Container.from_bytes(data))

    return run


@cache
def _video_codec(kind: str):
    from neurocodec.codecs.video.codec import INRCodec

    return INRCodec(kind)


@cache
def _gsc():
    from neurocodec.codecs.splat.coder import SplatCoder

    return SplatCoder()


def _container(data: bytes):
    from neurocodec.codecs.container import Container

    return Container.from_bytes(data)


def _rans(x):
    from neurocodec.entropy import arrays, rans

    return rans.decode(x[0], x[1], arrays.family())


def _rans_batch(x):
    from neurocodec.entropy import arrays, rans

    return rans.decode_batch(x[0], x[1], arrays.family())


def _arrays(x):
    from neurocodec.entropy.arrays import decode_arrays

    return decode_arrays(x[0], x[1])


def _ply(data: bytes):
    from neurocodec.codecs.splat.io import decode_ply

    return decode_ply(data)


def _dotsplat(data: bytes):
    from neurocodec.codecs.splat.io import decode_splat

    return decode_splat(data)


def _spz(data: bytes):
    from neurocodec.codecs.splat.io import decode_spz

    return decode_spz(data)


def _sog(data: bytes):
    from neurocodec.codecs.splat.io import decode_sog_bundle

    return decode_sog_bundle(data)


def _sog_folder(items):
    from neurocodec.codecs.splat.io import read_scene

    return read_scene(_folder(items) if not isinstance(items, dict) else _folder(
        list(items.items())))


def _scene_file(x: tuple[str, bytes]):
    from neurocodec.codecs.splat.io import read_scene

    return read_scene(_file("scene" + x[0], x[1]))


def _y4m(data: bytes):
    from neurocodec.codecs.video.io import read_video

    return read_video(_file("clip.y4m", data))


def _yuv(x):
    from neurocodec.codecs.video.io import read_video

    if isinstance(x, tuple) and len(x) == 2:  # a seed: (bytes, size)
        x = ("clip.yuv", x[0], x[1])
    name, data, size = x
    for old in _tmp().glob("*.yuv"):
        old.unlink()
    return read_video(_file(name, data), video_size=size)


def _image_file(x: tuple):
    """``(extension, bytes)`` or ``(extension, bytes, frame)`` (an animation's frame)."""
    from neurocodec.codecs.image.io import read_image

    frame = x[2] if len(x) > 2 else None
    img, _ = read_image(_file("image" + x[0], x[1]), frame=frame, drop_alpha=frame is not None)
    return img


def _scene_files() -> list[tuple[str, bytes]]:
    return ([(".ply", b) for b in S.ply_files()[:2] + S.compressed_ply_files()[:1]]
            + [(".splat", S.splat_files()[0])] + [(".spz", b) for b in S.spz_files()[:4:3]]
            + [(".sog", S.sog_files()[0])])


BITS, FILES = (BitstreamError,), (InputError,)  # .ncb and streams; file readers
TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("container", "Container.from_bytes: .ncb prefix, header JSON, sections",
           _ncb_seeds, _make_container, _container, BITS, 200),
    Target("rans", "rans.decode: one interleaved rANS stream (CPU kernel)",
           S.rans_streams, _make_rans, _rans, BITS, 150),
    Target("rans-batch", "rans.decode_batch: several streams, one parallel kernel",
           S.rans_streams, _make_batch, _rans_batch, BITS, 100),
    Target("arrays", "entropy.arrays.decode_arrays: table indexes + rANS stream",
           S.array_streams, _make_arrays, _arrays, BITS, 150),
    Target("image-hyperprior", "ImageCodec.decode, shipped hyperprior-vr3 (.ncb)",
           lambda: S.image_ncb("hyperprior-vr3"), F.mutate_container,
           _decode_ncb(lambda: S.image_codec("hyperprior-vr3")), BITS, 150, check=_image_ok),
    Target("image-mlic", "ImageCodec.decode, shipped mlic-vr (.ncb)",
           lambda: S.image_ncb("mlic-vr"), F.mutate_container,
           _decode_ncb(lambda: S.image_codec("mlic-vr")), BITS, 80, 0.3, check=_image_ok),
    Target("video-hnerv", "INRCodec('hnerv').decode (.ncb)", lambda: S.video_ncb("hnerv"),
           F.mutate_container, _decode_ncb(lambda: _video_codec("hnerv")), BITS, 100,
           check=_clip_ok),
    Target("video-nerv", "INRCodec('nerv').decode (.ncb)", lambda: S.video_ncb("nerv"),
           F.mutate_container, _decode_ncb(lambda: _video_codec("nerv")), BITS, 100,
           check=_clip_ok),
    Target("splat-gsc", "SplatCoder.decode (.ncb, codec gsc)", S.gsc_ncb, F.mutate_container,
           _decode_ncb(_gsc), BITS, 150, check=lambda s: _scene_ok(s, finite=False)),
    Target("ply", "decode_ply: 3DGS PLY (header lines, body)", S.ply_files, F.mutate_ply,
           _ply, FILES, 150, check=_scene_ok),
    Target("compressed-ply", "decode_ply: PlayCanvas compressed PLY", S.compressed_ply_files,
           F.mutate_ply, _ply, FILES, 120, check=_scene_ok),
    Target("dotsplat", "decode_splat: antimatter15 .splat rows", S.splat_files, _make_splat,
           _dotsplat, FILES, 80, check=_scene_ok),
    Target("spz", "decode_spz: SPZ v2-v4 (gzip payload, zstd streams)", S.spz_files,
           F.mutate_spz, _spz, FILES, 150, check=_scene_ok),
    Target("sog", "decode_sog_bundle: SOG v2 zip (meta.json, WebP textures)", S.sog_files,
           F.mutate_sog, _sog, FILES, 120, check=_scene_ok),
    Target("sog-folder", "read_scene(folder): SOG v2 folder", S.sog_folders,
           _make_sog_folder, _sog_folder, FILES, 60, 0.5, check=_scene_ok),
    Target("scene-file", "read_scene(path): format sniffing by content and extension",
           _scene_files, _make_scene_file, _scene_file, FILES, 60, check=_scene_ok),
    Target("y4m", "read_video(.y4m): native header/FRAME checks, then ffmpeg", S.y4m_files,
           F.mutate_y4m, _y4m, FILES, 40, 0.3, check=_clip_ok),
    Target("yuv", "read_video(.yuv): raw I420, size from --video-size or the name",
           S.yuv_files, _make_yuv, _yuv, FILES, 40, 0.3, check=_clip_ok),
    Target("image-file", "read_image: PNG/JPEG/WebP/GIF/BMP/TIFF/PPM via Pillow",
           S.image_files, F.mutate_image_file, _image_file, FILES, 200, check=_image_ok),
]}


def seed_input(t: Target, seed: Any) -> Any:
    """A seed as the target's ``run`` takes it (some targets take ``(name, bytes, size)``)."""
    if t.name == "rans-batch":
        seeds = t.seeds()
        return [s for s, _ in seeds], [i for _, i in seeds]
    return seed


def warm(t: Target) -> None:
    """Decode every seed once: they must be valid, and the first call of a numba kernel (its
    compilation or cache load) must not count against a case's deadline."""
    for s in t.seeds():
        r = t.run(seed_input(t, s))
        why = t.check(r) if t.check else None
        if why:
            raise AssertionError(f"{t.name}: a seed does not decode cleanly: {why}")


def threads_one() -> None:
    """One thread everywhere: cases are tiny, and the suite shares the machine."""
    import numba
    import torch

    torch.set_num_threads(1)
    numba.set_num_threads(1)
