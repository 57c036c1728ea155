"""The Python API of the file codecs: what ``neurocodec encode``/``decode`` do, on arrays and
on files, for any medium.

    import neurocodec
    data = neurocodec.encode("photo.png", quality=3)          # bytes of a .ncb file
    neurocodec.encode(img, codec="mlic-vr", output="a.ncb")   # uint8 [H, W, 3] -> file
    img = neurocodec.decode("a.ncb")                          # -> uint8 [H, W, 3]
    neurocodec.decode(data, output="a.png")                   # -> also written as PNG
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurocodec.codecs.base import Codec, Medium
from neurocodec.codecs.container import Container, check_output, read_file, write_atomic
from neurocodec.codecs.limits import DecodeLimits
from neurocodec.errors import BitstreamError, InputError

PathLike = str | Path


@dataclass
class Encoded:
    """What :func:`encode_item` made: the file's bytes, the codec, quality and the rate."""

    data: bytes
    codec: Codec
    quality: int
    medium: Medium
    units: int  # pixels (x frames) or Gaussians of the input

    @property
    def rate(self) -> float:
        """Bits per unit (bpp for images)."""
        return 8.0 * len(self.data) / max(self.units, 1)


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def resolve(item: Any, codec: str | None, medium: str | None,
            cache: dict[str, Codec] | None = None) -> tuple[Codec, Medium]:
    """The codec and medium for an input: the medium comes from the file's extension, or from
    ``codec``, or from ``medium``; a codec of another medium than the file is a user error that
    names the codecs that would work. ``cache``: see :func:`registry.load_codec`."""
    from neurocodec.codecs import registry

    file_medium = registry.medium_for_path(item) if isinstance(item, (str, Path)) else None
    if file_medium is not None and medium is not None and file_medium.name != medium:
        raise InputError(f"{item} is {_article(file_medium.name)} file, not {_article(medium)}")
    want = file_medium.name if file_medium is not None else medium
    if codec is None:
        name = registry.default_codec(want or "image")
    else:
        entry = registry.get_entry(codec)
        if want is not None and entry.medium != want:
            fits = ", ".join(c.name for c in registry.list_codecs(want)) or "none yet"
            what = f"{item} is {_article(want)} file" if file_medium else f"medium is {want}"
            raise InputError(f"{codec} encodes {entry.medium}s, but {what} "
                             f"(its codecs: {fits})")
        name = codec
    c = registry.load_codec(name, cache=cache)
    return c, registry.get_medium(c.medium)


def _check_output(output: PathLike, force: bool, medium: Medium | None = None) -> None:
    """Before any work: a decoded item needs an output its medium writes (its
    ``output_error``, else its extensions), and the output can be written
    (:func:`check_output`: an existing file only with ``force``, a writable folder; a folder
    only where the medium's ``output_error`` accepts one)."""
    p = Path(output)
    if medium is not None and medium.output_error is not None:
        why = medium.output_error(p)
        if why:
            raise InputError(why)
    elif medium is not None and p.suffix.lower() not in medium.write_exts:
        raise InputError(f"{p}: {_article(medium.name)} decodes to "
                         f"{', '.join(medium.write_exts)}, not {p.suffix or '(no extension)'!r}")
    check_output(p, force, folder_ok=medium is not None and medium.output_error is not None)


def encode_item(item: Any, codec: str | None = None, quality: int | None = None, *,
                output: PathLike | None = None, force: bool = False,
                medium: str | None = None, cache: dict[str, Codec] | None = None,
                **options: Any) -> Encoded:
    """Encode a file path or an in-memory item (``uint8 [H, W, 3]`` image, ...); with
    ``output``, also write the file atomically (checked before encoding). ``cache``: codecs
    already loaded, by name (one dict over many calls loads each model once)."""
    if output is not None:
        _check_output(output, force)
    c, m = resolve(item, codec, medium, cache)
    meta: dict = {}
    reading = {k: options.pop(k) for k in m.read_options if k in options}
    reading = {k: v for k, v in reading.items() if v is not None}
    if isinstance(item, (str, Path)):
        item, meta = m.read(Path(item), **reading)
    elif reading:
        raise InputError(f"{', '.join(sorted(reading))}: options of reading a file, but the "
                         f"input is an array")
    q = c.default_quality if quality is None else quality
    data = c.encode(item, q, meta=meta or None, **options)  # the codec checks q
    if output is not None:
        write_atomic(output, data, force=force)
    return Encoded(data, c, q, m, m.units(item))


def encode(item: Any, codec: str | None = None, quality: int | None = None, *,
           output: PathLike | None = None, force: bool = False, medium: str | None = None,
           **options: Any) -> bytes:
    """The container bytes for ``item`` (a path, or an array of ``medium`` — default image);
    with ``output``, also written there atomically (an existing file only with ``force``).
    ``quality`` defaults to the codec's middle quality; ``options`` go to the codec (e.g.
    ``refine=RefineConfig(steps=50)`` for image models)."""
    return encode_item(item, codec, quality, output=output, force=force, medium=medium,
                       **options).data


def open_container(data: bytes | PathLike) -> Container:
    return Container.from_bytes(data if isinstance(data, (bytes, bytearray, memoryview))
                                else read_file(data))


@dataclass
class Decoded:
    item: Any
    codec: Codec
    medium: Medium
    container: Container


def decode_item(data: bytes | PathLike, *, output: PathLike | None = None, force: bool = False,
                limits: DecodeLimits | None = None,
                cache: dict[str, Codec] | None = None) -> Decoded:
    """Decode a ``.ncb`` file (bytes or path) with the codec its header names; with
    ``output``, also write the item in the medium's format chosen by the extension (checked
    before decoding, so a wrong extension costs nothing). ``cache``: as in
    :func:`encode_item`."""
    from neurocodec.codecs import registry

    c = open_container(data)
    medium = registry.media().get(c.medium)
    if medium is None:
        raise BitstreamError(f"file holds medium {c.medium!r}, which this build cannot decode "
                             f"(it has: {', '.join(sorted(registry.media()))})")
    if output is not None:
        _check_output(output, force, medium)
    codec = registry.codec_for(c, cache)
    item = codec.decode(c, limits or DecodeLimits())
    if output is not None:
        medium.write(Path(output), item, force, c.meta)
    return Decoded(item, codec, medium, c)


def decode(data: bytes | PathLike, *, output: PathLike | None = None, force: bool = False,
           limits: DecodeLimits | None = None) -> Any:
    """The item a ``.ncb`` file (bytes or path) holds; see :func:`decode_item`."""
    return decode_item(data, output=output, force=force, limits=limits).item
