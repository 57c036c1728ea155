"""Classical image codecs through their real libraries, behind one small interface.

Each baseline maps a quality knob to ``encode(img) -> bytes`` and ``decode(bytes) -> img``
(uint8 ``[H, W, 3]`` RGB). All are real libraries (libjpeg-turbo, libwebp, OpenJPEG, libjxl,
libaom) driven through imagecodecs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    qualities: tuple
    encode: Callable[[np.ndarray, object], bytes]
    decode: Callable[[bytes], np.ndarray]


def _jpeg(subsampling: str) -> Baseline:
    import imagecodecs

    return Baseline(
        name=f"jpeg-{subsampling}",
        description=f"JPEG (libjpeg-turbo via imagecodecs {imagecodecs.__version__}), "
                    f"YCbCr {subsampling[0]}:{subsampling[1]}:{subsampling[2]}, optimized Huffman",
        qualities=(5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        encode=lambda img, q: bytes(imagecodecs.jpeg8_encode(
            img, level=int(q), subsampling=subsampling, optimize=True)),
        decode=lambda b: np.asarray(imagecodecs.jpeg8_decode(b)),
    )


def _webp() -> Baseline:
    import imagecodecs

    return Baseline(
        name="webp", description=f"WebP lossy (libwebp via imagecodecs {imagecodecs.__version__})",
        qualities=(5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        encode=lambda img, q: bytes(imagecodecs.webp_encode(img, level=int(q), lossless=False)),
        decode=lambda b: np.asarray(imagecodecs.webp_decode(b))[..., :3],
    )


def _jpeg2000() -> Baseline:
    import imagecodecs

    # OpenJPEG's level is a PSNR target in dB (0 = lossless).
    return Baseline(
        name="jpeg2000",
        description=f"JPEG 2000 (OpenJPEG via imagecodecs {imagecodecs.__version__}), PSNR-targeted",
        qualities=(24, 26, 28, 30, 32, 34, 36, 38, 40),
        encode=lambda img, q: bytes(imagecodecs.jpeg2k_encode(img, level=int(q), codecformat="j2k")),
        decode=lambda b: np.asarray(imagecodecs.jpeg2k_decode(b)),
    )


def _jpegxl() -> Baseline:
    import imagecodecs

    # libjxl's Butteraugli distance is the quality knob (lower = better); effort 7 = default.
    return Baseline(
        name="jpegxl", description=f"JPEG XL (libjxl via imagecodecs {imagecodecs.__version__}), "
                                   "distance-targeted, effort 7",
        qualities=(12.0, 8.0, 5.0, 3.5, 2.5, 1.7, 1.2, 0.8, 0.5),
        encode=lambda img, d: bytes(imagecodecs.jpegxl_encode(img, distance=float(d), effort=7)),
        decode=lambda b: np.asarray(imagecodecs.jpegxl_decode(b))[..., :3],
    )


def _avif() -> Baseline:
    import imagecodecs

    # imagecodecs' AVIF is libaom; speed 6 keeps a Kodak image under a second.
    return Baseline(
        name="avif", description=f"AVIF (libaom via imagecodecs {imagecodecs.__version__}), "
                                 "YUV 4:4:4 8-bit, speed 6",
        qualities=(10, 20, 30, 40, 50, 60, 70, 80, 90),
        encode=lambda img, q: bytes(imagecodecs.avif_encode(img, level=int(q), speed=6)),
        decode=lambda b: np.asarray(imagecodecs.avif_decode(b))[..., :3],
    )


BASELINES: dict[str, Callable[[], Baseline]] = {
    "jpeg-420": lambda: _jpeg("420"),
    "jpeg-444": lambda: _jpeg("444"),
    "webp": _webp,
    "jpeg2000": _jpeg2000,
    "jpegxl": _jpegxl,
    "avif": _avif,
}


def get_baseline(name: str) -> Baseline:
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    return BASELINES[name]()
