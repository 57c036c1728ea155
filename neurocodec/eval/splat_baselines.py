"""The splat formats users convert to today, as baselines on :class:`SplatScene` items: Niantic
SPZ and PlayCanvas SOG v2.

``spz`` / ``sog`` are written by PlayCanvas's ``splat-transform`` (npm
``@playcanvas/splat-transform``, ``-g cpu``: the tool 3DGS users convert with) when it is
installed (``$SPLAT_TRANSFORM``, ``PATH``, or ``~/node_modules/.bin``), else by our own writers
(:mod:`neurocodec.codecs.splat.io`, same formats); ``spz-nc`` / ``sog-nc`` always use ours.
Every file is read back by our readers. One point each (the formats have no quality knob).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from neurocodec.errors import InputError
from neurocodec.eval.baselines import Baseline


def splat_transform() -> str | None:
    for cand in (os.environ.get("SPLAT_TRANSFORM"), shutil.which("splat-transform"),
                 str(Path.home() / "node_modules" / ".bin" / "splat-transform")):
        if cand and Path(cand).is_file() and shutil.which("node"):
            return cand
    return None


def _st_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
        return (out.stdout or out.stderr).strip().splitlines()[0][:40]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown version"


def _st_encode(exe: str, ext: str) -> Callable:
    def encode(scene, _q) -> bytes:
        from neurocodec.codecs.splat.io import write_ply

        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "in.ply", Path(d) / f"out{ext}"
            write_ply(src, scene)
            r = subprocess.run([exe, "-q", "-g", "cpu", str(src), str(dst)],
                               capture_output=True, text=True, timeout=1800)
            if r.returncode or not dst.is_file():
                raise InputError(f"splat-transform failed: {(r.stderr or r.stdout)[-300:]}")
            return dst.read_bytes()
    return encode


def _decode(ext: str) -> Callable:
    def decode(data: bytes, _shape=None):
        from neurocodec.codecs.splat.io import decode_sog_bundle, decode_spz

        return decode_spz(data) if ext == ".spz" else decode_sog_bundle(data)
    return decode


def _ours(ext: str) -> Callable:
    def encode(scene, _q) -> bytes:
        from neurocodec.codecs.splat.io import encode_sog, encode_spz

        return encode_spz(scene) if ext == ".spz" else encode_sog(scene)
    return encode


_WHAT = {".spz": "Niantic SPZ", ".sog": "PlayCanvas SOG v2 (bundled .sog)"}


def _baseline(name: str, ext: str, tool: bool) -> Baseline:
    exe = splat_transform() if tool else None
    if exe:
        how = f"written by splat-transform {_st_version(exe)} -g cpu"
        enc = _st_encode(exe, ext)
    else:
        how = "written by neurocodec's own writer" + (" (splat-transform not installed)"
                                                       if tool else "")
        enc = _ours(ext)
    return Baseline(name=name, description=f"{_WHAT[ext]}, {how}; read back by neurocodec",
                    qualities=(0,), knob=None, encode=enc, decode=_decode(ext))


SPLAT_BASELINES: dict[str, Callable[[], Baseline]] = {
    "spz": lambda: _baseline("spz", ".spz", True),
    "sog": lambda: _baseline("sog", ".sog", True),
    "spz-nc": lambda: _baseline("spz-nc", ".spz", False),
    "sog-nc": lambda: _baseline("sog-nc", ".sog", False),
}


def get_splat_baseline(name: str) -> Baseline:
    if name not in SPLAT_BASELINES:
        raise InputError(f"unknown splat baseline {name!r} (known: {', '.join(SPLAT_BASELINES)})")
    return SPLAT_BASELINES[name]()
