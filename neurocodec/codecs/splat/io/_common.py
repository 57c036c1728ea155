"""Helpers shared by the splat readers and writers: errors, size checks, NaN dropping and the
small numeric conversions every format repeats (sigmoid, logit, quaternion normalising)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from neurocodec.codecs.container import read_file
from neurocodec.codecs.limits import DEFAULT_LIMITS, DecodeLimits
from neurocodec.errors import InputError

from ..scene import SH_C0, SH_COEFFS, SplatScene

__all__ = ["DEFAULT_LIMITS", "DecodeLimits", "SH_C0", "SH_COEFFS", "SplatScene", "bad",
           "check_count", "drop_nonfinite", "load", "logit_u8", "normalize_quats", "sigmoid"]

# A PLY may be larger than container.read_file's default cap (2 GB); its header is checked
# against the file size before anything is allocated, so the file size itself is the bound.
MAX_FILE_BYTES = 1 << 40


def bad(src: str | Path, msg: str) -> InputError:
    """The one error every reader raises for a file it cannot use: ``"<file>: <msg>"``."""
    return InputError(f"{src}: {msg}")


def load(path: str | Path) -> bytes:
    """The whole file (missing, unreadable, a directory → InputError)."""
    return read_file(path, max_bytes=MAX_FILE_BYTES)


def check_count(src: str | Path, n: int, limits: DecodeLimits) -> None:
    """For formats whose size does not bound the scene (compressed streams, textures): refuse
    more Gaussians than ``limits.max_gaussians`` before allocating anything for them."""
    if n > limits.max_gaussians:
        raise bad(src, f"declares {n} Gaussians, above the limit of {limits.max_gaussians} "
                       f"(raise it with --max-gaussians)")


def drop_nonfinite(scene: SplatScene, src: str | Path) -> SplatScene:
    """Every reader ends here: Gaussians with a NaN/Inf attribute are dropped with a warning,
    so nothing downstream (coder, renderer) ever sees one."""
    ok = scene.finite()
    bad_n = int(scene.n - ok.sum())
    if bad_n == 0:
        return scene
    warnings.warn(f"{src}: dropped {bad_n} of {scene.n} Gaussians with NaN/Inf attributes",
                  stacklevel=3)
    return scene.subset(ok)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # float64 inside: exp of a large negative logit overflows float32 to inf (harmless, but a
    # RuntimeWarning); the result is a probability and is quantized right after.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def logit_u8(a: np.ndarray) -> np.ndarray:
    """Opacity logits from 8-bit alphas ``a/255``. 0 and 255 would give ±inf, so they are
    clamped half a quantization step inside (logit ±6.23): a real file stores those values
    for (nearly) transparent/opaque Gaussians, which must stay finite, not be dropped."""
    p = np.clip(a.astype(np.float64) / 255.0, 0.5 / 255.0, 1.0 - 0.5 / 255.0)
    return np.log(p / (1.0 - p)).astype(np.float32)


def normalize_quats(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[N, 4]`` (float64); a zero (or non-finite-norm) quaternion becomes the
    identity in its first component slot rather than NaN."""
    q = q.astype(np.float64)
    norm = np.sqrt((q * q).sum(axis=1, keepdims=True))
    ok = (norm[:, 0] > 0) & np.isfinite(norm[:, 0])
    out = np.zeros_like(q)
    out[ok] = q[ok] / norm[ok]
    out[~ok, 0] = 1.0
    return out


def require_finite(scene: SplatScene, fmt: str) -> None:
    """Quantizing writers refuse NaN/Inf: they would become arbitrary integers silently."""
    ok = scene.finite()
    if not ok.all():
        raise InputError(f"cannot write {fmt}: {int((~ok).sum())} Gaussians have NaN/Inf "
                         f"attributes (drop them first: scene.subset(scene.finite()))")
