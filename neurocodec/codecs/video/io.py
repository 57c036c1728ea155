"""Reading and writing video clips: uint8 RGB ``[T, H, W, 3]`` frames and a JSON-able ``meta``.

Every conversion between Y'CbCr and RGB happens in the ffmpeg of imageio-ffmpeg
(:func:`neurocodec.eval.ffmpeg.ffmpeg_exe`), in both directions, with its scaler's defaults,
so that a clip written here and read back goes through one pair of inverse conversions:

* files tagged with their colour (most .mp4/.mkv) are converted with their own tags;
* untagged Y'CbCr (.yuv, .y4m, untagged containers) is read as BT.601, limited range, the
  convention of the classic test sequences; the .y4m/.yuv writers produce exactly that;
* both directions use accurate rounding and full chroma interpolation (:data:`SWS_FLAGS`):
  ffmpeg's defaults are biased (~1 code value darker per 4:2:0 read/write generation).

Reading (:data:`READ_EXTS`, anything else ffmpeg opens is tried too):

* ``.y4m``: the header (size, frame rate, chroma) and every ``FRAME`` marker are checked here
  before ffmpeg decodes anything; a truncated or malformed file is refused.
* ``.yuv``: raw 8-bit 4:2:0 (I420). The size is ``video_size=(W, H)`` or ``WxH`` in the name
  (``foreman_352x288.yuv``); a number right after it is the frame rate
  (``RaceHorses_416x240_30.yuv``, ``clip_320x192_12fps.yuv``), else 25 fps. The length
  must be a whole number of frames.
* containers (.mp4, .mkv, .mov, .webm, .avi, ...): the first video stream, rotated as it is
  displayed. ffmpeg prints rates rounded to 2 decimals; 23.98/29.97/59.94... are taken to be
  the NTSC rates N*1000/1001.
* a folder of PNG frames (``frames/``), in natural name order, at 25 fps.

Writing (:data:`WRITE_EXTS`; :func:`output_ok` says whether a path is one), atomically:

* ``.mp4``: H.264 **lossless RGB** (libx264rgb, ``-qp 0``, High 4:4:4 Predictive, GBR
  planes): :func:`read_video` gives back exactly the frames written. Many players (browsers,
  QuickTime) do not play 4:4:4 H.264; ffmpeg-based tools do.
* ``.y4m``: 8-bit Y'CbCr, BT.601 limited range (untagged), **lossy** (the RGB→Y'CbCr
  rounding; 4:2:0 also halves chroma). Chroma is ``C420jpeg`` unless the clip came from a
  4:4:4 or RGB source (``meta["source_pix_fmt"]``), then ``C444``; ``meta["y4m_chroma"]``
  ("420"/"444") decides explicitly.
* ``.yuv``: raw 8-bit 4:2:0 (I420), BT.601 limited range, **lossy** as 4:2:0 y4m; the file
  holds no size or rate (name it ``clip_WxH_FPS.yuv`` to read it back as it was).
* **a folder of PNG frames**, **exact**: a path with no extension or one ending in ``/``
  (``out/``, ``frames``), or an existing directory. It is created with ``000000.png``,
  ``000001.png``, ... (0-based, :data:`PNG_NAME`; ``ffmpeg -i out/%06d.png`` reads it). An
  existing folder is replaced only with ``force`` and only if it holds nothing but such
  frames (or nothing).

The frame rate written is ``meta["fps_fraction"]`` (``"30000/1001"``) or ``meta["fps"]``
(default 25).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from neurocodec.codecs.container import check_output, umask_mode
from neurocodec.errors import ExternalToolError, InputError

READ_EXTS: tuple[str, ...] = (".y4m", ".yuv", ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi",
                              ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".ogv",
                              ".264", ".h264", ".265", ".h265", ".hevc", ".266", ".vvc", ".ivf")
FOLDER = "/"  # the WRITE_EXTS entry that stands for a folder of PNG frames
WRITE_EXTS: tuple[str, ...] = (".mp4", ".y4m", ".yuv", FOLDER)
PNG_NAME = "{:06d}.png"
MAX_CLIP_BYTES = 1 << 32  # decoded RGB bytes (T*H*W*3) one read may return
# ffmpeg's default Y'CbCr -> RGB path truncates: every 4:2:0 read, write, read generation of a
# clip lost ~1 code value of brightness per channel. With accurate rounding and full chroma
# interpolation on both sides generations converge (and the mean stays within ~0.1).
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int"
DEFAULT_FPS = 25.0

_PNG_FRAME = re.compile(r"\d{6}\.png")
_NAME_SIZE = re.compile(r"(?<![0-9])(\d{1,5})x(\d{1,5})(?:_(\d{1,3}(?:\.\d+)?)(?:fps|hz)?"
                        r"(?![A-Za-z0-9.]))?", re.IGNORECASE)
_MAX_DIM = 1 << 16
_FFMPEG_NOISE = re.compile(r"^\s*(\[[^\]]*\]\s*)+")  # "[in#0 @ 0x...] " prefixes
_Y4M_MAX_HEADER = 1024


# ----------------------------------------------------------------------------- output rule


def _output_kind(path: str | os.PathLike) -> str | None:
    """"mp4" / "y4m" / "yuv" / "png" (a folder of PNG frames) or None."""
    s = os.fspath(path)
    p = Path(s)
    if s.endswith(("/", os.sep)) or p.is_dir() or not p.suffix:
        return "png"
    ext = p.suffix.lower()
    return ext[1:] if ext in WRITE_EXTS else None


def output_ok(path: str | os.PathLike) -> str | None:
    """None if :func:`write_video` can write to ``path`` (by its name), else a one-line
    reason. Whether an existing output may be replaced (``force``) is not checked here."""
    kind = _output_kind(path)
    p = Path(path)
    if kind is None:
        return (f"{p}: a video decodes to .mp4 (lossless RGB), .y4m, .yuv or a folder of PNG "
                f"frames (a path ending in '/'), not {p.suffix!r}")
    if kind == "png" and p.exists() and not p.is_dir():
        return f"{p}: a folder of PNG frames was asked for, but it is a file"
    return None


# ----------------------------------------------------------------------------- helpers


def _ffmpeg() -> str:
    from neurocodec.eval.ffmpeg import ffmpeg_exe

    try:
        return ffmpeg_exe()
    except Exception as e:  # noqa: BLE001 - BaselineUnavailable: reading needs ffmpeg
        raise InputError(f"cannot read or write video: {e}") from None


def _ffmpeg_reason(stderr: str) -> str:
    """The first line of ffmpeg's error output, without its ``[demuxer @ 0x...]`` prefixes:
    the cause ("moov atom not found"), not the generic last line."""
    for line in stderr.splitlines():
        line = _FFMPEG_NOISE.sub("", line).strip()
        if line and not line.startswith("Last message repeated"):
            return line[:200]
    return "ffmpeg failed"


def _fraction(fps: Any, snap: bool = True) -> Fraction:
    """A frame rate as a fraction: "30000/1001" as it is; 29.97 (a rate rounded, as ffmpeg
    prints it, or a float) → 30000/1001 when ``snap``."""
    try:
        f = Fraction(fps) if isinstance(fps, (str, int, Fraction)) else Fraction(float(fps))
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(f"invalid frame rate {fps!r}") from None
    if not 0 < f <= 1000:
        raise InputError(f"frame rate {float(f):g} is outside 0..1000")
    if f.denominator == 1 or not snap or isinstance(fps, Fraction) or "/" in str(fps):
        return f
    for base in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(base * 1000, 1001)
        if abs(f - ntsc) < Fraction(6, 1000):
            return ntsc
    return f.limit_denominator(1001)


def _rate_meta(rate: Fraction) -> dict:
    return {"fps": float(rate), "fps_fraction": f"{rate.numerator}/{rate.denominator}"}


def _range(frames: tuple[int, int] | None) -> tuple[int, int | None]:
    if frames is None:
        return 0, None
    try:
        a, b = (int(x) for x in frames)
    except (TypeError, ValueError):
        raise InputError(f"frame range must be two integers A:B, got {frames!r}") from None
    if a < 0 or b <= a:
        raise InputError(f"frame range {a}:{b} is empty or negative (A:B keeps frames A..B-1)")
    return a, b


def _check_span(path: Path, total: int, first: int, stop: int | None, strict: bool) -> int:
    """The number of frames that ``first:stop`` keeps of a clip of ``total`` frames."""
    if total == 0:
        raise InputError(f"{path}: no frames")
    if stop is None:
        stop = total
    if stop > total:
        if strict or first >= total:
            raise InputError(f"{path}: frames {first}:{stop} are outside the clip "
                             f"({total} frames, 0:{total})")
        stop = total
    return stop - first


def _check_bytes(path: Path, n: int, w: int, h: int) -> None:
    if n * h * w * 3 > MAX_CLIP_BYTES:
        raise InputError(f"{path}: {n} frames of {w}x{h} would take {n * h * w * 3 / 2**30:.1f} "
                         f"GiB as RGB, over the {MAX_CLIP_BYTES / 2**30:.0f} GiB cap; "
                         f"read fewer frames (--frames A:B)")


# ----------------------------------------------------------------------------- readers


def _yuv_size(path: Path, video_size: tuple[int, int] | None) -> tuple[int, int, Fraction]:
    m = _NAME_SIZE.search(path.stem)
    rate = _fraction(m[3]) if m and m[3] else Fraction(int(DEFAULT_FPS))
    if video_size is not None:
        try:
            w, h = (int(v) for v in video_size)
        except (TypeError, ValueError):
            raise InputError(f"video size must be W, H, got {video_size!r}") from None
    elif m:
        w, h = int(m[1]), int(m[2])
    else:
        raise InputError(f"{path}: raw .yuv needs its size: --video-size WxH or WxH in its "
                         f"name (clip_352x288.yuv)")
    if not (0 < w <= _MAX_DIM and 0 < h <= _MAX_DIM):
        raise InputError(f"{path}: video size {w}x{h} is outside 1..{_MAX_DIM}")
    return w, h, rate


def _plane_bytes(chroma: str, w: int, h: int) -> tuple[str, int] | None:
    """y4m ``C`` tag → (ffmpeg pix_fmt, bytes per frame)."""
    m = re.fullmatch(r"(mono|420|411|422|444|444alpha)(jpeg|paldv|mpeg2)?(?:p(9|1[0246]))?",
                     chroma)
    if not m or (m[2] and m[1] != "420"):
        if chroma == "mono16":
            return "gray16le", 2 * w * h
        return None
    sub, depth = m[1], int(m[3] or 8)
    size = {"mono": 0, "420": 2 * ((w + 1) // 2) * ((h + 1) // 2), "411": 2 * ((w + 3) // 4) * h,
            "422": 2 * ((w + 1) // 2) * h, "444": 2 * w * h, "444alpha": 3 * w * h}[sub] + w * h
    if sub == "mono":
        fmt = "gray" if depth == 8 else f"gray{depth}le"
    else:
        fmt = {"444alpha": "yuva444p"}.get(sub, f"yuv{sub}p")
        fmt += "" if depth == 8 else f"{depth}le"
    return fmt, size * (1 if depth == 8 else 2)


def _y4m_header(path: Path) -> tuple[int, int, Fraction, str, int]:
    """Checks a YUV4MPEG2 file natively: (W, H, rate, pix_fmt, frames)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(_Y4M_MAX_HEADER)
        end = head.find(b"\n")
        if not head.startswith(b"YUV4MPEG2 ") or end < 0:
            raise InputError(f"{path}: not a YUV4MPEG2 file (bad or missing header)")
        # a header whose newline was lost runs into the frame data: its tokens are quoted
        # (repr, cut short) in every message below
        fields = {t[:1]: t[1:] for t in head[10:end].decode("ascii", "replace").split()}
        try:
            w, h = int(fields["W"]), int(fields["H"])
        except (KeyError, ValueError):
            raise InputError(f"{path}: y4m header has no valid W and H") from None
        if not (0 < w <= _MAX_DIM and 0 < h <= _MAX_DIM):
            raise InputError(f"{path}: y4m size {w}x{h} is outside 1..{_MAX_DIM}")
        num, _, den = fields.get("F", "25:1").partition(":")
        try:
            rate = _fraction(Fraction(int(num), int(den or 1)))
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{path}: y4m frame rate {fields.get('F', '')[:20]!r} is invalid"
                             ) from None
        if fields.get("I", "p") not in ("p", "?"):
            raise InputError(f"{path}: interlaced y4m ({'I' + fields['I'][:20]!r}) is not "
                             f"supported")
        chroma = fields.get("C", "420jpeg")
        planes = _plane_bytes(chroma, w, h)
        if planes is None:
            raise InputError(f"{path}: y4m colour space {'C' + chroma[:20]!r} is not supported")
        pix_fmt, frame_bytes = planes
        # Walk the FRAME markers (a seek per frame, no data read): a clip that ends inside a
        # frame, or has anything but FRAME between frames, is refused here.
        pos, n = end + 1, 0
        while pos < size:
            f.seek(pos)
            marker = f.read(256)
            stop = marker.find(b"\n")
            if not marker.startswith(b"FRAME") or stop < 0:
                raise InputError(f"{path}: corrupt y4m: no FRAME marker at byte {pos} "
                                 f"(frame {n})")
            pos += stop + 1 + frame_bytes
            if pos > size:
                raise InputError(f"{path}: truncated y4m: frame {n} has "
                                 f"{size - (pos - frame_bytes)} of {frame_bytes} bytes")
            n += 1
    return w, h, rate, pix_fmt, n


def _probe(path: Path) -> dict:
    """What ffmpeg says about the first video stream of a container."""
    r = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
                       capture_output=True, check=False)
    text = r.stderr.decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines()
             if re.match(r"\s*Stream #", ln) and " Video: " in ln and "attached pic" not in ln]
    if not lines:
        if "Input #0" in text:
            raise InputError(f"{path}: no video stream")
        raise InputError(f"{path}: cannot read video, corrupt or unsupported "
                         f"(ffmpeg: {_ffmpeg_reason(text)})")
    line = lines[0].split(" Video: ", 1)[1]
    fields = re.split(r",\s*(?![^()]*\))", line)
    pix = fields[1].strip() if len(fields) > 1 else "unknown"
    m = next((m for f in fields[2:] if (m := re.match(r"\s*(\d+)x(\d+)\b", f))), None)
    if not m:
        raise InputError(f"{path}: cannot read video (no frame size in {line[:80]!r})")
    w, h = int(m[1]), int(m[2])
    rot = re.search(r"rotation of (-?[\d.]+) degrees", text)
    if rot and round(float(rot[1])) % 180 == 90:
        w, h = h, w
    fps = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)(k?) (?:fps|tbr)", line)
    rate = (_fraction(float(fps[1]) * (1000 if fps[2] else 1)) if fps and float(fps[1]) > 0
            else Fraction(int(DEFAULT_FPS)))
    dur = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    seconds = int(dur[1]) * 3600 + int(dur[2]) * 60 + float(dur[3]) if dur else None
    tags = re.search(r"\((.*)\)", pix)
    colour = [t.strip() for t in tags[1].split(",")] if tags else []
    colour = [t for t in colour if t not in ("progressive", "tt", "bb", "tb", "bt",
                                             "top first", "bottom first")]
    return {"w": w, "h": h, "rate": rate, "pix_fmt": pix.split("(")[0].strip(),
            "colour": ", ".join(colour), "seconds": seconds}


def _decode(path: Path, in_args: list[str], w: int, h: int, first: int, n: int | None,
            stop: int | None, hint: int = 64) -> np.ndarray:
    """Runs ffmpeg to rgb24 and keeps frames ``first..first+n-1`` (``n=None``: all from
    ``first``, about ``hint`` of them), never holding more than :data:`MAX_CLIP_BYTES`."""
    out_args = ["-frames:v", str(stop)] if stop is not None else []
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-xerror", *in_args,
           "-i", str(path), "-map", "0:V:0", "-an", "-sn", "-dn", "-sws_flags", SWS_FLAGS,
           *out_args,
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
    frame = h * w * 3
    cap = MAX_CLIP_BYTES // frame
    buf = np.empty((n if n is not None else max(1, min(cap, hint)), h, w, 3), np.uint8)
    scratch = np.empty((h, w, 3), np.uint8)
    got = index = 0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err)
        try:
            while True:
                keep = index >= first
                if keep and got == buf.shape[0]:
                    if n is not None or got >= cap:
                        break
                    buf = np.concatenate([buf, np.empty_like(buf[:min(got, cap - got)])])
                target = buf[got] if keep else scratch
                view, filled = memoryview(target).cast("B"), 0
                while filled < frame:
                    k = proc.stdout.readinto(view[filled:])
                    if not k:
                        break
                    filled += k
                if filled < frame:
                    if filled:
                        raise InputError(f"{path}: cannot read video (frame {index} is cut "
                                         f"short)")
                    break
                got += keep
                index += 1
            extra = proc.stdout.read(1) if n is None else b""
        finally:
            proc.stdout.close()
            if proc.poll() is None and (n is not None and got == n):
                proc.kill()  # we have what was asked for (a stream longer than declared)
            rc = proc.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if extra and n is None:
        _check_bytes(path, cap + 1, w, h)
    if rc != 0 and not (n is not None and got == n):  # all that was asked for: keep it
        raise InputError(f"{path}: cannot read video, corrupt or unsupported "
                         f"(ffmpeg: {_ffmpeg_reason(stderr)})")
    return buf[:got] if got == buf.shape[0] else np.ascontiguousarray(buf[:got])


def _read_pngs(path: Path, first: int, stop: int | None, strict: bool) -> tuple[np.ndarray, dict]:
    from PIL import Image, UnidentifiedImageError

    def key(q: Path):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", q.name)]

    files = sorted((q for q in path.iterdir() if q.suffix.lower() == ".png"), key=key)
    n = _check_span(path, len(files), first, stop, strict)
    files = files[first:first + n]
    out = None
    mode = "RGB"
    for i, q in enumerate(files):
        try:
            with Image.open(q) as im:
                if out is None:
                    w, h = im.size
                    mode = im.mode
                    _check_bytes(path, n, w, h)
                    out = np.empty((n, h, w, 3), np.uint8)
                if im.size != (w, h):
                    raise InputError(f"{q}: {im.size[0]}x{im.size[1]}, but the first frame "
                                     f"is {w}x{h}")
                out[i] = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise InputError(f"{q}: cannot decode PNG frame ({e})") from None
    meta = {**_rate_meta(Fraction(int(DEFAULT_FPS))), "source_pix_fmt": mode.lower(),
            "source_format": "png-folder", "first_frame": first}
    return out, meta


def _read(path: str | os.PathLike, video_size: tuple[int, int] | None, first: int,
          stop: int | None, strict: bool) -> tuple[np.ndarray, dict]:
    p, info = Path(path), {}
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        return _read_pngs(p, first, stop, strict)
    ext = p.suffix.lower()
    try:
        if ext == ".yuv":
            w, h, rate = _yuv_size(p, video_size)
            fb = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
            size = p.stat().st_size
            if size % fb:
                raise InputError(f"{p}: {size} bytes is not a whole number of {w}x{h} 8-bit "
                                 f"4:2:0 frames ({fb} bytes each: {size // fb} frames and "
                                 f"{size % fb} bytes left over); is --video-size right?")
            n = _check_span(p, size // fb, first, stop, strict)
            _check_bytes(p, n, w, h)
            args = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
                    "-framerate", f"{rate.numerator}/{rate.denominator}",
                    "-skip_initial_bytes", str(first * fb)]
            clip = _decode(p, args, w, h, 0, n, n)
            pix = "yuv420p"
        elif ext == ".y4m":
            w, h, rate, pix, total = _y4m_header(p)
            n = _check_span(p, total, first, stop, strict)
            _check_bytes(p, n, w, h)
            clip = _decode(p, ["-f", "yuv4mpegpipe"], w, h, first, n, first + n)
        else:
            info = _probe(p)
            w, h, rate, pix = info["w"], info["h"], info["rate"], info["pix_fmt"]
            est = (math.ceil(info["seconds"] * float(rate)) if info["seconds"] is not None
                   else None)
            n = None if stop is None else stop - first
            want = n if n is not None else (max(est - first, 1) if est else 1)
            _check_bytes(p, want, w, h)
            clip = _decode(p, [], w, h, first, n, stop, hint=want + 1)
            if clip.shape[0] == 0 or (n is not None and clip.shape[0] < n):
                got = first + clip.shape[0]
                if clip.shape[0] == 0 and first == 0:
                    raise InputError(f"{p}: no frames")
                if strict or clip.shape[0] == 0:
                    raise InputError(f"{p}: frames {first}:{stop} are outside the clip "
                                     f"({got} frames, 0:{got})")
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from None
    if clip.shape[0] == 0:
        raise InputError(f"{p}: no frames")
    meta = {**_rate_meta(rate), "source_pix_fmt": pix, "source_format": ext.lstrip(".") or "?",
            "first_frame": first}
    if info.get("colour"):
        meta["source_colour"] = info["colour"]
    return clip, meta


def read_video(path: str | os.PathLike, *, video_size: tuple[int, int] | None = None,
               frames: tuple[int, int] | None = None,
               clamp: bool = False) -> tuple[np.ndarray, dict]:
    """A clip as uint8 RGB ``[T, H, W, 3]`` and its meta.

    ``video_size=(W, H)``: the size of a raw .yuv (else ``WxH`` in its name). ``frames=(A, B)``
    keeps frames A..B-1 (0-based), which must lie inside the clip (``clamp=True``: B past
    the clip's end is cut to it, the bench's "at most N frames"; A must still be inside).

    ``meta`` (JSON-able): ``fps`` (float), ``fps_fraction`` ("N/D"), ``source_pix_fmt``
    (ffmpeg's name: "yuv420p", "gbrp"; "rgb"/"rgba"/"l"... for PNG frames), ``source_format``
    (the extension, or "png-folder"), ``first_frame`` (A), and for containers
    ``source_colour`` (ffmpeg's range/matrix tags, e.g. "tv, bt709") when it has any. Every failure (missing, unreadable or corrupt file, a .yuv that is not a
    whole number of frames, zero frames, a range outside the clip, a clip over
    :data:`MAX_CLIP_BYTES`) is an :class:`~neurocodec.errors.InputError` with a one-line
    message.
    """
    first, stop = _range(frames)
    return _read(path, video_size, first, stop, strict=not clamp)


# ----------------------------------------------------------------------------- writers


def _check_clip(clip: Any) -> np.ndarray:
    if not isinstance(clip, np.ndarray) or clip.dtype != np.uint8 or clip.ndim != 4 \
            or clip.shape[-1] != 3 or 0 in clip.shape:
        what = (f"{clip.dtype} {list(clip.shape)}" if isinstance(clip, np.ndarray)
                else type(clip).__name__)
        raise InputError(f"a clip to write must be uint8 [T, H, W, 3] with T, H, W > 0, "
                         f"not {what}")
    return np.ascontiguousarray(clip)


def _meta_rate(meta: dict | None) -> Fraction:
    meta = meta or {}
    if meta.get("fps_fraction"):
        return _fraction(str(meta["fps_fraction"]))
    return _fraction(meta.get("fps") or DEFAULT_FPS)


def _y4m_chroma(meta: dict | None) -> str:
    meta = meta or {}
    if meta.get("y4m_chroma") in ("420", "444"):
        return meta["y4m_chroma"]
    src = str(meta.get("source_pix_fmt", ""))
    rgb_like = src.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "0bgr", "yuv444",
                               "yuvj444", "yuva444"))
    return "444" if rgb_like else "420"


def _encode(clip: np.ndarray, rate: Fraction, out: str, args: list[str]) -> bytes:
    """rgb24 frames through ffmpeg to ``out`` ("pipe:" returns the bytes)."""
    t, h, w, _ = clip.shape
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate",
           f"{rate.numerator}/{rate.denominator}", "-i", "pipe:", *args, out]
    # the frames' own buffer, not a bytes copy of the clip (0.37 GB at 720p)
    data = memoryview(np.ascontiguousarray(clip)).cast("B")
    r = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if r.returncode != 0:
        raise ExternalToolError(f"ffmpeg failed: {_ffmpeg_reason(r.stderr.decode('utf-8', 'replace'))}")
    return r.stdout


def _write_pngs(p: Path, clip: np.ndarray, force: bool) -> None:
    from PIL import Image

    d = p.parent if str(p.parent) else Path(".")
    if not d.is_dir():
        raise InputError(f"{d}: output directory does not exist")
    if p.exists():
        if not p.is_dir():
            raise InputError(f"{p}: a folder of PNG frames was asked for, but it is a file")
        entries = list(p.iterdir())
        if entries and not force:
            raise InputError(f"{p}: output exists (use --force to overwrite)")
        if any(not (q.is_file() and _PNG_FRAME.fullmatch(q.name)) for q in entries):
            raise InputError(f"{p}: holds files other than PNG frames ({PNG_NAME.format(0)}, "
                             f"...): not replacing it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=d))
    old = None
    try:
        os.chmod(tmp, umask_mode(folder=True))  # not mkdtemp's 0700
        for i, frame in enumerate(clip):
            Image.fromarray(frame).save(tmp / PNG_NAME.format(i), format="PNG", compress_level=4)
        if p.exists() and any(p.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".old", dir=d))
            os.replace(p, old)  # onto an empty directory: allowed
        os.replace(tmp, p)
    except BaseException:
        if old is not None and not p.exists():
            os.replace(old, p)
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_video(path: str | os.PathLike, clip: np.ndarray, force: bool = False,
                meta: dict | None = None) -> None:
    """Write uint8 RGB ``[T, H, W, 3]`` to ``path`` as the module docstring describes
    (.mp4 lossless RGB, .y4m, .yuv, or a folder of PNG frames), at ``meta``'s frame rate.

    Atomic: the data goes to a temporary file (folder) beside ``path`` and is renamed into
    place; an existing output is replaced only with ``force``; on any error nothing at
    ``path`` changes.
    """
    from neurocodec.codecs.container import write_atomic

    msg = output_ok(path)
    if msg:
        raise InputError(msg)
    clip = _check_clip(clip)
    kind, p, rate = _output_kind(path), Path(path), _meta_rate(meta)
    if kind == "png":
        return _write_pngs(p, clip, force)
    d = check_output(p, force)
    if kind in ("y4m", "yuv"):
        pix = f"yuv{_y4m_chroma(meta)}p" if kind == "y4m" else "yuv420p"
        fmt = "yuv4mpegpipe" if kind == "y4m" else "rawvideo"
        data = _encode(clip, rate, "pipe:", ["-sws_flags", SWS_FLAGS, "-pix_fmt", pix, "-f", fmt])
        return write_atomic(p, data, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        os.chmod(tmp, umask_mode())  # not mkstemp's 0600 (ffmpeg keeps the file's mode)
        _encode(clip, rate, tmp, ["-c:v", "libx264rgb", "-qp", "0", "-preset", "veryfast",
                                  "-pix_fmt", "rgb24", "-f", "mp4"])
        if p.exists() and not force:  # appeared meanwhile
            raise InputError(f"{p}: output exists (use --force to overwrite)")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
