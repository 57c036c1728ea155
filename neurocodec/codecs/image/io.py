"""Reading and writing image files with user-facing errors."""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from neurocodec.codecs.container import read_file, write_atomic
from neurocodec.errors import InputError, NeurocodecError

# Pillow logs what it finds wrong in a file it then refuses ("More samples per pixel than can
# be decoded") at error level; with no handler Python's last resort prints it beside our
# one-line error. An application that configures logging still gets it.
logging.getLogger("PIL").addHandler(logging.NullHandler())

# what decode writes (WRITE_FORMATS) reads back; a still GIF is an image, an animated one a clip
READ_EXTS = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".webp", ".bmp", ".tif", ".tiff",
             ".gif"}
WRITE_FORMATS = {".png": "PNG", ".ppm": "PPM", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF"}
MAX_PIXELS = 1 << 27  # 134 Mpixel
# A file may declare more pixels than its bytes could ever code: libjpeg pads a damaged JPEG
# to its declared size, so 600 bytes once decoded to 47 Mpixel (1.2 GB, 1.6 s). Above
# FREE_PIXELS (4K UHD fits) an image needs a byte per PIXELS_PER_BYTE pixels; the densest
# real files (flat 1-bit PNGs: ~8,000 pixels a byte at deflate's best) stay well inside.
FREE_PIXELS = 1 << 23
PIXELS_PER_BYTE = 1 << 14
SIXTEEN_BIT = {"I", "I;16", "I;16B", "I;16L", "I;16N"}  # greyscale; RGB48 PNGs open as "RGB"
ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def to_tensor(img: np.ndarray):
    """uint8 ``[H, W, 3]`` → float ``[1, 3, H, W]`` in [0, 1]."""
    import torch

    # A copy: arrays from PIL are read-only, which torch warns about (and would not be safe).
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(x) -> np.ndarray:
    """float ``[1, 3, H, W]`` in [0, 1] → uint8 ``[H, W, 3]`` (rounded, clipped)."""
    import torch

    return (x[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def read_image(path: str | Path, *, drop_alpha: bool = False,
               frame: int | None = None) -> tuple[np.ndarray, str]:
    """Returns uint8 ``[H, W, 3]`` RGB and the file's original PIL mode, as a viewer shows it.

    EXIF orientation is applied; 16-bit samples are scaled to 8 bits (rounded, never clipped);
    greyscale, palette and CMYK become RGB. Refused with an InputError unless an option says
    what to do: an image with transparency (``drop_alpha``: discard the alpha plane, keeping
    the stored colours) and an animation of several frames (``frame``: that frame, from 0)."""
    p = Path(path)
    if p.suffix.lower() not in READ_EXTS:
        raise InputError(f"{p}: unsupported image extension {p.suffix or '(none)'!r} "
                         f"(expected one of {', '.join(sorted(READ_EXTS))})")
    data = read_file(p)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    libtiff: list[str] = []
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_PIXELS and twice that (_check_size refuses it);
            # its other warnings ("Corrupt EXIF data") are about files refused or read anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with Image.open(io.BytesIO(data)) as im:
                mode = im.mode
                _check_size(im.size, p, len(data))
                with _fd2_captured(libtiff) if im.format == "TIFF" else nullcontext():
                    _seek_frame(im, p, frame)
                    _check_size(im.size, p, len(data))  # a frame may declare its own size
                    im.load()
                ImageOps.exif_transpose(im, in_place=True)
                arr = _to_rgb(im, p, drop_alpha)
    except NeurocodecError:
        raise
    except UnidentifiedImageError:  # its message holds the repr of our buffer
        raise InputError(f"{p}: cannot decode image (not an image format Pillow reads)") from None
    except Exception as e:  # noqa: BLE001 - Pillow's plugins raise IndexError, KeyError,
        # TypeError, ZeroDivisionError... on damaged files, not only OSError/ValueError
        msg = " ".join(str(e).split())[:160]
        why = next((ln.strip() for t in libtiff for ln in t.splitlines() if ln.strip()), "")
        extra = f"; libtiff: {why[:120]}" if why else ""
        raise InputError(f"{p}: cannot decode image ({e.__class__.__name__}: {msg}{extra})"
                         ) from None
    return np.ascontiguousarray(arr), mode


@contextmanager
def _fd2_captured(sink: list[str]):
    """libtiff prints its warnings and errors straight to file descriptor 2, around the
    one-line error a command prints: while it decodes, fd 2 goes to a temporary file, whose
    text is appended to ``sink`` (the first line names the damage)."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read(4096).decode("utf-8", "replace"))


def _check_size(size: tuple[int, int], p: Path, nbytes: int) -> None:
    """Refuse, before decoding, a size over :data:`MAX_PIXELS` or one its file's
    ``nbytes`` cannot hold (see :data:`PIXELS_PER_BYTE`)."""
    w, h = size
    n = w * h
    if n > MAX_PIXELS:
        raise InputError(f"{p}: image of {w}x{h} pixels is over the {MAX_PIXELS:,}-pixel limit")
    if n > max(FREE_PIXELS, PIXELS_PER_BYTE * nbytes):
        raise InputError(f"{p}: image declares {w}x{h} pixels in only {nbytes:,} bytes "
                         f"(truncated or corrupt)")


def _seek_frame(im: Image.Image, p: Path, frame: int | None) -> None:
    n = getattr(im, "n_frames", 1)
    if frame is None:
        if n > 1:
            raise InputError(f"{p}: animated image of {n} frames; encode one with --frame N "
                             f"(0..{n - 1}), or the whole clip with a video codec")
        return
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < n:
        raise InputError(f"{p}: --frame {frame!r} is not a frame of this image "
                         f"({n} frame{'s' if n > 1 else ''}: 0..{n - 1})")
    im.seek(frame)


def _to_rgb(im: Image.Image, p: Path, drop_alpha: bool) -> np.ndarray:
    if im.mode in SIXTEEN_BIT:  # Pillow's convert("RGB") clips these to 255
        v = np.asarray(im)
        if v.min() < 0 or v.max() > 65535:
            raise InputError(f"{p}: {im.mode} samples beyond 16 bits are not supported")
        g = ((v.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if im.mode == "F":
        raise InputError(f"{p}: floating-point images are not supported (save as 8 or 16 bits)")
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"))
        see_through = int(np.count_nonzero(rgba[..., 3] != 255))
        if see_through and not drop_alpha:
            raise InputError(f"{p}: image has transparency ({see_through} of {rgba[..., 3].size} "
                             f"pixels not opaque), which neurocodec does not code; pass "
                             f"--drop-alpha to code the colours without it")
        return rgba[..., :3]
    return np.asarray(im.convert("RGB"))


def write_image(path: str | Path, img: np.ndarray, force: bool = False) -> None:
    """Write uint8 ``[H, W, 3]`` atomically; the format follows the extension."""
    p = Path(path)
    fmt = WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{p}: unsupported output extension {p.suffix or '(none)'!r} "
                         f"(expected one of {', '.join(sorted(WRITE_FORMATS))})")
    buf = io.BytesIO()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(img).save(buf, format=fmt, **kw)
    write_atomic(p, buf.getvalue(), force=force)
