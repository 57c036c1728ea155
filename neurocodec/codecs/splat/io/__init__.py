"""Reading and writing 3DGS splat scenes: one :class:`~neurocodec.codecs.splat.scene.SplatScene`
in, one out, whatever the file format.

=====================  ======  =====  =====================================================
format                 read    write  addressed as
=====================  ======  =====  =====================================================
3DGS PLY               yes     yes    ``*.ply`` (binary; SH degree 0–3; byte-exact round trip)
PlayCanvas compressed  yes     no     ``*.ply`` recognised by content (``*.compressed.ply``)
antimatter15 splat     yes     yes    ``*.splat`` (32 bytes a Gaussian, SH degree 0)
Niantic SPZ            v1–v4   v2–v4  ``*.spz`` (written as v3 unless ``version=4``)
PlayCanvas SOG v2      yes     yes    ``*.sog`` (zip bundle), or a folder: ``DIR/meta.json``
                                      (or ``DIR`` itself, for reading)
=====================  ======  =====  =====================================================

Readers sniff the content (PLY / zip / gzip / NGSP magic) and fall back on the extension only
for ``.splat``, which has no magic. Every reader checks declared sizes against the file (or,
for compressed formats, against ``limits.max_gaussians``) before allocating, raises
:class:`~neurocodec.errors.InputError` with a one-line message for a file it cannot use, and
drops Gaussians with NaN/Inf attributes with a warning. Writers are atomic (a temporary file or
folder and a rename) and never replace an existing output without ``force``. Each module's
docstring gives its format's layout and quantization steps.
"""

from __future__ import annotations

from pathlib import Path

from neurocodec.errors import InputError

from ..scene import SplatScene
from ._common import DEFAULT_LIMITS, DecodeLimits, load
from .dotsplat import decode_splat, encode_splat, read_splat, write_splat
from .ply import decode_ply, encode_ply, read_ply, write_ply
from .sog import (
    decode_sog,
    decode_sog_bundle,
    encode_sog,
    encode_sog_files,
    morton_order,
    read_sog,
    write_sog,
)
from .spz import decode_spz, encode_spz, read_spz, write_spz

__all__ = ["READ_EXTS", "WRITE_EXTS", "read_scene", "write_scene", "scene_format",
           "decode_ply", "encode_ply", "read_ply", "write_ply",
           "decode_splat", "encode_splat", "read_splat", "write_splat",
           "decode_spz", "encode_spz", "read_spz", "write_spz",
           "decode_sog", "decode_sog_bundle", "encode_sog", "encode_sog_files", "read_sog",
           "write_sog", "morton_order"]

# "meta.json" names an unbundled SOG (its folder is accepted too when reading).
READ_EXTS = (".ply", ".compressed.ply", ".splat", ".spz", ".sog", "meta.json")
WRITE_EXTS = (".ply", ".splat", ".spz", ".sog", "meta.json")


def scene_format(path: str | Path) -> str | None:
    """``"ply"``, ``"splat"``, ``"spz"``, ``"sog"`` or ``"sog-folder"`` when ``path`` names a
    splat scene by its name (or is a folder holding ``meta.json``), else ``None``. Cheap: it
    does not read the file (a ``.ply`` may still turn out to be a compressed PLY, or not a
    3DGS PLY at all)."""
    p = Path(path)
    name = p.name.lower()
    if name == "meta.json" or (p.is_dir() and (p / "meta.json").is_file()):
        return "sog-folder"
    return {".ply": "ply", ".splat": "splat", ".spz": "spz", ".sog": "sog"}.get(p.suffix.lower())


def read_scene(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> SplatScene:
    """Read any supported splat file (see the module table) as a :class:`SplatScene`."""
    p = Path(path)
    if p.is_dir():
        if not (p / "meta.json").is_file():
            raise InputError(f"{p}: a folder, but not a SOG folder (no meta.json)")
        return read_sog(p, limits)
    if p.name.lower() == "meta.json":
        return read_sog(p, limits)
    data = load(p)
    if p.suffix.lower() == ".splat":
        return decode_splat(data, p)
    if data[:3] == b"ply":
        return decode_ply(data, p, limits)
    if data[:4] == b"PK\x03\x04":
        return decode_sog_bundle(data, p, limits)
    if data[:2] == b"\x1f\x8b" or data[:4] == b"NGSP":
        return decode_spz(data, p, limits)
    raise InputError(f"{p}: not a splat scene file this reader knows "
                     f"({', '.join(READ_EXTS)}, or a SOG folder)")


def write_scene(path: str | Path, scene: SplatScene, force: bool = False, **options) -> None:
    """Write ``scene`` in the format its name says (see :data:`WRITE_EXTS`); ``options`` go to
    the format's writer (e.g. ``version=4`` for SPZ, ``morton=False`` for SOG)."""
    p = Path(path)
    name = p.name.lower()
    if name == "meta.json" or p.suffix.lower() == ".sog":
        return write_sog(p, scene, force=force, **options)
    if name.endswith(".compressed.ply"):
        raise InputError(f"{p}: writing PlayCanvas compressed PLY is not supported "
                         f"(write .sog or .spz for a compact viewer format)")
    writer = {".ply": write_ply, ".spz": write_spz, ".splat": write_splat}.get(p.suffix.lower())
    if writer is None:
        raise InputError(f"{p}: unsupported splat output {p.suffix or '(no extension)'!r} "
                         f"(expected one of {', '.join(WRITE_EXTS)})")
    return writer(p, scene, force=force, **options)
