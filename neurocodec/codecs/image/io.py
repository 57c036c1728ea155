"""Reading and writing image files with user-facing errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from neurocodec.codecs.container import read_file, write_atomic
from neurocodec.errors import InputError

READ_EXTS = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".webp"}
WRITE_FORMATS = {".png": "PNG", ".ppm": "PPM", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF"}
MAX_PIXELS = 1 << 27  # 134 Mpixel


def to_tensor(img: np.ndarray):
    """uint8 ``[H, W, 3]`` → float ``[1, 3, H, W]`` in [0, 1]."""
    import torch

    # A copy: arrays from PIL are read-only, which torch warns about (and would not be safe).
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(x) -> np.ndarray:
    """float ``[1, 3, H, W]`` in [0, 1] → uint8 ``[H, W, 3]`` (rounded, clipped)."""
    import torch

    return (x[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def read_image(path: str | Path) -> tuple[np.ndarray, str]:
    """Returns uint8 ``[H, W, 3]`` RGB and the file's original PIL mode."""
    p = Path(path)
    if p.suffix.lower() not in READ_EXTS:
        raise InputError(f"{p}: unsupported image extension {p.suffix or '(none)'!r} "
                         f"(expected one of {', '.join(sorted(READ_EXTS))})")
    data = read_file(p)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode = im.mode
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError) as e:
        raise InputError(f"{p}: cannot decode image ({e.__class__.__name__}: {e})") from None
    return np.ascontiguousarray(arr), mode


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
