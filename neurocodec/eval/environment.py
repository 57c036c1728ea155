"""What a result was measured on: library versions, CPU, date — stored in every results file."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import time
from importlib import metadata

PACKAGES = ("neurocodec", "torch", "numpy", "imagecodecs", "pillow-heif", "imageio-ffmpeg",
            "compressai", "bjontegaard")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (/proc/cpuinfo; empty where there is none)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def resolve_precision(precision: str) -> str:
    """``"auto"`` -> ``"bf16"`` on a CPU with bf16 arithmetic (AMX or AVX-512-BF16), else
    ``"fp32"``; other values unchanged. bf16 autocast is 1.6-2.1x faster per training step
    there and ~12x slower on CPUs that emulate it (Zen 3): benchmarks/train_speed.py,
    benchmarks/video_fit_speed.py."""
    if precision != "auto":
        return precision
    return "bf16" if cpu_flags() & {"amx_bf16", "avx512_bf16"} else "fp32"


@functools.lru_cache(maxsize=1)
def _ffmpeg_version() -> str:
    try:
        from neurocodec.eval.ffmpeg import ffmpeg_exe

        out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True,
                             check=False).stdout
        return " ".join(out.split()[:3]) if out else "unknown"  # "ffmpeg version nX.Y"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return f"unavailable ({e})"


def environment() -> dict:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(),
            "platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "ffmpeg": _ffmpeg_version(), "versions": versions}
