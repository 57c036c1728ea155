"""Classical image codecs through their real libraries and binaries, behind one interface.

A :class:`Baseline` maps a quality knob to ``encode(img, q) -> bytes`` and
``decode(bytes, (H, W)) -> img`` (uint8 ``[H, W, 3]`` RGB). The rate is always the length of
the codec's own bitstream; ``(H, W)`` is the only side information (every container stores it).

* imagecodecs: JPEG (libjpeg-turbo), WebP (libwebp), JPEG 2000 (OpenJPEG), JPEG XL (libjxl),
  AVIF (libaom);
* pillow-heif: HEIC (libheif + x265, 4:4:4);
* the ffmpeg of imageio-ffmpeg: VVC intra (libvvenc, 10-bit 4:2:0, ``-qpa 0``) and HEVC intra
  (libx265, 10-bit 4:4:4, ``tune=psnr``), colour converted by :mod:`neurocodec.eval.colour`;
* VTM and HM reference encoders when the user has them (:mod:`neurocodec.eval.reference`).

A factory raises :class:`~neurocodec.errors.BaselineUnavailable` when its library or binary is
missing; :func:`get_baseline` passes that on so reports can say "unavailable".
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurocodec.errors import BaselineUnavailable, InputError


@dataclass(frozen=True)
class Knob:
    """The quality knob's range, for bisection towards a target bpp."""

    lo: float
    hi: float
    integer: bool = True
    rate_increases: bool = True  # False for QP-like knobs (higher value, fewer bits)


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    qualities: tuple
    knob: Knob | None  # None: discrete qualities only (learned models), no bpp targeting
    encode: Callable[[np.ndarray, object], bytes]
    decode: Callable[[bytes, tuple[int, int]], np.ndarray]


def _imagecodecs():
    try:
        import imagecodecs
    except ImportError as e:
        raise BaselineUnavailable(f"imagecodecs is not installed ({e})") from None
    return imagecodecs


def _jpeg(subsampling: str) -> Baseline:
    ic = _imagecodecs()
    return Baseline(
        name=f"jpeg-{subsampling}",
        description=f"JPEG (libjpeg-turbo via imagecodecs {ic.__version__}), "
                    f"YCbCr {subsampling[0]}:{subsampling[1]}:{subsampling[2]}, optimized Huffman",
        qualities=(5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        knob=Knob(1, 100),
        encode=lambda img, q: bytes(ic.jpeg8_encode(
            img, level=int(q), subsampling=subsampling, optimize=True)),
        decode=lambda b, shape: np.asarray(ic.jpeg8_decode(b)),
    )


def _webp() -> Baseline:
    ic = _imagecodecs()
    return Baseline(
        name="webp", description=f"WebP lossy (libwebp via imagecodecs {ic.__version__})",
        qualities=(5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        knob=Knob(0, 100),
        encode=lambda img, q: bytes(ic.webp_encode(img, level=int(q), lossless=False)),
        decode=lambda b, shape: np.asarray(ic.webp_decode(b))[..., :3],
    )


def _jpeg2000() -> Baseline:
    ic = _imagecodecs()
    # OpenJPEG's level is a PSNR target in dB (0 = lossless).
    return Baseline(
        name="jpeg2000",
        description=f"JPEG 2000 (OpenJPEG via imagecodecs {ic.__version__}), PSNR-targeted",
        qualities=(24, 26, 28, 30, 32, 34, 36, 38, 40),
        knob=Knob(20, 50, integer=False),
        encode=lambda img, q: bytes(ic.jpeg2k_encode(img, level=float(q), codecformat="j2k")),
        decode=lambda b, shape: np.asarray(ic.jpeg2k_decode(b)),
    )


def _jpegxl() -> Baseline:
    ic = _imagecodecs()
    # libjxl's Butteraugli distance is the quality knob (lower = better); effort 7 = default.
    return Baseline(
        name="jpegxl", description=f"JPEG XL (libjxl via imagecodecs {ic.__version__}), "
                                   "distance-targeted, effort 7",
        qualities=(12.0, 8.0, 5.0, 3.5, 2.5, 1.7, 1.2, 0.8, 0.5),
        knob=Knob(0.1, 25.0, integer=False, rate_increases=False),
        encode=lambda img, d: bytes(ic.jpegxl_encode(img, distance=float(d), effort=7)),
        decode=lambda b, shape: np.asarray(ic.jpegxl_decode(b))[..., :3],
    )


def _avif() -> Baseline:
    ic = _imagecodecs()
    # imagecodecs' AVIF is libaom; speed 6 keeps a Kodak image under a second.
    return Baseline(
        name="avif", description=f"AVIF (libaom via imagecodecs {ic.__version__}), "
                                 "YUV 4:4:4 8-bit, speed 6",
        qualities=(10, 20, 30, 40, 50, 60, 70, 80, 90),
        knob=Knob(0, 100),
        encode=lambda img, q: bytes(ic.avif_encode(img, level=int(q), speed=6)),
        decode=lambda b, shape: np.asarray(ic.avif_decode(b))[..., :3],
    )


def _heic() -> Baseline:
    try:
        import pillow_heif
    except ImportError as e:
        raise BaselineUnavailable(f"pillow-heif is not installed ({e})") from None
    if "x265" not in pillow_heif.libheif_info().get("encoders", {}):
        raise BaselineUnavailable("pillow-heif was built without the x265 encoder")

    def enc(img: np.ndarray, q) -> bytes:
        buf = io.BytesIO()
        heif = pillow_heif.from_bytes(mode="RGB", size=(img.shape[1], img.shape[0]),
                                      data=np.ascontiguousarray(img).tobytes())
        heif.save(buf, quality=int(q), chroma=444)
        return buf.getvalue()

    def dec(b: bytes, shape) -> np.ndarray:
        return np.asarray(pillow_heif.open_heif(io.BytesIO(b), convert_hdr_to_8bit=True))[..., :3]

    return Baseline(
        name="heic", description=f"HEIC (libheif {pillow_heif.libheif_version()} + x265 via "
                                 f"pillow-heif {pillow_heif.__version__}), 4:4:4",
        qualities=(10, 20, 30, 40, 50, 60, 70, 80, 90),
        knob=Knob(0, 100), encode=enc, decode=dec)


def _ffmpeg_intra(name: str, codec: str, fmt: str, chroma: str, description: str,
                  qualities: tuple, qp_max: int, opts: Callable[[int], dict]) -> Baseline:
    """An intra-only ffmpeg encoder fed 10-bit Y'CbCr planes of our own conversion."""
    from neurocodec.eval import ffmpeg as ff

    ff.require_encoder(codec)
    return Baseline(
        name=name, description=description, qualities=qualities,
        knob=Knob(0, qp_max, rate_increases=False),
        encode=lambda img, qp: ff.encode_rgb(img[None], chroma, codec, fmt, **opts(int(qp))),
        decode=lambda b, shape: ff.decode_rgb(b, fmt, chroma, shape)[0])


VVC_PRESET = "medium"


def _vvc() -> Baseline:
    return _ffmpeg_intra(
        "vvc", "libvvenc", "vvc", "420",
        f"VVC intra (libvvenc via ffmpeg, preset {VVC_PRESET}, -qpa 0, 10-bit 4:2:0, BT.709 "
        "full range, centre-sited chroma)",
        qualities=(22, 27, 32, 37, 42, 47), qp_max=63,
        opts=lambda qp: {"qp": qp, "qpa": 0, "preset": VVC_PRESET, "threads": 1})


def _hevc() -> Baseline:
    return _ffmpeg_intra(
        "hevc", "libx265", "hevc", "444",
        "HEVC intra (libx265 via ffmpeg, preset medium, tune psnr, 10-bit 4:4:4, BT.709 "
        "full range)",
        qualities=(22, 27, 32, 37, 42, 47), qp_max=51,
        opts=lambda qp: {"preset": "medium", "tune": "psnr",
                         "x265-params": f"qp={qp}:keyint=1:info=0:log-level=error:pools=1:"
                                         "frame-threads=1"})


def _reference(kind: str) -> Baseline:
    from neurocodec.eval.reference import reference_baseline

    return reference_baseline(kind)


BASELINES: dict[str, Callable[[], Baseline]] = {
    "jpeg-420": lambda: _jpeg("420"),
    "jpeg-444": lambda: _jpeg("444"),
    "webp": _webp,
    "jpeg2000": _jpeg2000,
    "jpegxl": _jpegxl,
    "avif": _avif,
    "heic": _heic,
    "vvc": _vvc,
    "hevc": _hevc,
    "vtm": lambda: _reference("vtm"),
    "hm": lambda: _reference("hm"),
}
ALIASES = {"jpeg": "jpeg-420", "jxl": "jpegxl", "j2k": "jpeg2000", "x265": "hevc",
           "vvenc": "vvc"}


def get_baseline(name: str) -> Baseline:
    """The baseline ``name`` (or an alias); ``InputError`` if unknown, ``BaselineUnavailable``
    if its library or binary is missing here."""
    name = ALIASES.get(name, name)
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    return BASELINES[name]()
