"""``gsc``: the 3DGS attribute coder — quantization allocated by render error, context-adaptive
entropy coding through the shared rANS backend (:mod:`.streams`).

Pipeline (encoder; the decoder runs it backwards, integer-exact):

1. Drop non-finite rows (readers already do) and, only with ``prune=A``, Gaussians whose peak
   opacity ``sigmoid(logit) < A`` (counted in ``meta.pruned``; ``A = 1/255`` removes only what
   the 3DGS rasterizer never draws); only with ``hidden=F``, the least visible Gaussians that
   together make the fraction ``F`` of the pictures (their blending weights summed over
   :data:`HIDDEN_VIEWS` renders from all around the scene, :func:`hidden_mask`; counted in
   ``meta.pruned_hidden``).
2. Positions onto a 2^21 grid over the scene's bounding box.
3. Log-scales: uniform step ``scale``.
4. Positions: each Gaussian's aligned cell of ``2^k`` grid units a side, ``k`` from its
   decoded size (``k = floor(mean(log-scale) / ln 2 + pos_shift)``): a big Gaussian is placed
   coarsely, a small one finely, every one within ``2^(k-1)`` grid units per axis of the
   original. The Gaussians are sorted by the Morton code of their decoded positions and each
   cell is coded as the gap to the previous one's (:mod:`.positions`).
5. Rotations: normalized, sign-canonical smallest-three (the largest component made positive
   and dropped, its index coded), the other three with step ``rot * 2^j``, ``j`` in 0..3 from
   the Gaussian's decoded anisotropy (a round Gaussian's rotation barely shows).
6. Opacity: ``sigmoid(logit)`` with uniform step ``alpha``.
7. SH DC: uniform step ``dc`` per RGB coefficient, then the lossless integer YCoCg-R transform.
8. SH rest: uniform step ``rest``.

Streams (context streams, :func:`.streams.encode_ctx_stream`, one container section each):

* scales: each log-scale predicted by the rounded mean of the previous four Gaussians' (file
  order); context = the magnitudes of those Gaussians' residuals and of this Gaussian's earlier
  axes;
* positions: the bit length of each cell gap (context: size class ``k``), and in a section of
  their own the bits under each gap's leading one, raw;
* the rest, predicted from the four nearest (grid distance) of the 64 Gaussians before it
  (positions are decoded by then): rotation index (context ``j``), smallest-three components
  (predicted only from neighbours with the same dropped component and step; context ``j``),
  opacity, YCoCg-R colour and SH rest; context = the neighbours' residual magnitudes in the
  same channel and, for the second and third component of a rotation or colour, this
  Gaussian's earlier components.

Every channel is coded raw (minus its median) or as residuals of its prediction, whichever is
cheaper; one family table per context (one byte each). Contexts are computed from decoded
values only, so the decoder selects each symbol's table in its rANS loop. Formats 1 (raw or
differences along the Morton order, contexts ``j``, ``k`` and the distance to the predecessor)
and 2 (format 3 with positions as per-axis residuals from the predecessor in the original
Morton order, each rounded to its ``2^k`` step) are still decoded.

The per-attribute steps at each quality come from :data:`BASE_STEPS` and :data:`Q_FACTORS`,
fixed ratios measured on the real scenes with the renderer (``benchmarks/splat_calibrate.py``,
docs/results/splat/README.md): each attribute's render-MSE sensitivity ``w_a`` (render MSE per
squared step) sets its step ``~ sqrt(n_a / w_a)``, the allocation at which every attribute buys
the same render error per bit; the scale step was then raised 1.35x (a search around the
calibrated ratios at quality 4 on two scenes: -0.7 % bytes at equal render PSNR; the other
attributes' ratios were within +-1 % of optimal).

File (container v2, medium ``splat``): ``shape = [N, floats per Gaussian]``; ``meta`` holds the
format, SH degree, quality, steps, grid, thresholds (all checked before anything is sized by
them); four sections: scales, gap lengths, gap bits, attributes. The decoded scene comes
back in the Morton order of its decoded positions (:func:`coding_order`), unit quaternions.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numba as nb
import numpy as np

from neurocodec.codecs.base import Codec, reject_options
from neurocodec.codecs.container import Container
from neurocodec.codecs.limits import (
    DEFAULT_LIMITS,
    DecodeLimits,
    check_gaussians,
    check_int,
    check_int_list,
)
from neurocodec.codecs.splat.positions import (
    KEY_BITS,
    cell_keys,
    decode_keys,
    encode_gaps,
    from_key,
)
from neurocodec.codecs.splat.scene import SH_COEFFS, SplatScene
from neurocodec.codecs.splat.streams import (
    CtxChannel,
    CtxSpec,
    check_ctx_stream,
    check_stream,
    decode_ctx_stream,
    decode_stream,
    encode_ctx_stream,
)
from neurocodec.entropy import arrays
from neurocodec.errors import BitstreamError, InputError

NAME = "gsc"
FORMAT = 3
FORMATS = (1, 2, 3)  # 1: no prediction from neighbours; 2: per-axis positions (both decoded)
# the configuration digests older formats' files carry
OLD_DIGESTS = {1: "ba16e31a4c9c5107", 2: "003bf1f84710eaaa"}
GRID_BITS = 21
GRID = (1 << GRID_BITS) - 1
KMAX = GRID_BITS
LN2 = 0.6931471805599453
ROT_LEVELS = 3  # rotation step multipliers 1, 2, 4, 8
DIST_CTX = 8  # context buckets of the distance to the predecessor
MAX_SYMBOL = 1 << 24  # |quantized attribute| (beyond: a corrupted file)
PREV = 4  # scales: predicted from the previous PREV Gaussians in Morton order
KNN, WINDOW = 4, 64  # attributes: from the KNN nearest of the previous WINDOW Gaussians
N_SELF, N_CROSS = 8, 6  # context buckets (see streams.encode_ctx_stream)
# ``hidden`` pruning looks at the scene from this many cameras around it (azimuths all round,
# elevations -30..60 degrees), rendered at this size: coarser renders misjudge small Gaussians.
HIDDEN_VIEWS, HIDDEN_SIZE, HIDDEN_ELEVATION = 16, 256, (-30.0, 60.0)
# Orbit cameras see a scene from outside: a room meant to be seen from within looks hollow to
# them, so no share drops more than this fraction of the Gaussians.
HIDDEN_MAX_FRACTION = 0.3


@dataclass(frozen=True)
class Steps:
    """Quantization steps. ``pos``: position step as a fraction of the Gaussian's geometric-mean
    standard deviation (rounded down to a power of two grid units); ``rot``: smallest-three
    component step of an elongated Gaussian; ``alpha``: opacity (sigmoid) step; the others in
    the attribute's own units (log-scale, SH coefficient)."""

    scale: float
    pos: float
    rot: float
    alpha: float
    dc: float
    rest: float

    def scaled(self, f: float) -> Steps:
        return Steps(**{k: v * f for k, v in asdict(self).items()})


# The steps at Q_FACTORS = 1 (quality 2): see the module docstring for how they were found.
BASE_STEPS = Steps(scale=0.089, pos=0.17, rot=0.018, alpha=0.015, dc=0.06, rest=0.09)
# Quality q multiplies every step by Q_FACTORS[q].
Q_FACTORS = (2.0, 1.4142, 1.0, 0.7071, 0.5, 0.3536, 0.25, 0.1768)
QUALITIES = list(range(len(Q_FACTORS)))


def steps_for(quality: int) -> Steps:
    return BASE_STEPS.scaled(Q_FACTORS[quality])


# --- helpers ------------------------------------------------------------------------------

def pos_shift(steps: Steps, base: float) -> float:
    return math.log2(steps.pos / base)


def size_class(qs: np.ndarray, scale_step: float, shift: float) -> np.ndarray:
    """``k`` per Gaussian from its quantized log-scales (basic float ops only: identical on
    every IEEE machine)."""
    s = qs.sum(axis=1).astype(np.float64) * scale_step / (3.0 * LN2) + shift
    return np.clip(np.floor(s), 0, KMAX).astype(np.int64)


def rot_thresholds(scale_step: float) -> list[int]:
    """``t_m`` (m = 1..3): anisotropy (max - min quantized log-scale) up to which the rotation
    step is multiplied by at least 2^m — where ``1 - exp(-d)`` (how much a rotation error
    shows) falls below 2^-m."""
    return [int(math.floor(-math.log(1.0 - 2.0 ** -m) / scale_step)) for m in
            range(1, ROT_LEVELS + 1)]


def rot_level(qs: np.ndarray, thresholds: list[int]) -> np.ndarray:
    d = qs.max(axis=1) - qs.min(axis=1)
    return sum((d <= t).astype(np.int64) for t in thresholds)


def dist_ctx(r: np.ndarray) -> np.ndarray:
    """Bucket of a position residual's largest component (in its own steps): ~log2."""
    m = np.abs(r).max(axis=1)
    b = np.zeros(len(m), np.int64)
    for t in range(1, DIST_CTX):
        b += m >= (1 << (t - 1))
    return b


def ycocg(r, g, b):
    co = r - b
    t = b + (co >> 1)
    cg = g - t
    return t + (cg >> 1), co, cg


def ycocg_inv(y, co, cg):
    t = y - (cg >> 1)
    g = cg + t
    b = t - (co >> 1)
    return b + co, g, b


def smallest_three(quats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit, sign-canonical quaternions: ``(index of the largest |component| [N], the other
    three [N, 3] in w, x, y, z order)``, with the largest made positive."""
    q = quats.astype(np.float64)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    bad = ~(norm[:, 0] > 0)
    q = np.where(bad[:, None], np.array([1.0, 0, 0, 0]), q / np.where(bad[:, None], 1, norm))
    big = np.argmax(np.abs(q), axis=1)
    rows = np.arange(len(q))
    q = q * np.where(q[rows, big] < 0, -1.0, 1.0)[:, None]
    keep = np.ones((len(q), 4), bool)
    keep[rows, big] = False
    return big, q[keep].reshape(-1, 3)


def from_smallest_three(big: np.ndarray, rest: np.ndarray) -> np.ndarray:
    n = len(big)
    out = np.zeros((n, 4), np.float64)
    keep = np.ones((n, 4), bool)
    keep[np.arange(n), big] = False
    out[keep] = rest.reshape(-1)
    out[np.arange(n), big] = np.sqrt(np.maximum(0.0, 1.0 - (rest ** 2).sum(axis=1)))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def canonical_quats(quats: np.ndarray) -> np.ndarray:
    """What the coder does to rotations before quantizing: unit and sign-canonical."""
    return from_smallest_three(*smallest_three(quats))


def _rint(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -MAX_SYMBOL, MAX_SYMBOL).astype(np.int64)


def previous(n: int, k: int = PREV) -> np.ndarray:
    """``[n, k]``: the ``k`` Gaussians before each one in file order (-1 before the first)."""
    nbr = np.arange(n, dtype=np.int64)[:, None] - np.arange(1, k + 1)[None, :]
    return np.where(nbr >= 0, nbr, -1)


@nb.njit(cache=True)
def nearest_previous(xi, window, k):
    """``[n, k]``: for each Gaussian, the ``k`` nearest (squared grid distance, ties to the
    earlier candidate) of the ``window`` Gaussians before it in file order; -1 pads."""
    n = xi.shape[0]
    out = np.full((n, k), -1, np.int64)
    best = np.empty(k, np.int64)
    for i in range(n):
        m = 0
        for jj in range(i - 1, max(0, i - window) - 1, -1):
            d = np.int64(0)
            for a in range(3):
                t = xi[i, a] - xi[jj, a]
                d += t * t
            if m < k or d < best[m - 1]:
                p = m if m < k else k - 1
                while p > 0 and best[p - 1] > d:
                    best[p] = best[p - 1]
                    out[i, p] = out[i, p - 1]
                    p -= 1
                best[p] = d
                out[i, p] = jj
                if m < k:
                    m += 1
    return out


def hidden_mask(scene: SplatScene, share: float) -> np.ndarray:
    """``[N]`` bool: the least visible Gaussians whose blending weights, summed over
    :data:`HIDDEN_VIEWS` orbit renders, together make at most the fraction ``share`` of all
    (Gaussians that no view sees come first), and never more than
    :data:`HIDDEN_MAX_FRACTION` of the Gaussians. A scene no view sees keeps every one."""
    from neurocodec.codecs.splat.render import blend_weights, orbit_cameras

    if isinstance(share, bool) or not isinstance(share, (int, float)) \
            or not 0.0 <= float(share) < 1.0:
        raise InputError(f"hidden must be a fraction of the pictures in [0, 1), not {share!r}")
    if scene.n == 0 or share == 0:
        return np.zeros(scene.n, bool)
    cams = orbit_cameras(scene, HIDDEN_VIEWS, HIDDEN_SIZE, HIDDEN_SIZE,
                         elevation_deg=HIDDEN_ELEVATION)
    w = blend_weights(scene, cams)
    order = np.argsort(w, kind="stable")
    cum = np.cumsum(w[order])
    if not cum[-1] > 0:
        return np.zeros(scene.n, bool)
    n_drop = min(int(np.searchsorted(cum, float(share) * cum[-1], side="right")),
                 int(HIDDEN_MAX_FRACTION * scene.n))
    mask = np.zeros(scene.n, bool)
    mask[order[:n_drop]] = True
    return mask


def _layout(scene: SplatScene, steps: Steps):
    """``(origin [3], grid unit, pos_shift, quantized log-scales [N, 3], size classes [N],
    decoded position keys [N], coding order [N])`` of ``scene`` at ``steps``."""
    m = scene.means.astype(np.float64)
    origin = m.min(axis=0) if scene.n else np.zeros(3)
    extent = float(np.ptp(m, axis=0).max()) if scene.n else 0.0
    base = extent / GRID if extent > 0 else 1.0
    xi = np.clip(np.rint((m - origin) / base), 0, GRID).astype(np.int64)
    qs = _rint(scene.scales.astype(np.float64) / steps.scale)
    shift = pos_shift(steps, base)
    k = size_class(qs, steps.scale, shift)
    keys = cell_keys(xi, k)
    return origin, base, shift, qs, k, keys, np.argsort(keys, kind="stable")


def coding_order(scene: SplatScene, steps: Steps) -> np.ndarray:
    """The permutation of ``scene`` a file at ``steps`` holds it in (and decodes to)."""
    return _layout(scene, steps)[-1]


# --- the codec ----------------------------------------------------------------------------

class SplatCoder(Codec):
    """``encode(scene, quality, prune=None)``; ``decode(container) -> SplatScene``."""

    name = family = NAME
    medium = "splat"
    qualities = QUALITIES
    OPTIONS = ("prune", "hidden", "steps")

    def __init__(self) -> None:
        h = hashlib.sha256(f"{NAME}/format{FORMAT}/{BASE_STEPS}/{Q_FACTORS}/"
                           f"{arrays.family().digest()}".encode())
        self.digest = h.hexdigest()[:16]

    # --- encode ---------------------------------------------------------------------------
    def encode(self, scene: SplatScene, quality: int, meta: dict | None = None,
               **options: Any) -> bytes:
        reject_options(self, options, self.OPTIONS)
        self.check_quality(quality)
        if not isinstance(scene, SplatScene):
            raise InputError("the splat coder encodes a SplatScene")
        steps = options.get("steps") or steps_for(quality)
        prune = options.get("prune")
        finite = scene.finite()
        dropped = int((~finite).sum())
        if dropped:
            scene = scene.subset(finite)
        pruned = 0
        if prune:
            if not 0.0 <= float(prune) < 1.0:
                raise InputError(f"prune must be an opacity in [0, 1), not {prune!r}")
            keep = 1.0 / (1.0 + np.exp(-scene.opacities.astype(np.float64))) >= float(prune)
            pruned = int((~keep).sum())
            scene = scene.subset(keep)
        hidden = options.get("hidden")
        pruned_hidden = 0
        if hidden:
            keep = ~hidden_mask(scene, hidden)
            pruned_hidden = int((~keep).sum())
            scene = scene.subset(keep)
        info, sections = self.pack(scene, steps)
        info.update(quality=quality, pruned=pruned, dropped_nonfinite=dropped)
        if hidden:
            info.update(pruned_hidden=pruned_hidden, hidden=float(hidden))
        floats = 14 + 3 * scene.sh_rest.shape[1]
        return Container(codec=self.family, model=self.name, weights=self.digest,
                         shape=[scene.n, floats], meta=info, sections=sections,
                         medium="splat").to_bytes()

    @staticmethod
    def pack(scene: SplatScene, steps: Steps) -> tuple[dict, list[bytes]]:
        n = scene.n
        origin, base, shift, qs, k, keys, order = _layout(scene, steps)
        keys, qs, k = keys[order], qs[order], k[order]
        s = scene.subset(order)
        lengths, gap_bits = encode_gaps(keys, k)

        thr = rot_thresholds(steps.scale)
        j = rot_level(qs, thr)
        big, three = smallest_three(s.quats)
        rstep = steps.rot * (2.0 ** j)
        qr = _rint(three / rstep[:, None])

        alpha = 1.0 / (1.0 + np.exp(-s.opacities.astype(np.float64)))
        qa = _rint(alpha / steps.alpha)
        qd = _rint(s.sh_dc.astype(np.float64) / steps.dc)
        y, co, cg = ycocg(qd[:, 0], qd[:, 1], qd[:, 2])
        rest = _rint(s.sh_rest.astype(np.float64) / steps.rest)

        zero = np.zeros(n, np.int64)
        sec0 = encode_ctx_stream(
            [CtxChannel(qs[:, a], zero, 1, N_SELF, N_CROSS if a else 1, tuple(range(a)))
             for a in range(3)], previous(n))
        sec1 = encode_ctx_stream([CtxChannel(lengths, k, KMAX + 1, pred_ok=False)], None)
        cls = big * (ROT_LEVELS + 1) + j
        nbr = nearest_previous(from_key(keys), WINDOW, KNN)  # decoded positions
        ch = [CtxChannel(big, j, ROT_LEVELS + 1, pred_ok=False)]
        ch += [CtxChannel(qr[:, a], j, ROT_LEVELS + 1, N_SELF, N_CROSS if a else 1,
                          tuple(range(1, a + 1)), cls=cls) for a in range(3)]
        ch += [CtxChannel(qa, zero, 1, N_SELF)]
        ch += [CtxChannel(v, zero, 1, N_SELF, N_CROSS if a else 1, tuple(range(5, 5 + a)))
               for a, v in enumerate((y, co, cg))]
        ch += [CtxChannel(rest[:, kk, c], zero, 1, N_SELF)
               for kk in range(rest.shape[1]) for c in range(3)]
        sec2 = encode_ctx_stream(ch, nbr)
        info = {"format": FORMAT, "sh_degree": s.sh_degree, "steps": asdict(steps),
                "origin": [float(v) for v in origin], "base": base, "pos_shift": shift,
                "rot_thresholds": thr}
        return info, [sec0, sec1, gap_bits, sec2]

    # --- decode ---------------------------------------------------------------------------
    def decode(self, c: Container, limits: DecodeLimits | None = None) -> SplatScene:
        fmt, n, degree, steps, origin, base, shift, thr = self.check(c, limits or DEFAULT_LIMITS)
        if fmt == 1:
            return self._decode_v1(c, n, degree, steps, origin, base, shift, thr)
        K = SH_COEFFS[degree]
        zero = np.zeros(n, np.int64)
        qs = np.stack(decode_ctx_stream(
            c.sections[0], [CtxSpec(zero, 1, N_SELF, N_CROSS if a else 1, tuple(range(a)))
                            for a in range(3)], previous(n), n, "scales", MAX_SYMBOL), axis=1)
        k = size_class(qs, steps.scale, shift)
        if fmt == 2:
            r = np.stack(decode_ctx_stream(
                c.sections[1], [CtxSpec(k, KMAX + 1, 1, N_CROSS if a else 1, tuple(range(a)),
                                        split=True) for a in range(3)], None, n, "positions",
                MAX_SYMBOL), axis=1)
            xi = np.cumsum(r << k[:, None], axis=0)
        else:
            (lengths,) = decode_ctx_stream(c.sections[1], [CtxSpec(k, KMAX + 1)], None, n,
                                           "positions", KEY_BITS)
            xi = from_key(decode_keys(lengths, k, c.sections[2]))
        j = rot_level(qs, thr)
        nbr = nearest_previous(xi, WINDOW, KNN)
        def cls(ch):  # the rotation's class: its dropped component (channel 0) and step
            return ch[0] * (ROT_LEVELS + 1) + j

        specs = [CtxSpec(j, ROT_LEVELS + 1)]
        specs += [CtxSpec(j, ROT_LEVELS + 1, N_SELF, N_CROSS if a else 1,
                          tuple(range(1, a + 1)), cls=cls) for a in range(3)]
        specs += [CtxSpec(zero, 1, N_SELF)]
        specs += [CtxSpec(zero, 1, N_SELF, N_CROSS if a else 1, tuple(range(5, 5 + a)))
                  for a in range(3)]
        specs += [CtxSpec(zero, 1, N_SELF) for _ in range(3 * K)]
        ch = decode_ctx_stream(c.sections[-1], specs, nbr, n, "attributes", MAX_SYMBOL)
        vals = np.stack(ch[1:], axis=1) if n else np.zeros((0, len(ch) - 1), np.int64)
        return _scene(qs, xi, j, ch[0], vals, n, K, steps, origin, base)

    @staticmethod
    def _decode_v1(c: Container, n, degree, steps, origin, base, shift, thr) -> SplatScene:
        """Format 1: every channel raw or differences along the Morton order."""
        K = SH_COEFFS[degree]
        zero = np.zeros(n, np.int64)
        qs = np.stack(decode_stream(c.sections[0], [(zero, 1)] * 3, n, "scales"), axis=1)
        if n and np.abs(qs).max() > MAX_SYMBOL:
            raise BitstreamError("corrupted file: scale out of range")
        k = size_class(qs, steps.scale, shift)
        r = np.stack(decode_stream(c.sections[1], [(k, KMAX + 1)] * 3, n, "positions"), axis=1)
        if n and np.abs(r).max() > MAX_SYMBOL:
            raise BitstreamError("corrupted file: position out of range")
        xi = np.cumsum(r << k[:, None], axis=0)
        j = rot_level(qs, thr)
        dc_ctx = dist_ctx(r)
        ctx = ([(j, ROT_LEVELS + 1)] * 4 + [(dc_ctx, DIST_CTX)] * (4 + 3 * K))
        ch = decode_stream(c.sections[2], ctx, n, "attributes")
        big = ch[0]
        if n and (big.min() < 0 or big.max() > 3):
            raise BitstreamError("corrupted file: invalid rotation index")
        vals = np.stack(ch[1:], axis=1) if n else np.zeros((0, len(ch) - 1), np.int64)
        if n and np.abs(vals).max() > MAX_SYMBOL:
            raise BitstreamError("corrupted file: attribute out of range")
        return _scene(qs, xi, j, big, vals, n, K, steps, origin, base)

    def check_container(self, c: Container) -> None:
        if c.weights in OLD_DIGESTS.values():  # an older format's configuration: still decoded
            c = Container(**{**c.__dict__, "weights": self.digest})
        super().check_container(c)

    def check(self, c: Container, limits: DecodeLimits):
        self.check_container(c)
        n, floats = check_int_list(c.shape, "shape", 2, 0, 1 << 40)
        check_gaussians(n, limits)
        m = c.meta
        fmt = check_int(m.get("format"), "meta.format", FORMATS[0], FORMATS[-1])
        if c.weights != OLD_DIGESTS.get(fmt, self.digest):
            raise BitstreamError(f"meta.format {fmt} does not match the file's configuration")
        degree = check_int(m.get("sh_degree"), "meta.sh_degree", 0, 3)
        if floats != 14 + 3 * SH_COEFFS[degree]:
            raise BitstreamError(f"shape {c.shape} does not match SH degree {degree}")
        st = m.get("steps")
        if not isinstance(st, dict) or set(st) != set(Steps.__dataclass_fields__):
            raise BitstreamError("file lacks its quantization steps (meta.steps)")
        steps = Steps(**{k: _float(v, f"steps.{k}", 1e-7, 100.0) for k, v in st.items()})
        o = m.get("origin")
        if type(o) is not list or len(o) != 3:
            raise BitstreamError("invalid meta.origin")
        origin = [_float(v, "origin", -1e30, 1e30) for v in o]
        base = _float(m.get("base"), "base", 1e-30, 1e30)
        shift = _float(m.get("pos_shift"), "pos_shift", -1e4, 1e4)
        thr = check_int_list(m.get("rot_thresholds"), "rot_thresholds", ROT_LEVELS, 0,
                             1 << 24)
        want = 4 if fmt >= 3 else 3
        if len(c.sections) != want:
            raise BitstreamError(f"expected {want} sections, found {len(c.sections)}")
        # the streams' headers against n, before anything n implies is allocated (format 3's
        # gap bits are checked against the decoded gap lengths)
        K = SH_COEFFS[degree]
        streams = [c.sections[i] for i in ((0, 1, 3) if fmt >= 3 else (0, 1, 2))]
        for i, (data, what) in enumerate(zip(streams, ("scales", "positions", "attributes"))):
            if fmt == 1:
                check_stream(data, v1_contexts(K)[i], n, what)
            else:
                check_ctx_stream(data, ctx_layouts(K, fmt)[i], n, what)
        return fmt, n, degree, steps, origin, base, shift, thr


def v1_contexts(k: int) -> list[list[int]]:
    """Format 1: context counts of each section's channels, for ``k`` higher SH coefficients."""
    return [[1] * 3, [KMAX + 1] * 3, [ROT_LEVELS + 1] * 4 + [DIST_CTX] * (4 + 3 * k)]


def ctx_layouts(k: int, fmt: int = FORMAT) -> list[list[tuple[int, int]]]:
    """Formats 2 and 3: ``(n_ctx, split contexts)`` of the channels of each context stream
    (scales, positions, attributes), as the CtxSpecs of :meth:`SplatCoder.decode` declare them
    (a valid file fails its check if they drift)."""
    cross = [1, N_CROSS, N_CROSS]
    scales = [(N_SELF * cross[a], 0) for a in range(3)]
    positions = [((KMAX + 1) * cross[a], KMAX + 1) for a in range(3)] if fmt == 2 else \
        [(KMAX + 1, 0)]
    rot = ROT_LEVELS + 1
    attributes = ([(rot, 0)] + [(rot * N_SELF * cross[a], 0) for a in range(3)]
                  + [(N_SELF, 0)] + [(N_SELF * cross[a], 0) for a in range(3)]
                  + [(N_SELF, 0)] * (3 * k))
    return [scales, positions, attributes]


def _scene(qs, xi, j, big, vals, n, K, steps, origin, base) -> SplatScene:
    """The scene from its decoded integers (both formats)."""
    if n and (big.min() < 0 or big.max() > 3):
        raise BitstreamError("corrupted file: invalid rotation index")
    three = vals[:, 0:3] * (steps.rot * 2.0 ** j)[:, None]
    quats = from_smallest_three(big, three)
    a = np.clip(vals[:, 3] * steps.alpha, steps.alpha / 4, 1.0 - steps.alpha / 4)
    a = np.clip(a, 1e-6, 1 - 1e-6)
    opac = np.log(a / (1.0 - a))
    rr, gg, bb = ycocg_inv(vals[:, 4], vals[:, 5], vals[:, 6])
    dc = np.stack([rr, gg, bb], axis=1) * steps.dc
    rest = vals[:, 7:].reshape(n, K, 3) * steps.rest
    means = np.asarray(origin)[None, :] + xi.astype(np.float64) * base
    f32 = np.float32
    return SplatScene(means.astype(f32), (qs * steps.scale).astype(f32), quats,
                      opac.astype(f32), dc.astype(f32), rest.astype(f32))


def _float(v: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise BitstreamError(f"invalid meta.{name}: expected a number in {lo:g}..{hi:g}")
    return float(v)
