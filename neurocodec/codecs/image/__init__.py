"""The image medium: PNG/JPEG/PPM/WebP/BMP/TIFF/GIF files (``io.py``) and the learned image codecs."""

from __future__ import annotations

DEFAULT_MODEL = "hyperprior-vr6"


def register(registry) -> None:
    """Plug the image medium and its model families (``codec.ARCHS``) into the registry."""
    from neurocodec.codecs.base import Medium
    from neurocodec.codecs.image import io

    registry.register_medium(Medium(
        name="image", read_exts=tuple(sorted(io.READ_EXTS)),
        write_exts=tuple(sorted(io.WRITE_FORMATS)),
        read=lambda p, **opts: _read(io, p, **opts),
        write=lambda p, img, force, meta=None: io.write_image(p, img, force),
        read_options=("drop_alpha", "frame"), output_ext=".png",
        units=lambda img: int(img.shape[0] * img.shape[1]),
        describe=lambda img: f"{img.shape[1]}x{img.shape[0]}"), DEFAULT_MODEL)
    from neurocodec.codecs.image.codec import ARCHS, ImageCodec

    for family in ARCHS:
        registry.register_family(family, "image", ImageCodec.from_info)


def _read(io, path, drop_alpha: bool = False, frame: int | None = None):
    img, mode = io.read_image(path, drop_alpha=drop_alpha, frame=frame)
    return img, {"input_mode": mode, **({} if frame is None else {"input_frame": frame})}
