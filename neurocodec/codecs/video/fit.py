"""Fitting an INR to a clip with the shared training loop (:mod:`neurocodec.train.loop`).

HNeRV's recipe: Adam, lr 1e-3, 10% linear warm-up then cosine, batch 2, L2 loss, a fixed
number of epochs. The last ``qat_fraction`` of the steps run with the stored tensors quantized
in the forward pass (straight-through), so the file's 6-bit weights and 6-bit embeddings (by default) are
what the network was fitted with; an optional global magnitude pruning zeroes the smallest
``prune`` fraction of the decoder's weights at ``prune_at`` of the steps and keeps them zero.

Large frames are fitted in bounded memory, with the same gradients: a step's batch runs as
passes of at most ``PASS_PIXELS`` padded pixels (the gradients of each pass summed), and frames
of ``models.LARGE_PIXELS`` or more keep only each decoder block's input for the backward pass
(activation checkpointing). A 1280x720 step thus takes ~1 GB instead of ~2.2 GB.

Every step's frames come from a per-epoch permutation seeded by ``(seed, epoch)``, so a resumed
fit repeats an uninterrupted one exactly (same thread count and CPU).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from neurocodec.codecs.video import quant
from neurocodec.codecs.video.models import INRConfig, VideoINR, build
from neurocodec.determinism import mixed_seed
from neurocodec.errors import InputError
from neurocodec.eval.environment import resolve_precision
from neurocodec.train.loop import Run, run_loop

PASS_PIXELS = 1 << 20  # padded pixels per forward pass (a 640x360 batch of 2 is one pass)


@dataclass
class FitConfig:
    """How one clip is fitted; the schedule fields are those of the shared loop."""

    epochs: int = 100
    batch: int = 2
    lr: float = 1e-3
    lr_final: float = 0.0
    warmup_fraction: float = 0.1
    qat_fraction: float = 0.1
    weight_bits: int = quant.WEIGHT_BITS  # of the file and of the quantization-aware steps
    embed_bits: int = quant.EMBED_BITS
    prune: float = 0.0  # fraction of decoder weights zeroed by magnitude (0: no pruning)
    prune_at: float = 0.7  # ... after this fraction of the steps
    precision: str = "auto"  # "fp32", "bf16" (autocast of the network; loss in fp32),
    # or "auto": bf16 where the CPU has bf16 arithmetic (resolved when the config is made)
    # NHWC activations: NeRV 1.3-1.5x faster in fp32 and 2.8x (with bf16) against fp32 NCHW,
    # HNeRV within ±10% (benchmarks/video_fit_speed.py, docs/results/video/README.md)
    channels_last: bool = True
    seed: int = 0
    threads: int = 0  # 0: torch's current setting (the bench gives each worker its share)
    ckpt_every: int = 200
    log_every: int = 10
    progress: str = "auto"
    tensorboard: bool = False
    # filled by fit(): the shared loop's schedule
    max_steps: int = 0
    warmup_steps: int = 0
    budget_minutes: float = 0.0
    stop_at: int = 0
    val_every: int = 0
    val_share: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise InputError(f"--epochs must be a positive integer, not {self.epochs!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise InputError(f"batch must be a positive integer, not {self.batch!r}")
        for name in ("weight_bits", "embed_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 2 <= v <= 12:
                raise InputError(f"{name} must be an integer in 2..12, not {v!r}")
        if not 0.0 <= self.prune < 1.0:
            raise InputError(f"--prune must be in [0, 1), not {self.prune!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr must be positive, not {self.lr!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise InputError(f"precision must be auto, fp32 or bf16, not {self.precision!r}")
        self.precision = resolve_precision(self.precision)


def frames_uint8(clip: np.ndarray) -> Tensor:
    """uint8 ``[T, H, W, 3]`` -> a uint8 ``[T, 3, H, W]`` view. Fitting and packing keep the
    clip in 8 bits and make float frames per batch: a 132-frame 720p clip is 0.37 GB, not 1.5."""
    return torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2)


def as_float(frames: Tensor) -> Tensor:
    """uint8 frames -> float in [0, 1] (the same values as converting the whole clip)."""
    return frames.float() / 255.0


def frames_tensor(clip: np.ndarray) -> Tensor:
    """uint8 ``[T, H, W, 3]`` -> float ``[T, 3, H, W]`` in [0, 1]."""
    return as_float(frames_uint8(clip))


def frame_times(t: int) -> Tensor:
    """Normalised times ``[T]`` of NeRV's positional encoding: ``i / (T - 1)`` (0 for T = 1)."""
    return torch.arange(t, dtype=torch.float32) / max(t - 1, 1)


def _stored_weights(model: VideoINR) -> dict[str, Tensor]:
    return {n: p for n, p in model.decoder_parameters().items() if p.dim() >= 2}


def fit(clip: np.ndarray, inr: INRConfig, cfg: FitConfig, out: str | Path | None = None
        ) -> VideoINR:
    """Fit an INR of ``inr`` to uint8 ``clip [T, H, W, 3]``; ``out`` keeps the run (checkpoint,
    ``log.csv``, ``fit.json``) so an interrupted fit resumes there, else a temporary folder."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="neurocodec-fit-") as tmp:
            return fit(clip, inr, cfg, tmp)
    out = Path(out)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = build(inr).train()
    per_pass = max(1, PASS_PIXELS // math.prod(inr.padded))
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    frames, times = frames_uint8(clip), frame_times(len(clip))
    per_epoch = -(-len(clip) // cfg.batch)
    cfg.max_steps = cfg.epochs * per_epoch
    cfg.warmup_steps = max(1, round(cfg.warmup_fraction * cfg.max_steps))
    qat_start = cfg.max_steps - round(cfg.qat_fraction * cfg.max_steps)
    prune_step = round(cfg.prune_at * cfg.max_steps) if cfg.prune > 0 else -1
    opt = torch.optim.Adam([{"params": list(model.parameters()), "lr_mult": 1.0}], lr=cfg.lr)
    run = Run(out, model, opt, None, inr.kind)
    run.restore()
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit.json").write_text(json.dumps({"inr": inr.to_dict(), "fit": asdict(cfg)},
                                             indent=2))
    masks = _masks(model) if 0 <= prune_step < run.step else {}
    # The log's bpp: the stored parameters at 8 bits (an upper bound; the file is smaller).
    bpp = torch.tensor(8.0 * model.stored_count() / frames[:, 0].numel())
    no_aux = torch.zeros(())

    def step_fn(step: int) -> tuple[dict, Tensor]:
        nonlocal masks
        if step == prune_step:
            masks = prune_(model, cfg.prune)
        perm = torch.randperm(len(clip), generator=torch.Generator().manual_seed(
            mixed_seed(cfg.seed, step // per_epoch)))
        i = perm[(step % per_epoch) * cfg.batch: (step % per_epoch + 1) * cfg.batch]
        bits = (cfg.weight_bits, cfg.embed_bits) if step >= qat_start else None
        opt.zero_grad()
        passes = i.split(per_pass)
        mse = torch.zeros(())
        # Held over every pass's forward and backward: a checkpointed block recomputed in the
        # backward pass must see the same quantized weights.
        with fake_quantized(model, bits[0] if bits else 0):
            for j in passes:
                x = as_float(frames[j])
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    y = model(x, times[j], bits[1] if bits else 0)
                err = (y.float() - x) ** 2
                # one pass: the batch mean, as always; several: their sum is that mean
                loss = torch.mean(err) if len(passes) == 1 else err.sum() / (len(i) * err[0].numel())
                loss.backward()
                mse = mse + loss.detach()
        opt.step()
        with torch.no_grad():
            for n, m in masks.items():
                model.get_parameter(n).mul_(m)
        psnr = -10 * torch.log10(mse.detach().clamp_min(1e-10))
        return {"loss": mse.detach(), "bpp": bpp, "psnr": psnr}, no_aux

    run_loop(cfg, run, step_fn)
    return model.eval()


class _FakeQuant(nn.Module):
    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, w: Tensor) -> Tensor:
        return quant.fake_quant_weight(w, self.bits)


@contextmanager
def fake_quantized(model: VideoINR, bits: int) -> Iterator[None]:
    """Inside, every stored tensor reads as its ``bits``-bit fake-quantized value (0: as it
    is). A parametrization rather than a one-call substitution, so that a checkpointed block
    recomputed in the backward pass sees the same quantized weights; the optimizer's
    parameters are the parametrizations' originals, unchanged."""
    if not bits:
        yield
        return
    owners = []
    for name in model.decoder_parameters():
        path, _, attr = name.rpartition(".")
        owners.append((model.get_submodule(path), attr))
    for mod, attr in owners:
        parametrize.register_parametrization(mod, attr, _FakeQuant(bits), unsafe=True)
    try:
        yield
    finally:
        for mod, attr in owners:
            parametrize.remove_parametrizations(mod, attr, leave_parametrized=False)


def prune_(model: VideoINR, fraction: float) -> dict[str, Tensor]:
    """Zero the ``fraction`` smallest-magnitude stored weights (one global threshold); returns
    the masks (1 = kept)."""
    ws = _stored_weights(model)
    allw = torch.cat([w.detach().abs().ravel() for w in ws.values()])
    k = int(fraction * allw.numel())
    if k == 0:
        return {}
    thr = torch.kthvalue(allw, k).values
    masks = {}
    with torch.no_grad():
        for n, w in ws.items():
            masks[n] = (w.abs() > thr).float()
            w.mul_(masks[n])
    return masks


def _masks(model: VideoINR) -> dict[str, Tensor]:
    """The masks of a pruned model, after a resume: its zeros."""
    return {n: (w.detach() != 0).float() for n, w in _stored_weights(model).items()}
