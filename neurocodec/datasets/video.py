"""Video clips for the benchmark: folders of clips, read by :mod:`neurocodec.codecs.video.io`.

:func:`read_clip` is :func:`~neurocodec.codecs.video.io.read_video` (one reader: containers,
.y4m, raw .yuv with ``WxH`` in the name, read as 8-bit 4:2:0, colour converted by ffmpeg with
the file's own tags, untagged BT.601 limited range) plus the bench's lenient frame count and
a centre crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocodec.codecs.video.io import READ_EXTS, read_video
from neurocodec.errors import InputError

VIDEO_EXTS = set(READ_EXTS)


def list_clips(root: str | Path) -> list[Path]:
    p = Path(root)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise InputError(f"{p}: no such file or directory")
    clips = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_EXTS)
    if not clips:
        raise InputError(f"{p}: no video clips ({', '.join(sorted(VIDEO_EXTS))})")
    return clips


def read_clip(path: str | Path, frames: int = 0, size: tuple[int, int] | None = None) -> np.ndarray:
    """The first ``frames`` frames (0 = all; fewer if the clip is shorter) as uint8
    ``[T, H, W, 3]``, centre-cropped to ``size = (H, W)`` when given (cropping, not scaling,
    keeps the pixels the codecs see real)."""
    if frames < 0:
        raise InputError(f"frames must be >= 0, got {frames}")
    clip, _ = read_video(path, frames=(0, frames) if frames else None, clamp=True)
    if size:
        h, w = clip.shape[1:3]
        th, tw = size
        if th > h or tw > w:
            raise InputError(f"{path}: {w}x{h} is smaller than the requested {tw}x{th}")
        y0, x0 = (h - th) // 2, (w - tw) // 2
        clip = clip[:, y0:y0 + th, x0:x0 + tw]
    return np.ascontiguousarray(clip)
