"""The image medium: PNG/JPEG/PPM/WebP files (``io.py``) and the learned image codecs."""

from __future__ import annotations

DEFAULT_MODEL = "hyperprior-vr2"


def register(registry) -> None:
    """Plug the image medium and its model families (``codec.ARCHS``) into the registry."""
    from neurocodec.codecs.base import Medium
    from neurocodec.codecs.image import io

    registry.register_medium(Medium(
        name="image", read_exts=tuple(sorted(io.READ_EXTS)),
        write_exts=tuple(sorted(io.WRITE_FORMATS)),
        read=lambda p: _read(io, p),
        write=lambda p, img, force, meta=None: io.write_image(p, img, force),
        units=lambda img: int(img.shape[0] * img.shape[1]),
        describe=lambda img: f"{img.shape[1]}x{img.shape[0]}"), DEFAULT_MODEL)
    from neurocodec.codecs.image.codec import ARCHS, ImageCodec

    for family in ARCHS:
        registry.register_family(family, "image", ImageCodec.from_info)


def _read(io, path):
    img, mode = io.read_image(path)
    return img, {"input_mode": mode}
