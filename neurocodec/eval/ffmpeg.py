"""The ffmpeg binary that imageio-ffmpeg ships, driven through ffmpeg-python on raw Y'CbCr.

Colour conversion never happens inside ffmpeg: callers hand it planes made by
:mod:`neurocodec.eval.colour` and get the decoded planes back, so the conversion is explicit
and identical in both directions. Bitstreams are raw elementary streams (``-f hevc``,
``-f vvc``, ``-f h264``, ``-f ivf`` for AV1); their length is the rate that is reported.
"""

from __future__ import annotations

import functools
import subprocess

import numpy as np

from neurocodec.errors import BaselineUnavailable, ExternalToolError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # noqa: BLE001 - any failure means "no ffmpeg here"
        raise BaselineUnavailable(f"no ffmpeg binary ({e})") from None


@functools.cache
def has_encoder(name: str) -> bool:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True,
                         text=True, check=False).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def require_encoder(name: str) -> str:
    if not has_encoder(name):
        raise BaselineUnavailable(f"this ffmpeg ({ffmpeg_exe()}) has no {name} encoder")
    return ffmpeg_exe()


def pack_planes(frames: list[list[np.ndarray]]) -> bytes:
    """Frames of uint16 planes → ffmpeg's planar little-endian raw layout (``yuv4xxp10le``)."""
    return b"".join(p.astype("<u2").tobytes() for planes in frames for p in planes)


def unpack_planes(raw: bytes, shapes: list[tuple[int, int]]) -> list[list[np.ndarray]]:
    """Inverse of :func:`pack_planes` for frames whose planes have ``shapes``."""
    per_frame = sum(h * w for h, w in shapes)
    data = np.frombuffer(raw, "<u2")
    if per_frame == 0 or data.size % per_frame:
        raise ExternalToolError(f"decoder returned {len(raw)} bytes, not a whole number of "
                                f"{per_frame * 2}-byte frames")
    frames = []
    for f in range(data.size // per_frame):
        off, planes = f * per_frame, []
        for h, w in shapes:
            planes.append(data[off:off + h * w].reshape(h, w).astype(np.uint16))
            off += h * w
        frames.append(planes)
    return frames


def _run(stream, raw: bytes) -> bytes:
    import ffmpeg

    try:
        out, _ = stream.global_args("-hide_banner", "-loglevel", "error", "-nostdin").run(
            cmd=ffmpeg_exe(), input=raw, capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as e:
        msg = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise ExternalToolError(f"ffmpeg failed: {msg[-1] if msg else e}") from None
    return out


def encode(raw: bytes, size: tuple[int, int], pix_fmt: str, codec: str, fmt: str,
           fps: float = 25.0, **opts) -> bytes:
    """Encode raw planar frames of luma ``size = (H, W)`` with ffmpeg encoder ``codec``."""
    import ffmpeg

    h, w = size
    # The input is tagged with the same range/matrix as the output so that ffmpeg inserts no
    # conversion of its own: the tags only describe our planes in the bitstream's VUI.
    tags = {"color_range": "pc", "colorspace": "bt709", "color_primaries": "bt709",
            "color_trc": "bt709"}
    src = ffmpeg.input("pipe:", f="rawvideo", pix_fmt=pix_fmt, s=f"{w}x{h}", r=fps, **tags)
    return _run(src.output("pipe:", vcodec=codec, f=fmt, **tags, **opts), raw)


def decode(data: bytes, fmt: str, pix_fmt: str) -> bytes:
    """Decode an elementary stream back to raw planar frames in ``pix_fmt``."""
    import ffmpeg

    return _run(ffmpeg.input("pipe:", f=fmt).output("pipe:", f="rawvideo", pix_fmt=pix_fmt),
                data)


def encode_rgb(frames: np.ndarray, chroma: str, codec: str, fmt: str, **opts) -> bytes:
    """uint8 RGB ``[T, H, W, 3]`` → elementary stream, through 10-bit Y'CbCr ``chroma``
    ("420"/"444") of :mod:`neurocodec.eval.colour`. 4:2:0 frames are edge-padded to even
    sizes (raw 4:2:0 needs them); :func:`decode_rgb` crops back."""
    from neurocodec.eval import colour

    if chroma == "420":
        frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2),
                                 (0, 0)), "edge")
    raw = pack_planes([colour.rgb_to_planes(f, 10, chroma) for f in frames])
    return encode(raw, frames.shape[1:3], f"yuv{chroma}p10le", codec, fmt, **opts)


def decode_rgb(data: bytes, fmt: str, chroma: str, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`encode_rgb`: uint8 RGB ``[T, H, W, 3]`` with ``shape = (H, W)``."""
    from neurocodec.eval import colour

    h, w = shape
    if chroma == "420":
        h, w = h + h % 2, w + w % 2
        cshape = (h // 2, w // 2)
    else:
        cshape = (h, w)
    frames = unpack_planes(decode(data, fmt, f"yuv{chroma}p10le"), [(h, w), cshape, cshape])
    return np.stack([colour.planes_to_rgb(p, 10, (h, w))[: shape[0], : shape[1]]
                     for p in frames])
