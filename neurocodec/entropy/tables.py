"""Deterministic integer CDF tables for the rANS coder.

A :class:`CdfTables` holds ``K`` tables. Table ``k`` codes the integer values
``offsets[k] .. offsets[k] + lengths[k] - 2``; its last symbol (``lengths[k] - 1``) is the
escape, after which the coder writes the value's 32 raw bits. Every symbol, escape included,
has a frequency of at least 1, and the frequencies of a table sum to ``2**precision``.

Tables are built in float64 and quantized with integer-only adjustments, so the same inputs
give the same table bytes on any machine (``CdfTables.digest`` is checked against a stored
value in the tests).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

MIN_PRECISION = 12
MAX_PRECISION = 16
LUT_SHIFT = 6  # one coarse inverse-table entry per 64 probability slots


def default_scale_table(lo: float = 0.11, hi: float = 256.0, n: int = 64) -> np.ndarray:
    """``n`` log-spaced scales from ``lo`` to ``hi`` (CompressAI's default scale table)."""
    return np.exp(np.linspace(math.log(lo), math.log(hi), n))


@dataclass(frozen=True)
class CdfTables:
    """``K`` integer CDF tables.

    Attributes:
        cdf: int32 ``[K, Lmax + 1]``; row ``k`` holds ``lengths[k] + 1`` increasing entries from
            0 to ``2**precision`` (padded with ``2**precision``).
        lengths: int32 ``[K]``, number of symbols of each table, escape included.
        offsets: int32 ``[K]``, the value coded by symbol 0 of each table.
        precision: probability precision in bits (12..16).
    """

    cdf: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray
    precision: int
    _lut: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not MIN_PRECISION <= self.precision <= MAX_PRECISION:
            raise ValueError(f"precision must be in {MIN_PRECISION}..{MAX_PRECISION}")
        if self.cdf.ndim != 2 or self.cdf.shape[0] != self.lengths.shape[0]:
            raise ValueError("cdf must be [K, Lmax+1] with one length per table")

    @property
    def num_tables(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def lut(self) -> np.ndarray:
        """Coarse inverse table, int32 ``[K, 2**(precision - 6)]``: the largest symbol ``s``
        with ``cdf[k, s] <= j * 64``. The decoder starts a short linear scan there."""
        if not self._lut:
            self._lut.append(_build_lut(self.cdf, self.lengths, self.precision))
        return self._lut[0]

    @property
    def lut_cpu(self) -> np.ndarray:
        """:attr:`lut` as uint16 when every table has under 2**16 symbols (else int32): the
        CPU decoders' copy. At 16-bit precision the int32 table of 64 scales is 256 KB, half
        of a core's L2; halved, the decoder spends less time waiting for it."""
        if len(self._lut) < 2:
            small = self.lut.size == 0 or int(self.lengths.max()) < (1 << 16)
            self._lut.append(self.lut.astype(np.uint16) if small else self.lut)
        return self._lut[1]

    def digest(self) -> str:
        """sha256 of the tables' defining bytes (precision, lengths, offsets, CDF rows)."""
        h = hashlib.sha256()
        h.update(np.int32(self.precision).tobytes())
        h.update(self.lengths.astype("<i4").tobytes())
        h.update(self.offsets.astype("<i4").tobytes())
        for k in range(self.num_tables):
            h.update(self.cdf[k, : self.lengths[k] + 1].astype("<i4").tobytes())
        return h.hexdigest()


def _build_lut(cdf: np.ndarray, lengths: np.ndarray, precision: int) -> np.ndarray:
    steps = 1 << (precision - LUT_SHIFT)
    lut = np.zeros((cdf.shape[0], steps), dtype=np.int32)
    slots = np.arange(steps, dtype=np.int64) << LUT_SHIFT
    for k in range(cdf.shape[0]):
        row = cdf[k, : lengths[k] + 1]
        lut[k] = np.searchsorted(row, slots, side="right") - 1
    return lut


def quantize_pmf(pmf: np.ndarray, tail_mass: float, precision: int) -> np.ndarray:
    """Integer frequencies (int64 ``[n + 1]``, last = escape) summing to ``2**precision``.

    Frequencies are ``round(p * 2**precision)`` with a floor of 1; the total is then fixed by
    integer steps on the largest frequencies only, which keeps the relative distortion (and
    so the rate overhead) smallest.
    """
    total = 1 << precision
    p = np.concatenate([np.asarray(pmf, dtype=np.float64), [max(float(tail_mass), 0.0)]])
    if p.size > total:
        raise ValueError(f"{p.size} symbols do not fit in {precision}-bit precision")
    freq = np.maximum(np.rint(p * total).astype(np.int64), 1)
    diff = total - int(freq.sum())
    if diff > 0:
        freq[int(np.argmax(freq))] += diff
    while diff < 0:
        order = np.argsort(-freq, kind="stable")
        for i in order:
            take = min(-diff, int(freq[i]) - 1, max(int(freq[i]) // 2, 1))
            if take <= 0:
                continue
            freq[i] -= take
            diff += take
            if diff == 0:
                break
    return freq


def _from_freqs(freqs: list[np.ndarray], offsets: np.ndarray, precision: int) -> CdfTables:
    lengths = np.array([f.size for f in freqs], dtype=np.int32)
    lmax = int(lengths.max()) if lengths.size else 1
    cdf = np.full((len(freqs), lmax + 1), 1 << precision, dtype=np.int32)
    for k, f in enumerate(freqs):
        cdf[k, 0] = 0
        cdf[k, 1 : f.size + 1] = np.cumsum(f)
    return CdfTables(cdf=cdf, lengths=lengths, offsets=np.asarray(offsets, dtype=np.int32),
                     precision=precision)


def pmf_tables(pmfs, precision: int = 16, offsets=None) -> CdfTables:
    """Tables from probability mass functions.

    Args:
        pmfs: ``[K, n]`` array or a list of ``K`` 1-D arrays; row ``k`` gives the probability
            of the values ``offsets[k], offsets[k] + 1, ...``. Mass missing from a row (``1 -
            sum``) goes to the escape symbol (at least one slot).
        precision: probability precision in bits (12..16).
        offsets: int ``[K]``, the value of each row's first entry (default 0).
    """
    rows = [np.asarray(r, dtype=np.float64).ravel() for r in pmfs]
    if any(r.size == 0 or not np.all(np.isfinite(r)) or np.any(r < 0) for r in rows):
        raise ValueError("pmfs must be non-empty, finite and non-negative")
    offsets = np.zeros(len(rows), np.int32) if offsets is None else np.asarray(offsets, np.int32)
    freqs = [quantize_pmf(r, max(1.0 - float(r.sum()), 0.0), precision) for r in rows]
    return _from_freqs(freqs, offsets, precision)


def _std_normal_cdf(x: np.ndarray) -> np.ndarray:
    return np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.ravel()]).reshape(x.shape)


def gaussian_tables(scales=None, precision: int = 16, tail_mass: float = 1e-9) -> CdfTables:
    """Tables of zero-mean Gaussians discretized on the integers, one per scale.

    Table ``k`` covers ``[-c_k, c_k]`` with ``c_k = ceil(scale_k * z)``, ``z`` the standard
    normal quantile of ``1 - tail_mass / 2``; the mass outside goes to the escape symbol.

    Args:
        scales: float ``[K]`` (default: 64 log-spaced scales from 0.11 to 256).
    """
    scales = default_scale_table() if scales is None else np.asarray(scales, dtype=np.float64)
    if np.any(~np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError("scales must be positive and finite")
    z = _normal_quantile(1.0 - tail_mass / 2)
    freqs, offsets = [], []
    for s in scales:
        c = int(math.ceil(s * z))
        v = np.abs(np.arange(-c, c + 1, dtype=np.float64))
        pmf = _std_normal_cdf((0.5 - v) / s) - _std_normal_cdf((-0.5 - v) / s)
        tail = 2.0 * float(_std_normal_cdf(np.array([(-0.5 - c) / s]))[0])
        freqs.append(quantize_pmf(pmf, tail, precision))
        offsets.append(-c)
    return _from_freqs(freqs, np.array(offsets), precision)


def _laplace_cdf(x: np.ndarray, b: float) -> np.ndarray:
    return np.where(x >= 0, 1 - 0.5 * np.exp(-x / b), 0.5 * np.exp(x / b))


def laplace_tables(scales, precision: int = 16, tail_mass: float = 1e-9) -> CdfTables:
    """Tables of zero-mean Laplace distributions (scale ``b``) discretized on the integers."""
    scales = np.asarray(scales, dtype=np.float64)
    if np.any(~np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError("scales must be positive and finite")
    freqs, offsets = [], []
    for b in scales:
        c = int(math.ceil(b * math.log(1.0 / tail_mass)))
        v = np.arange(-c, c + 1, dtype=np.float64)
        pmf = _laplace_cdf(v + 0.5, b) - _laplace_cdf(v - 0.5, b)
        freqs.append(quantize_pmf(pmf, math.exp(-(c + 0.5) / b), precision))
        offsets.append(-c)
    return _from_freqs(freqs, np.array(offsets), precision)


def generalized_gaussian_tables(scales, shape: float, precision: int = 16,
                                tail_mass: float = 1e-6, max_half_width: int = 1024,
                                samples: int = 8) -> CdfTables:
    """Tables of zero-mean generalized Gaussians ``p(x) ~ exp(-|x / a|^shape)`` with standard
    deviations ``scales``, discretized on the integers (each bin's mass by the midpoint rule
    over ``samples`` sub-intervals, normalised over the support). ``shape`` 1 is a Laplacian,
    2 a Gaussian, large shapes approach a uniform distribution — which is what quantized
    network weights near their initialisation look like.

    The support is ``[-c, c]`` with the density below ``tail_mass`` of its peak beyond ``c``
    (at most ``max_half_width``); the escape symbol gets ``tail_mass`` of the mass.
    """
    scales = np.asarray(scales, dtype=np.float64)
    if np.any(~np.isfinite(scales)) or np.any(scales <= 0) or not shape > 0:
        raise ValueError("scales and shape must be positive and finite")
    ratio = math.sqrt(math.gamma(1.0 / shape) / math.gamma(3.0 / shape))
    freqs, offsets = [], []
    for sd in scales:
        a = sd * ratio
        c = min(max_half_width, int(math.ceil(a * math.log(1.0 / tail_mass) ** (1.0 / shape))))
        x = (np.arange(-c * samples, (c + 1) * samples, dtype=np.float64) - (samples - 1) / 2
             ) / samples
        dens = np.exp(-np.abs(x / a) ** shape).reshape(2 * c + 1, samples).sum(axis=1)
        pmf = dens / dens.sum() * (1.0 - tail_mass)
        freqs.append(quantize_pmf(pmf, tail_mass, precision))
        offsets.append(-c)
    return _from_freqs(freqs, np.array(offsets), precision)


def _normal_quantile(p: float) -> float:
    """Inverse standard normal CDF by bisection on ``math.erfc`` (deterministic, float64)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def scale_indexes(scales: np.ndarray, table_scales: np.ndarray) -> np.ndarray:
    """Index of the smallest table scale ≥ each scale (clamped), int32, like CompressAI.

    Args:
        scales: float ``[...]``; table_scales: increasing float ``[K]``.
    """
    idx = np.searchsorted(np.asarray(table_scales, np.float64), np.asarray(scales, np.float64))
    return np.clip(idx, 0, len(table_scales) - 1).astype(np.int32)
