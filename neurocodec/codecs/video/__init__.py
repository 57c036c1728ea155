"""The video medium: clips read and written through ffmpeg (``io.py``) and the implicit neural
representation codecs HNeRV and NeRV (``models.py``, fitted per clip by ``fit.py``, coded by
``codec.py``)."""

from __future__ import annotations

DEFAULT_CODEC = "hnerv"
# Parameters per pixel (T x H x W) of each quality: ~5-7 bits per parameter once coded, so
# roughly 0.05 ... 0.8 bpp.
PARAMS_PER_PIXEL = (0.008, 0.016, 0.032, 0.064, 0.128)
DESCRIPTIONS = {
    "hnerv": "HNeRV (CVPR 2023): per-clip fitted ConvNeXt-embedding INR; encoding is a "
             "training run (minutes)",
    "nerv": "NeRV (NeurIPS 2021): per-clip fitted frame-index INR; encoding is a training "
            "run (minutes)",
}


def register(registry) -> None:
    """Plug the video medium and its two standalone codecs into the registry."""
    from neurocodec.codecs.base import Medium
    from neurocodec.codecs.video import io

    registry.register_medium(Medium(
        name="video", read_exts=tuple(io.READ_EXTS), write_exts=tuple(io.WRITE_EXTS),
        read=io.read_video, write=io.write_video,
        units=lambda clip: int(clip.shape[0] * clip.shape[1] * clip.shape[2]),
        describe=lambda clip: f"{clip.shape[0]} frames of {clip.shape[2]}x{clip.shape[1]}",
        read_options=("video_size", "frames"), output_error=io.output_ok), DEFAULT_CODEC)
    for kind, text in DESCRIPTIONS.items():  # codec.py (and the trainer) load on first use
        registry.register_codec(registry.CodecEntry(
            name=kind, medium="video", family=kind, qualities=list(range(len(PARAMS_PER_PIXEL))),
            load=lambda kind=kind: _load(kind), description=text))


def _load(kind: str):
    from neurocodec.codecs.video.codec import INRCodec

    return INRCodec(kind)
