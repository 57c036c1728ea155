"""Classical video codecs through the ffmpeg of imageio-ffmpeg, on uint8 RGB clips.

Every codec gets the same frames (``[T, H, W, 3]``) converted by :mod:`neurocodec.eval.colour`
to 10-bit Y'CbCr 4:2:0 (BT.709, full range, centre-sited chroma) and back, so frame count,
resolution and colour conversion match whatever learned codec they are compared with.
Constant QP (CRF for SVT-AV1, whose QP mode is not exposed through ffmpeg's options), the
encoders' default GOP structure and their ``medium``-class presets, one thread each.
The rate is the elementary stream (Annex B / OBU); ``decode`` needs only ``(T, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable

from neurocodec.errors import InputError
from neurocodec.eval import ffmpeg as ff
from neurocodec.eval.baselines import Baseline, Knob

QPS = (22, 27, 32, 37, 42, 47)
# libx264's 10-bit QP scale sits 12 above the 8-bit one that x265 and vvenc keep for 10-bit
# input, so the same picture quality needs QP + 12 there.
X264_QPS = tuple(q + 12 for q in QPS)


def _video(name: str, codec: str, fmt: str, description: str, qualities: tuple, q_max: int,
           opts: Callable[[int], dict]) -> Baseline:
    ff.require_encoder(codec)
    return Baseline(
        name=name, description=description, qualities=qualities,
        knob=Knob(0, q_max, rate_increases=False),
        encode=lambda clip, q: ff.encode_rgb(clip, "420", codec, fmt, **opts(int(q))),
        decode=lambda b, shape: ff.decode_rgb(b, fmt, "420", shape[-2:]))


VIDEO_BASELINES: dict[str, Callable[[], Baseline]] = {
    "x264": lambda: _video(
        "x264", "libx264", "h264", "H.264 (libx264, preset medium, tune psnr, constant QP on "
        "its 10-bit scale, 10-bit 4:2:0)", X264_QPS, 63,
        lambda q: {"qp": q, "preset": "medium", "tune": "psnr", "threads": 1}),
    "x265": lambda: _video(
        "x265", "libx265", "hevc", "HEVC (libx265, preset medium, tune psnr, constant QP, "
        "10-bit 4:2:0)", QPS, 51,
        lambda q: {"preset": "medium", "tune": "psnr",
                   "x265-params": f"qp={q}:info=0:log-level=error:pools=1:frame-threads=1"}),
    "av1": lambda: _video(
        "av1", "libsvtav1", "obu", "AV1 (SVT-AV1 preset 8, CRF, 10-bit 4:2:0)",
        (24, 32, 40, 48, 56, 63), 63,
        lambda q: {"crf": q, "preset": 8, "svtav1-params": "lp=1:tune=1"}),
    "vvc": lambda: _video(
        "vvc", "libvvenc", "vvc", "VVC (libvvenc preset fast, -qpa 0, constant QP, 10-bit 4:2:0)",
        QPS, 63, lambda q: {"qp": q, "qpa": 0, "preset": "fast", "threads": 1}),
}


def get_video_baseline(name: str) -> Baseline:
    if name not in VIDEO_BASELINES:
        raise InputError(f"unknown video baseline {name!r} (known: {', '.join(VIDEO_BASELINES)})")
    return VIDEO_BASELINES[name]()
