"""The 3DGS splat medium: scene files (``io/``), a CPU renderer (``render.py``) and the
attribute coder ``gsc`` (``coder.py``, entropy-coded through the shared rANS backend)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CODEC = "gsc"
QUALITIES = 8  # coder.QUALITIES, without importing the coder (numba) to list the zoo
DESCRIPTION = ("3DGS attribute coder: size-adaptive positions as Morton cell gaps, "
               "smallest-three rotations, steps allocated by render error, context-adaptive "
               "rANS; -q 0..7")


def _read(path: Path, **_: object):
    from neurocodec.codecs.splat.io import read_scene

    return read_scene(path), {}


def _write(path: Path, scene, force: bool, meta: dict | None = None) -> None:
    from neurocodec.codecs.splat.io import write_scene

    write_scene(path, scene, force=force)


def _output_error(path: Path) -> str | None:
    from neurocodec.codecs.splat.io import WRITE_EXTS, scene_format

    if scene_format(path) is None or Path(path).name.lower().endswith(".compressed.ply"):
        return (f"{path}: a splat scene decodes to {', '.join(WRITE_EXTS)}, not "
                f"{Path(path).suffix or '(no extension)'!r}")
    return None


def register(registry) -> None:
    """Plug the splat medium and its coder into the registry (lazily: nothing heavy loads)."""
    from neurocodec.codecs.base import Medium

    # READ_EXTS / WRITE_EXTS of io (spelled here so listing the zoo imports no reader)
    registry.register_medium(Medium(
        name="splat", read_exts=(".ply", ".splat", ".spz", ".sog"),
        write_exts=(".ply", ".splat", ".spz", ".sog"), read=_read, write=_write,
        units=lambda scene: int(scene.n),
        describe=lambda scene: f"{scene.n} Gaussians, SH degree {scene.sh_degree}",
        rate="bpg", output_error=_output_error), DEFAULT_CODEC)
    registry.register_codec(registry.CodecEntry(
        name=DEFAULT_CODEC, medium="splat", family=DEFAULT_CODEC,
        qualities=list(range(QUALITIES)), load=_load, description=DESCRIPTION))


def _load():
    from neurocodec.codecs.splat.coder import SplatCoder

    return SplatCoder()
