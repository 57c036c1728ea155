"""Video clips as uint8 RGB frame arrays, read through the ffmpeg of imageio-ffmpeg.

Containers (mp4, mkv, …) are decoded by ffmpeg. Raw ``.yuv`` files must carry their size in
the name (``name_352x288.yuv``) and are read as 8-bit 4:2:0. Both are converted to RGB by
ffmpeg's scaler with the file's own tags (untagged clips: BT.601, limited range, the
convention of the classic test sequences); from RGB on, every codec sees the same frames.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from neurocodec.errors import InputError

VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".y4m", ".yuv"}
_SIZE = re.compile(r"(\d+)x(\d+)")


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
    """The first ``frames`` frames (0 = all) as uint8 ``[T, H, W, 3]``, centre-cropped to
    ``size = (H, W)`` when given (cropping, not scaling, keeps the pixels the codecs see real)."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    params = []
    if path.suffix.lower() == ".yuv":
        m = _SIZE.search(path.stem)
        if not m:
            raise InputError(f"{path}: raw .yuv needs WxH in its name")
        params = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{m[1]}x{m[2]}"]
    out = []
    try:
        gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", input_params=params)
        meta = next(gen)
        w, h = meta["size"]
        for buf in gen:
            out.append(np.frombuffer(buf, np.uint8).reshape(h, w, 3))
            if frames and len(out) == frames:
                break
        gen.close()
    except (OSError, RuntimeError, StopIteration) as e:
        raise InputError(f"{path}: cannot read video ({e})") from None
    if not out:
        raise InputError(f"{path}: no frames")
    clip = np.stack(out)
    if size:
        th, tw = size
        if th > h or tw > w:
            raise InputError(f"{path}: {w}x{h} is smaller than the requested {tw}x{th}")
        y0, x0 = (h - th) // 2, (w - tw) // 2
        clip = clip[:, y0:y0 + th, x0:x0 + tw]
    return np.ascontiguousarray(clip)
