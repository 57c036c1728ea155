"""The file-level seams every medium plugs into: :class:`Medium` (its files) and :class:`Codec`
(item <-> container bytes).

CompressAI's ``CompressionModel`` is the model-level shape (``forward``/``compress``/
``decompress``); this is the level above it that the CLI, the bench runner and the Python API
talk to. An item is whatever the medium's reader returns: ``uint8 [H, W, 3]`` for an image,
``uint8 [T, H, W, 3]`` for a clip, a splat scene object for 3DGS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurocodec.codecs.container import Container
from neurocodec.errors import BitstreamError, InputError


@dataclass(frozen=True)
class Medium:
    """What the CLI, the API and the bench need to know about one medium's files.

    ``read(path, **read_options) -> (item, meta)``: ``meta`` is stored in the container (the
    input's colour mode, a clip's frame rate); ``read_options`` names the encode options the
    reader takes (a raw clip's ``video_size``) rather than the codec. ``write(path, item,
    force, meta)`` writes atomically, ``meta`` being the file's (a clip's frame rate comes
    back). ``output_error(path)`` says why ``path`` is no output of this medium (None: it is),
    for outputs that are not plain extensions (a folder of frames). ``units(item)`` is the
    rate's denominator (pixels, pixels x frames, Gaussians); ``rate`` names the rate
    (``"bpp"``: bits per pixel). ``output_ext``: what a folder decode writes when a file's name
    does not say (default: the first of ``write_exts``)."""

    name: str
    read_exts: tuple[str, ...]
    write_exts: tuple[str, ...]
    read: Callable[..., tuple[Any, dict]]
    write: Callable[[Path, Any, bool, dict | None], None]
    units: Callable[[Any], int]
    describe: Callable[[Any], str]
    rate: str = "bpp"
    read_options: tuple[str, ...] = ()
    output_error: Callable[[Path], str | None] | None = None
    output_ext: str | None = None

    @property
    def default_output_ext(self) -> str:
        return self.output_ext or next(e for e in self.write_exts if e.startswith("."))

    def handles(self, path: str | Path) -> bool:
        return Path(path).suffix.lower() in self.read_exts


class Codec(ABC):
    """One named codec of one medium. ``family`` is the container's ``codec`` field (the
    architecture), ``name`` its ``model`` field (the registered name), ``digest`` the hash of
    the weights that define its decoder (for a codec whose weights travel in the file, a hash
    of its fixed configuration)."""

    name: str
    medium: str
    family: str
    digest: str

    @property
    @abstractmethod
    def qualities(self) -> list[int]:
        """Valid ``quality`` values, lowest rate first."""

    @property
    def default_quality(self) -> int:
        """The middle of the range (the one quality of a single-rate model)."""
        q = self.qualities
        return q[(len(q) - 1) // 2]

    @abstractmethod
    def encode(self, item: Any, quality: int, meta: dict | None = None, **options: Any) -> bytes:
        """The whole container file for ``item``; ``meta``: extra header fields from the
        reader. Unknown ``options`` are an InputError (see :func:`reject_options`)."""

    @abstractmethod
    def decode(self, container: Container, limits: Any = None) -> Any:
        """The item a container holds; ``limits`` (a ``DecodeLimits``) caps what a file may
        declare before anything it declares is allocated."""

    def check_quality(self, quality: int) -> None:
        if isinstance(quality, bool) or quality not in self.qualities:
            q = self.qualities
            raise InputError(f"quality {quality!r} not available for {self.name} "
                             f"(valid: {q[0]}..{q[-1]})")

    def check_container(self, c: Container) -> None:
        """The file was made by this codec with these weights."""
        if c.medium != self.medium:
            article = "an" if c.medium[:1] in "aeiou" else "a"
            raise BitstreamError(f"file holds {article} {c.medium}, but {self.name} decodes "
                                 f"{self.medium}s")
        if c.codec != self.family or c.model != self.name:
            raise BitstreamError(f"file was made by {c.codec}/{c.model}, not "
                                 f"{self.family}/{self.name}")
        if c.weights != self.digest:
            raise BitstreamError(f"file was encoded with weights {c.weights}, but {self.name} "
                                 f"has weights {self.digest}: wrong or updated model")


def reject_options(codec: Codec, options: dict, known: tuple[str, ...] = ()) -> None:
    """An option another codec understands (``refine`` for a splat coder) is a user error."""
    extra = sorted(k for k, v in options.items() if k not in known and v is not None)
    if extra:
        raise InputError(f"{codec.name} does not take option(s) {', '.join(extra)}")
