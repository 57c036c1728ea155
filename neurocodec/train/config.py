"""The trainer's configuration: one dataclass, readable from a JSON file of its fields."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from neurocodec.errors import InputError
from neurocodec.eval.environment import resolve_precision


@dataclass
class TrainConfig:
    """Everything a run needs; written to ``out/config.json``. ``data``: folder of training
    images; ``out``: run folder (checkpoint, logs, TensorBoard events)."""

    data: str
    out: str
    # --- model: ``arch`` picks an entry of neurocodec.train.archs.ARCHS; N, M and transform
    # go to its config class where it has such fields, ``model_args`` adds any other field.
    arch: str = "hyperprior"
    N: int = 96
    M: int = 0  # 0: 192 with the dct transform (which needs exactly that), else the arch's
    # "dct" (the shipped models' DCT-start transforms) or "gdn" (Minnen's stack, which needs
    # far more steps than a CPU affords: ~21 dB after 1,700 steps here)
    transform: str = "dct"
    model_args: dict = field(default_factory=dict)
    # A fresh run (no checkpoint in ``out``) starts from these weights: a shipped model's name
    # or a .safetensors file of the same arch and config. Ignored when resuming.
    init: str = ""
    # One λ per quality level; empty: the loss's default variable-rate set (see losses.py).
    # λ is on the loss's own scale: ~0.002-0.05 for "mse", ~2-60 for "ms-ssim".
    lmbdas: tuple[float, ...] = ()
    loss: str = "mse"  # "mse" | "ms-ssim"
    # --- data
    crop: int = 256
    batch: int = 8  # per process: the global batch under DDP is batch x world size
    vflip: bool = False  # photos have an up and a down; vertical flips are opt-in
    workers: int = 0  # DataLoader worker processes; batches do not depend on it
    # --- optimisation
    lr: float = 2e-4
    lr_final: float = 1e-5
    warmup_steps: int = 100
    budget_minutes: float = 60.0
    max_steps: int = 0  # > 0: schedule and stop by steps (reproducible), not by time
    stop_at: int = 0  # > 0: leave after this step (checkpointed), e.g. to train in chunks
    clip: float = 1.0
    # "fp32", or "bf16": the transforms' forward pass under bf16 autocast (entropy models, rate
    # and loss stay fp32); "auto": bf16 where the CPU has bf16 arithmetic, which is where it is
    # faster (benchmarks/train_speed.py). Resolved when the config is made.
    precision: str = "auto"
    # NHWC activations: with bf16 the fastest layout on both CPUs measured (mlic-vr 1.55x ->
    # 1.87x fp32's throughput on AMX), within ±5% of NCHW in fp32.
    channels_last: bool = True
    eb_lr_mult: float = 10.0  # the factorized prior's small density MLP learns this much faster
    aux_lr: float = 1e-3
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda"
    find_unused_parameters: bool = False  # DDP: only for models with unused parameters
    # --- checkpoints, validation and logs
    ckpt_every: int = 100
    val: str = ""  # folder of held-out images, coded with the real entropy coder
    val_every: int = 2000  # and once more at the end of every run
    # A due validation is skipped while the last one took more than this share of the training
    # time since it (0: never skipped): a real-bitstream pass of 15 photos x 8 qualities takes
    # ~70 s on one thread, 10% of 2,000 hyperprior steps (benchmarks/train_overhead.py).
    val_share: float = 0.05
    val_qualities: tuple[int, ...] = ()  # empty: every quality
    log_every: int = 10
    progress: str = "auto"  # "auto" (on a terminal), "on", "off"
    tensorboard: bool = True

    def __post_init__(self) -> None:
        self.lmbdas = tuple(float(v) for v in self.lmbdas)
        self.val_qualities = tuple(int(v) for v in self.val_qualities)
        if self.precision not in ("auto", "fp32", "bf16"):
            raise InputError(f"precision must be auto, fp32 or bf16, not {self.precision!r}")
        self.precision = resolve_precision(self.precision)
        if self.progress not in ("auto", "on", "off"):
            raise InputError(f"progress must be auto, on or off, not {self.progress!r}")
        for name, least in RANGES.items():
            _check_number(name, getattr(self, name), least)
        for v in self.lmbdas:
            _check_number("lmbdas", v, 0.0)


# The numeric fields' least values (every value finite; those of POSITIVE above 0).
RANGES: dict[str, float] = {"N": 1, "M": 0, "crop": 1, "batch": 1, "workers": 0,
                            "lr": 0.0, "lr_final": 0.0, "warmup_steps": 0, "budget_minutes": 0.0,
                            "max_steps": 0, "stop_at": 0, "clip": 0.0, "eb_lr_mult": 0.0,
                            "aux_lr": 0.0, "threads": 1, "ckpt_every": 1, "val_every": 1,
                            "val_share": 0.0, "log_every": 1}
POSITIVE = {"lr", "budget_minutes", "clip", "lmbdas"}


def _check_number(name: str, v: float, least: float) -> None:
    """One line naming the flag: ``--batch 0`` divides by zero, ``--budget-minutes -1``
    trains forever, ``--lr 0`` trains nothing; checked before a run folder exists."""
    flag = f"--{name.replace('_', '-')}"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{flag} must be a finite number, not {v!r}")
    if name in POSITIVE and v <= 0:
        raise InputError(f"{flag} must be greater than 0, not {v!r}")
    if v < least:
        raise InputError(f"{flag} must be at least {least:g}, not {v!r}")


def config_fields() -> dict[str, object]:
    """Field name -> default (``None`` for the required ones), in declaration order."""
    defaults = asdict(TrainConfig(data="", out=""))
    return {f.name: (None if f.name in ("data", "out") else defaults[f.name])
            for f in fields(TrainConfig)}


def read_config_file(path: str | Path) -> dict:
    """The TrainConfig fields set in a JSON file; unknown keys are an error, not ignored."""
    p = Path(path)
    try:
        values = json.loads(p.read_text())
    except OSError as e:
        raise InputError(f"{p}: cannot read config ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(values, dict):
        raise InputError(f"{p}: expected a JSON object of TrainConfig fields")
    known = config_fields()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"{p}: unknown config field(s): {', '.join(unknown)}")
    for k, v in values.items():
        if not _fits(v, known[k]):
            raise InputError(f"{p}: {k} = {v!r} should be like {known[k]!r}")
    return values


def _fits(value: object, default: object) -> bool:
    if default is None or isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, tuple):
        return isinstance(value, list) and all(isinstance(x, (int, float)) for x in value)
    return isinstance(value, type(default))
