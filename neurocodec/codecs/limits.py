"""Caps on what a file may make a decoder allocate, and strict checks of decoded fields.

A container header is untrusted input: every size in it is checked against
:class:`DecodeLimits` before any network runs or any buffer sized by the file is allocated.
The checks here raise :class:`~neurocodec.errors.BitstreamError` with a one-line message;
codecs of every medium (image, video, splat) share them.

Defaults (see docs/container.md):

* ``max_pixels = 2**26`` (67.1 Mpixel) per image or frame: 8000x8000 (64 M) and 8K UHD fit,
  anything larger is a deliberate choice. Images beyond 1024 pixels a side are coded in
  entropy tiles with banded transforms (:mod:`neurocodec.codecs.image.tiling`), so decoding
  holds ~20 bytes per pixel beyond the loaded model (docs/results/memory.md): ~1.9 GB in all
  at the cap, where one 32767x32767 header would ask for ~21 GB.
* ``max_frames = 100_000``: 55 minutes at 30 fps, far beyond a test sequence or a clip,
  small enough that a per-frame index of a file stays in the megabytes.
* ``max_gaussians = 2**24`` (16.8 M): real 3DGS scenes hold 1–6 M Gaussians; at 59 float32
  attributes each (position, scale, rotation, opacity, degree-3 SH) 2^24 decode to ~4 GB.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from neurocodec.errors import BitstreamError, InputError

# CLI flag that raises each cap; named in every message so a user knows what to do.
FLAGS = {"max_pixels": "--max-pixels", "max_frames": "--max-frames",
         "max_gaussians": "--max-gaussians"}
# Beyond this no cap is meaningful: the container's own size fields stop at 2**40.
MAX_CAP = 1 << 40


@dataclass(frozen=True)
class DecodeLimits:
    """Largest sizes a decoder accepts from a file (per image/frame, per file, per scene)."""

    max_pixels: int = 1 << 26
    max_frames: int = 100_000
    max_gaussians: int = 1 << 24

    def __post_init__(self) -> None:
        # A cap comes from the user (a CLI flag), not from a file: InputError, not BitstreamError.
        for f in fields(self):
            v = getattr(self, f.name)
            if type(v) is not int or not 1 <= v <= MAX_CAP:
                raise InputError(f"{FLAGS[f.name]} must be an integer in 1..{MAX_CAP}, got {v!r}")


DEFAULT_LIMITS = DecodeLimits()


def _show(value: Any) -> str:
    """A short repr for messages: a crafted header must not turn an error into a page."""
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def check_int(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` if it is an int (not a bool, not a float) in ``lo..hi``."""
    if type(value) is not int or not lo <= value <= hi:
        raise BitstreamError(f"invalid {name}: {_show(value)} (expected an integer in {lo}..{hi})")
    return value


def check_int_list(value: Any, name: str, length: int | tuple[int, int], lo: int, hi: int
                   ) -> list[int]:
    """``value`` if it is a list of ``length`` (or ``(min, max)`` many) ints in ``lo..hi``."""
    n_lo, n_hi = (length, length) if isinstance(length, int) else length
    if type(value) is not list or not n_lo <= len(value) <= n_hi:
        want = f"{n_lo}" if n_lo == n_hi else f"{n_lo}..{n_hi}"
        raise BitstreamError(f"invalid {name}: {_show(value)} (expected a list of {want} integers)")
    for i, v in enumerate(value):
        check_int(v, f"{name}[{i}]", lo, hi)
    return value


def check_str(value: Any, name: str, max_len: int, choices: tuple[str, ...] | None = None) -> str:
    """``value`` if it is a non-empty printable string of at most ``max_len`` characters (one
    of ``choices`` when given). Printable: names and keys end up in messages, which a newline
    or an escape sequence would break into lines or rewrite on a terminal."""
    if type(value) is not str or not 1 <= len(value) <= max_len:
        raise BitstreamError(f"invalid {name}: {_show(value)} "
                             f"(expected a string of 1..{max_len} characters)")
    if not value.isprintable():
        raise BitstreamError(f"invalid {name}: {_show(value)} (expected printable text)")
    if choices is not None and value not in choices:
        raise BitstreamError(f"invalid {name}: {_show(value)} (expected one of {', '.join(choices)})")
    return value


def check_cap(count: int, what: str, limits: DecodeLimits, cap: str) -> None:
    """Raise unless ``count`` is within ``limits.<cap>`` (``cap``: a DecodeLimits field)."""
    limit = getattr(limits, cap)
    if count > limit:
        raise BitstreamError(f"file declares {count} {what}, above the decode limit of {limit} "
                             f"(raise it with {FLAGS[cap]})")


def check_pixels(h: int, w: int, limits: DecodeLimits) -> None:
    check_cap(h * w, f"pixels ({w}x{h})", limits, "max_pixels")


def check_frames(n: int, limits: DecodeLimits) -> None:
    check_cap(n, "frames", limits, "max_frames")


def check_gaussians(n: int, limits: DecodeLimits) -> None:
    check_cap(n, "Gaussians", limits, "max_gaussians")
