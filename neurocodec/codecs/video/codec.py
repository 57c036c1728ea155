"""The INR video codecs (``hnerv``, ``nerv``): fit the clip, quantize what the decoder needs,
entropy-code it with the shared rANS backend, and back.

File (container v2, medium ``video``): ``shape = [T, H, W, 3]``; ``meta`` holds the
architecture (``inr``, every field checked on decode), ``fps`` and the fit's settings;
section 0 the fp16 quantization steps (weights, in parameter order, then HNeRV's embedding
centres and steps), section 1 every quantized tensor through :mod:`neurocodec.entropy.arrays`
(one table index per group: a whole tensor, or each of its rows, whichever the encoder found
cheaper — section 2 holds that choice, one byte per tensor — and each embedding channel).
bpp = 8 x file bytes / (T x H x W).
"""

from __future__ import annotations

import hashlib
import math
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from neurocodec.codecs.base import Codec, reject_options
from neurocodec.codecs.container import Container
from neurocodec.codecs.limits import (
    DEFAULT_LIMITS,
    DecodeLimits,
    check_frames,
    check_int,
    check_int_list,
    check_pixels,
    check_str,
)
from neurocodec.codecs.video import PARAMS_PER_PIXEL, quant
from neurocodec.codecs.video.fit import FitConfig, as_float, fit, frame_times, frames_uint8
from neurocodec.codecs.video.io import MAX_CLIP_BYTES
from neurocodec.codecs.video.models import KINDS, MAX_PAD, INRConfig, VideoINR
from neurocodec.entropy import arrays
from neurocodec.errors import BitstreamError, InputError

FORMAT = 1
MAX_STORED = 1 << 26  # parameters a file may declare (a 64M-parameter decoder is no clip codec)
DECODE_BATCH = 4  # frames per decoder pass (fewer for large frames: decode_batch)
DECODE_PIXELS = 1 << 20  # padded pixels per decoder pass: a 720p pass peaks ~0.4 GB


def parse_params(text: str | int) -> int:
    """``"0.3M"``, ``"300k"``, ``"300000"`` -> 300000."""
    if isinstance(text, int) and not isinstance(text, bool):
        v = float(text)
    else:
        s = str(text).strip().lower().replace("_", "")
        mult = {"k": 1e3, "m": 1e6}.get(s[-1:], 1.0)
        try:
            v = float(s[:-1] if s[-1:] in "km" else s) * mult
        except ValueError:
            raise InputError(f"--params must be a count like 300000, 300k or 0.3M, not "
                             f"{text!r}") from None
    if not math.isfinite(v) or not 1_000 <= v <= MAX_STORED:
        raise InputError(f"--params must be between 1k and {MAX_STORED / 1e6:.0f}M, not {text!r}")
    return int(round(v))


def _groups(q: np.ndarray, per_row: bool) -> list[np.ndarray]:
    if per_row:
        return list(q.reshape(q.shape[0], -1))
    return [q.ravel()]


def _group_sizes(shape: tuple[int, ...], per_row: bool) -> list[int]:
    n = math.prod(shape)
    return [n // shape[0]] * shape[0] if per_row else [n]


def _cheaper_per_row(q: np.ndarray) -> bool:
    """A table per row (8 bits each) pays when the rows' distributions differ enough."""
    if q.ndim < 2 or q.shape[0] == 1:
        return False
    whole = float(arrays.group_costs(q).min()) + 8
    rows = sum(float(arrays.group_costs(r).min()) + 8 for r in q.reshape(q.shape[0], -1))
    return rows < whole


class INRCodec(Codec):
    """``encode(clip uint8 [T, H, W, 3], quality, params=, epochs=, prune=, run_dir=, ...)``
    fits the INR (minutes: it is a per-clip training run) and returns the file."""

    medium = "video"
    qualities = list(range(len(PARAMS_PER_PIXEL)))
    FIT_OPTIONS = ("params", "epochs", "prune", "run_dir", "threads", "progress", "precision",
                   "channels_last", "seed", "weight_bits", "embed_bits")

    def __init__(self, kind: str):
        self.name = self.family = kind
        h = hashlib.sha256(f"{kind}/format{FORMAT}/{arrays.family().digest()}".encode())
        self.digest = h.hexdigest()[:16]

    # --- encode ---------------------------------------------------------------------------
    def encode(self, clip: np.ndarray, quality: int, meta: dict | None = None, **options: Any
               ) -> bytes:
        reject_options(self, options, self.FIT_OPTIONS)
        self.check_quality(quality)
        clip = np.asarray(clip)
        if clip.ndim != 4 or clip.shape[3] != 3 or clip.dtype != np.uint8 or not clip.shape[0]:
            raise InputError("a clip must be uint8 T x H x W x 3 with at least one frame")
        t, h, w, _ = clip.shape
        params = options.pop("params", None)
        params = (parse_params(params) if params is not None
                  else max(int(PARAMS_PER_PIXEL[quality] * t * h * w), 1_000))
        run_dir = options.pop("run_dir", None)
        fcfg = FitConfig(**{k: v for k, v in options.items() if v is not None})
        inr = INRConfig(self.name, t, h, w, params)
        model = fit(clip, inr, fcfg, run_dir)
        sections = pack(model, clip, fcfg.weight_bits, fcfg.embed_bits)
        # What the decoder will output, decoded from the sections themselves: its checksum lets
        # every decode verify that it reproduced the encoder's frames exactly. A pass at a
        # time: neither the decoded clip nor a float copy of it is ever held whole.
        crc, sq = 0, 0.0
        for i, frames in section_passes(inr, sections):
            crc = zlib.crc32(frames, crc)
            sq += float(np.sum((frames.astype(np.float64) - clip[i: i + len(frames)]) ** 2))
        mse = sq / clip.size
        info = {"inr": inr.to_dict(), "quality": quality, "epochs": fcfg.epochs,
                "prune": fcfg.prune, "weight_bits": fcfg.weight_bits,
                "embed_bits": fcfg.embed_bits, "frames_crc32": crc,
                "psnr_rgb": round(float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12))), 4),
                **(meta or {})}
        info.setdefault("fps", 25.0)
        return Container(codec=self.family, model=self.name, weights=self.digest,
                         shape=[t, h, w, 3], meta=info, sections=sections,
                         medium="video").to_bytes()

    # --- decode ---------------------------------------------------------------------------
    def decode(self, c: Container, limits: DecodeLimits | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]``; every field is checked before anything is allocated."""
        inr = self.check(c, limits or DEFAULT_LIMITS)
        rec = self.decode_sections(inr, c.sections)
        crc = c.meta.get("frames_crc32")
        if isinstance(crc, int) and zlib.crc32(rec) != crc:
            warnings.warn("decoded frames differ from the encoder's own decode (another CPU or "
                          "float library): the picture is right to within rounding, not "
                          "bit-exact", stacklevel=2)
        return rec

    @staticmethod
    def decode_sections(inr: INRConfig, sections: list[bytes]) -> np.ndarray:
        out = np.empty((inr.frames, inr.height, inr.width_px, 3), np.uint8)
        for i, frames in section_passes(inr, sections):
            out[i: i + len(frames)] = frames
        return out

    def check(self, c: Container, limits: DecodeLimits) -> INRConfig:
        self.check_container(c)
        t, h, w, ch = check_int_list(c.shape, "shape", 4, 1, 1 << 40)
        if ch != 3:
            raise BitstreamError(f"shape {c.shape}: a clip has 3 channels")
        check_frames(t, limits)
        check_pixels(h, w, limits)
        if t * h * w * 3 > MAX_CLIP_BYTES:
            # a decoder's work does not shrink with its file: a 5 kB NeRV may claim any length
            raise BitstreamError(f"file declares {t} frames of {w}x{h}, {t * h * w * 3 / 2**30:.1f}"
                                 f" GiB decoded: over the {MAX_CLIP_BYTES // 2**30} GiB a clip "
                                 f"may take (as read_video)")
        m = c.meta.get("inr")
        if not isinstance(m, dict):
            raise BitstreamError("file lacks its INR description (meta.inr)")
        try:
            inr = INRConfig(
                kind=check_str(m.get("kind"), "inr.kind", 8, KINDS),
                frames=check_int(m.get("frames"), "inr.frames", t, t),
                height=check_int(m.get("height"), "inr.height", h, h),
                width_px=check_int(m.get("width_px"), "inr.width_px", w, w),
                params=check_int(m.get("params"), "inr.params", 1, MAX_STORED),
                strides=tuple(check_int_list(m.get("strides"), "inr.strides", (3, 6), 2, 5)),
                width=check_int(m.get("width"), "inr.width", 1, 4096),
                embed_dim=check_int(m.get("embed_dim"), "inr.embed_dim", 1, 64),
                enc_width=check_int(m.get("enc_width"), "inr.enc_width", 1, 4096),
                reduce=_check_float(m.get("reduce"), "inr.reduce", 1.0, 4.0),
                min_width=check_int(m.get("min_width"), "inr.min_width", 1, 4096),
                kernels=tuple(check_int_list(m.get("kernels"), "inr.kernels", 2, 1, 7)),
                mlp_hidden=check_int(m.get("mlp_hidden"), "inr.mlp_hidden", 1, 8192),
                pe_levels=check_int(m.get("pe_levels"), "inr.pe_levels", 1, 256))
        except InputError as e:
            raise BitstreamError(str(e)) from None
        if inr.kind != self.name:
            raise BitstreamError(f"file holds a {inr.kind} model, not {self.name}")
        hp, wp = inr.padded
        if hp * wp > MAX_PAD * h * w + (hp + wp) * inr.stride:
            raise BitstreamError(f"strides {list(inr.strides)} do not fit {w}x{h} frames")
        with torch.device("meta"):
            skeleton = VideoINR(inr, encoder=False)  # shapes only, no storage
            stored = skeleton.stored_count()
        if stored > MAX_STORED:
            raise BitstreamError(f"file declares {stored:,} parameters (over {MAX_STORED:,})")
        if len(c.sections) != 3:
            raise BitstreamError(f"expected 3 sections, found {len(c.sections)}")
        # Every section's size follows from the architecture: checked on the meta-device
        # model, before the real one (up to MAX_STORED parameters) is allocated.
        check_sections(skeleton, c.sections)
        return inr


def _check_float(v: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise BitstreamError(f"{name} must be a number in {lo}..{hi}")
    return float(v)


# --- the representation <-> sections -------------------------------------------------------

def decode_batch(inr: INRConfig) -> int:
    """Frames per decoder (and encoder) pass: ``DECODE_BATCH``, fewer when frames are large.
    A function of the frame size only, so the encoder's own decode (its ``frames_crc32``) runs
    the same passes as every decoder."""
    hp, wp = inr.padded
    return max(1, min(DECODE_BATCH, DECODE_PIXELS // (hp * wp)))


def _embeddings(model: VideoINR, clip: np.ndarray) -> torch.Tensor:
    frames, n = frames_uint8(clip), decode_batch(model.cfg)
    with torch.no_grad():
        return torch.cat([model.embed(as_float(frames[i: i + n]))
                          for i in range(0, len(frames), n)])


def pack(model: VideoINR, clip: np.ndarray, weight_bits: int = quant.WEIGHT_BITS,
         embed_bits: int = quant.EMBED_BITS) -> list[bytes]:
    """Quantize the stored tensors (and HNeRV's embeddings of ``clip``) into the 3 sections."""
    steps, groups, per_row = [], [], []
    for p in model.decoder_parameters().values():
        s = quant.weight_steps(p, weight_bits)
        steps.append(s)
        q = quant.quantize_weight(p, s).numpy()
        per_row.append(_cheaper_per_row(q))
        groups += _groups(q, per_row[-1])
    if model.cfg.kind == "hnerv":
        e = _embeddings(model, clip)
        centre, s = quant.embed_params(e, embed_bits)
        steps += [centre, s]
        q = quant.quantize_embed(e, centre, s)
        groups += [q[:, c].numpy().ravel() for c in range(q.shape[1])]
    raw = torch.cat(steps).half().numpy().astype("<f2").tobytes()
    return [raw, arrays.encode_arrays(groups), bytes(per_row)]


def check_sections(model: VideoINR, sections: list[bytes]
                   ) -> tuple[list[tuple[int, ...]], list[int], list[bool], list[int]]:
    """``(tensor shapes, steps per tensor, per-row grouping, array group sizes)`` after
    checking every section's size against them: the grouping section, the step section
    and the array stream's group and symbol counts. ``model`` may live on the meta device:
    only its shapes are read."""
    cfg = model.cfg
    shapes = [tuple(p.shape) for p in model.decoder_parameters().values()]
    n_steps = [s[0] if len(s) >= 2 else 1 for s in shapes]
    if len(sections[2]) != len(shapes) or any(
            f > 1 or (f and len(s) < 2) for f, s in zip(sections[2], shapes)):
        raise BitstreamError("corrupted file: invalid table grouping section")
    per_row = [bool(f) for f in sections[2]]
    sizes = [g for s, r in zip(shapes, per_row) for g in _group_sizes(s, r)]
    gh, gw = cfg.grid
    if cfg.kind == "hnerv":
        n_steps += [cfg.embed_dim, cfg.embed_dim]
        sizes += [cfg.frames * gh * gw] * cfg.embed_dim
    if len(sections[0]) != 2 * sum(n_steps):
        raise BitstreamError(f"step section is {len(sections[0])} bytes, the model needs "
                             f"{2 * sum(n_steps)}")
    arrays.check_header(sections[1], sizes)
    return shapes, n_steps, per_row, sizes


def unpack_symbols(model: VideoINR, sections: list[bytes]
                   ) -> tuple[list[np.ndarray], np.ndarray | None, list[torch.Tensor]]:
    """The file's integers: one array per stored tensor (its shape), HNeRV's embedding symbols
    ``[T, d, gh, gw]`` (None for NeRV) and the steps (per tensor, then centres and steps of
    the embeddings). ``model`` may live on the meta device: only its shapes are read."""
    cfg = model.cfg
    shapes, n_steps, per_row, sizes = check_sections(model, sections)
    gh, gw = cfg.grid
    steps = torch.from_numpy(np.frombuffer(sections[0], "<f2").astype(np.float32))
    if not torch.isfinite(steps).all():
        raise BitstreamError("corrupted file: non-finite quantization step")
    steps = list(torch.split(steps, n_steps))
    flat = arrays.decode_arrays(sections[1], sizes)
    tensors, pos = [], 0
    for shape, r in zip(shapes, per_row):
        k = len(_group_sizes(shape, r))
        tensors.append(np.concatenate(flat[pos: pos + k]).reshape(shape))
        pos += k
    embed = None
    if cfg.kind == "hnerv":
        embed = np.stack(flat[pos:]).reshape(cfg.embed_dim, cfg.frames, gh, gw).swapaxes(0, 1)
    return tensors, embed, steps


def unpack(model: VideoINR, sections: list[bytes]) -> torch.Tensor:
    """Load the dequantized weights into ``model``; returns the decoder's input: HNeRV's
    embeddings ``[T, d, gh, gw]`` or NeRV's frame times ``[T]``."""
    tensors, embed, steps = unpack_symbols(model, sections)
    with torch.no_grad():
        for p, q, s in zip(model.decoder_parameters().values(), tensors, steps):
            p.copy_(quant.dequantize_weight(torch.from_numpy(q), s))
    if embed is None:
        return frame_times(model.cfg.frames)
    return quant.dequantize_embed(torch.from_numpy(np.ascontiguousarray(embed)), steps[-2],
                                  steps[-1])


def decoded_passes(model: VideoINR, code: torch.Tensor, batch: int = 0
                   ) -> Iterator[tuple[int, np.ndarray]]:
    """``(first frame, uint8 [b, H, W, 3])`` of each decoder pass over the inputs ``code``,
    ``batch`` frames per pass (0: :func:`decode_batch`)."""
    batch = batch or decode_batch(model.cfg)
    with torch.no_grad():
        for i in range(0, len(code), batch):
            y = model.decode(code[i: i + batch])
            y = (y * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            yield i, np.ascontiguousarray(y.numpy())


def section_passes(inr: INRConfig, sections: list[bytes]) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`decoded_passes` of the decoder the sections hold."""
    model = VideoINR(inr, encoder=False).eval()
    return decoded_passes(model, unpack(model, sections))
