"""A CPU renderer for 3D Gaussian splats, for measuring what a codec does to the picture.

It follows the reference 3DGS rasterizer (graphdeco-inria ``diff-gaussian-rasterization``,
forward pass, no anti-aliasing) step by step, so our render PSNR means what the papers' does:

* **Preprocess** (per Gaussian, numba, in parallel): cull when the camera-space depth is
  ``<= znear`` (0.2); rotation from the *normalised* quaternion ``(w, x, y, z)``;
  ``Σ = R S Sᵀ Rᵀ`` with ``S = diag(exp(scales))``; EWA projection ``Σ' = J W Σ Wᵀ Jᵀ`` with
  ``W`` the world-to-camera rotation and the Jacobian ``J`` evaluated at a camera-space point
  whose ``x/z``, ``y/z`` are clamped to 1.3x the half field of view (gsplat's form
  ``(W - cx)/fx + 0.3·tan_fovx``, identical for a centred principal point); ``+0.3`` on the
  diagonal of ``Σ'``; conic ``Σ'⁻¹``; radius ``ceil(3·sqrt(λ_max))`` with
  ``λ_max = mid + sqrt(max(0.1, mid² - det))``; colour from SH to degree 3 at the view direction
  ``normalise(mean - camera centre)`` with the reference constants, ``+ 0.5``, clamped at 0;
  opacity ``sigmoid(logit)``.
* **Binning**: the reference's 16x16 tile rectangle from the radius (``getRect``), depth sort
  front to back (stable in Gaussian index, as the reference's radix sort of (tile, depth) keys).
* **Compositing** (numba, tiles in parallel): per pixel, ``power = -½ dᵀ Σ'⁻¹ d`` (skip if
  ``> 0``), ``alpha = min(0.99, opacity·exp(power))``, skip ``alpha < 1/255``, stop before a
  Gaussian that would bring the transmittance below ``1e-4``; ``C + T·background``.

Pixel coordinates: :class:`Camera` intrinsics are COLMAP's (the centre of pixel ``(i, j)`` is
at ``(i + 0.5, j + 0.5)``, so a centred principal point is ``cx = width / 2``) and
:attr:`Projection.means2d` is in those coordinates. The reference works in pixel-index
coordinates (``ndc2Pix``: the mean lands at ``fx·x/z + W/2 - 0.5``, pixel ``i`` sampled at ``i``);
both describe the same samples. The reference only knows centred principal points; any
``cx, cy`` work here.

Two exact shortcuts keep it fast on half a million Gaussians: a Gaussian whose opacity is below
1/255 can never pass the alpha test, and each Gaussian only visits the tiles and pixels inside
the bounding box of its ``alpha >= 1/255`` ellipse (intersected with the reference's rectangle).
Neither changes a pixel. Memory stays ``O(N + tile pairs)``; the (tile, Gaussian) pair lists are
built a band of tile rows at a time when they would pass ``max_pairs``.

Cameras come from :func:`orbit_cameras` (deterministic, around the scene's robust bounds) or from
a JSON file (:func:`cameras_from_json`, :func:`cameras_to_json`)::

    [{"R": [[r00, r01, r02], [r10, r11, r12], [r20, r21, r22]],   # world-to-camera rotation
      "t": [tx, ty, tz],                                          # x_cam = R @ x_world + t
      "fx": 300.0, "fy": 300.0, "cx": 128.0, "cy": 128.0,         # pixels (COLMAP convention)
      "width": 256, "height": 256, "znear": 0.2}, ...]            # znear optional (0.2)

Camera axes are COLMAP/3DGS's: x right, y down, z forward. The ``cameras.json`` that the
reference 3DGS training code writes (``position``, camera-to-world ``rotation``, ``fx``, ``fy``,
``width``, ``height``) is read too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np

from neurocodec.codecs.splat.scene import SH_C0, SplatScene
from neurocodec.errors import InputError

TILE = 16  # BLOCK_X = BLOCK_Y of the reference
ZNEAR = 0.2
LOWPASS = 0.3  # the reference's h_var: added to the 2D covariance diagonal
ALPHA_MAX = 0.99
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4
CLAMP = 1.3  # the Jacobian is evaluated within 1.3x the half field of view

SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


# ----------------------------------------------------------------------------------- cameras

@dataclass(eq=False)
class Camera:
    """A pinhole camera, COLMAP/3DGS convention (x right, y down, z forward).

    ``R [3, 3]`` and ``t [3]`` map world to camera: ``x_cam = R @ x_world + t``; ``fx, fy, cx, cy``
    in pixels with pixel ``(i, j)`` centred at ``(i + 0.5, j + 0.5)``; Gaussians at camera depth
    ``<= znear`` are culled."""

    R: np.ndarray
    t: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    znear: float = ZNEAR

    def __post_init__(self) -> None:
        self.R = np.asarray(self.R, np.float64).reshape(3, 3) if np.size(self.R) == 9 else None
        self.t = np.asarray(self.t, np.float64).reshape(3) if np.size(self.t) == 3 else None
        if self.R is None or self.t is None:
            raise InputError("camera: R must be 3x3 and t of length 3")
        self.fx, self.fy, self.cx, self.cy, self.znear = (
            float(v) for v in (self.fx, self.fy, self.cx, self.cy, self.znear))
        if int(self.width) != self.width or int(self.height) != self.height:
            raise InputError("camera: width and height must be integers")
        self.width, self.height = int(self.width), int(self.height)
        vals = np.concatenate([self.R.ravel(), self.t, [self.fx, self.fy, self.cx, self.cy,
                                                        self.znear]])
        if not np.isfinite(vals).all():
            raise InputError("camera: non-finite parameter")
        if not (0 < self.width <= 1 << 14 and 0 < self.height <= 1 << 14):
            raise InputError(f"camera: image size {self.width}x{self.height} out of range")
        if self.fx <= 0 or self.fy <= 0 or self.znear <= 0:
            raise InputError("camera: fx, fy and znear must be positive")

    @property
    def centre(self) -> np.ndarray:
        """``[3]`` the camera centre in world coordinates, ``-Rᵀ t``."""
        return -self.R.T @ self.t

    def to_dict(self) -> dict:
        return {"R": self.R.tolist(), "t": self.t.tolist(), "fx": self.fx, "fy": self.fy,
                "cx": self.cx, "cy": self.cy, "width": self.width, "height": self.height,
                "znear": self.znear}

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        """One camera from our JSON form, or from an entry of the reference 3DGS ``cameras.json``
        (``position`` = camera centre, ``rotation`` = camera-to-world rotation)."""
        try:
            if "R" in d:
                return cls(d["R"], d["t"], d["fx"], d["fy"], d["cx"], d["cy"], d["width"],
                           d["height"], d.get("znear", ZNEAR))
            r = np.asarray(d["rotation"], np.float64).T
            return cls(r, -r @ np.asarray(d["position"], np.float64), d["fx"], d["fy"],
                       d["width"] / 2, d["height"] / 2, d["width"], d["height"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"camera: bad entry ({type(e).__name__}: {e})") from None


def look_at(eye, target, up, fx: float, fy: float, width: int, height: int,
            cx: float | None = None, cy: float | None = None, znear: float = ZNEAR) -> Camera:
    """A camera at ``eye [3]`` looking at ``target [3]``, image up along ``up [3]``."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(-up, fwd)  # down × forward = right (x right, y down, z forward)
    if np.linalg.norm(right) < 1e-9:
        raise InputError("look_at: view direction parallel to up")
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    return Camera(R, -R @ eye, fx, fy, width / 2 if cx is None else cx,
                  height / 2 if cy is None else cy, width, height, znear)


def scene_bounds(scene: SplatScene, percentile: float = 5.0) -> tuple[np.ndarray, float]:
    """Robust centre ``[3]`` and radius of a scene: the box between the ``percentile`` and
    ``100 - percentile`` percentiles of the means on each axis; its centre and half diagonal
    (at least 3 typical Gaussian standard deviations, so a one-Gaussian scene has a size)."""
    ok = scene.finite()
    means = scene.means[ok].astype(np.float64)
    if len(means) == 0:
        return np.zeros(3), 1.0
    lo, hi = np.percentile(means, [percentile, 100 - percentile], axis=0)
    centre = (lo + hi) / 2
    sigma = float(np.median(np.exp(scene.scales[ok].astype(np.float64).max(axis=1))))
    radius = max(0.5 * float(np.linalg.norm(hi - lo)), 3 * sigma, 1e-6)
    return centre, radius


def orbit_cameras(scene: SplatScene, n: int, width: int, height: int, fov_deg: float = 50.0,
                  *, elevation_deg: tuple[float, float] = (0.0, 30.0),
                  distance_scale: float = 1.0, percentile: float = 5.0,
                  up=(0.0, -1.0, 0.0)) -> list[Camera]:
    """``n`` deterministic cameras around the scene, each looking at its robust centre.

    Azimuths are evenly spaced around ``up`` (default -y, the COLMAP/3DGS convention: pass
    ``up=(0, 0, 1)`` for z-up scenes); elevations above the horizon spread over
    ``elevation_deg`` (a golden-ratio sequence, the first in the middle); all at the distance
    where the robust bounding sphere (:func:`scene_bounds`) just fits the narrower field of view
    (times ``distance_scale``). ``fov_deg`` is the horizontal field of view; square pixels,
    centred principal point."""
    if n < 0:
        raise InputError("orbit_cameras: n must be >= 0")
    centre, radius = scene_bounds(scene, percentile)
    up = np.asarray(up, np.float64)
    up = up / np.linalg.norm(up)
    f = (width / 2) / math.tan(math.radians(fov_deg) / 2)
    half = min(math.atan(width / (2 * f)), math.atan(height / (2 * f)))
    dist = distance_scale * radius / math.sin(half)
    a0 = np.eye(3)[int(np.argmin(np.abs(up)))]
    a0 = a0 - up * (a0 @ up)
    a0 /= np.linalg.norm(a0)
    a1 = np.cross(up, a0)
    lo, hi = (math.radians(e) for e in elevation_deg)
    cams = []
    for i in range(n):
        az = 2 * math.pi * i / n
        el = lo + (hi - lo) * ((0.5 + i * 0.6180339887498949) % 1.0)
        d = math.cos(el) * (math.cos(az) * a0 + math.sin(az) * a1) + math.sin(el) * up
        cams.append(look_at(centre + dist * d, centre, up, f, f, width, height))
    return cams


def cameras_to_json(cameras: list[Camera], path: str | Path | None = None) -> str:
    """The cameras as JSON text (the form in the module docstring); written to ``path`` if given."""
    text = json.dumps([c.to_dict() for c in cameras], indent=1)
    if path is not None:
        Path(path).write_text(text)
    return text


def cameras_from_json(src: str | Path | list) -> list[Camera]:
    """Cameras from a JSON file path, JSON text, or an already parsed list (our form or the
    reference 3DGS ``cameras.json``)."""
    if isinstance(src, (str, Path)):
        text = src if isinstance(src, str) and src.lstrip().startswith("[") else None
        if text is None:
            try:
                text = Path(src).read_text()
            except OSError as e:
                raise InputError(f"cameras: cannot read {src}: {e}") from None
        try:
            src = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"cameras: not JSON: {e}") from None
    if not isinstance(src, list) or not all(isinstance(d, dict) for d in src):
        raise InputError("cameras: expected a JSON list of camera objects")
    return [Camera.from_dict(d) for d in src]


# -------------------------------------------------------------------------------- preprocess

@dataclass
class Projection:
    """Per-Gaussian screen-space quantities for one camera (``N`` rows, culled rows have
    ``radii == 0``; their other fields are 0).

    * ``means2d [N, 2]``  projected means, pixel ``(i, j)`` centred at ``(i + 0.5, j + 0.5)``
    * ``depths [N]``      camera-space z
    * ``cov2d [N, 3]``    2D covariance ``(xx, xy, yy)`` including the +0.3 low-pass
    * ``conics [N, 3]``   its inverse ``(xx, xy, yy)``
    * ``radii [N]``       int32 ``ceil(3·sqrt(λ_max))``, 0 when culled
    * ``colors [N, 3]``   view-dependent RGB from SH (``+0.5``, clamped at 0)
    * ``opacities [N]``   ``sigmoid(logit)``
    """

    means2d: np.ndarray
    depths: np.ndarray
    cov2d: np.ndarray
    conics: np.ndarray
    radii: np.ndarray
    colors: np.ndarray
    opacities: np.ndarray


@nb.njit(cache=True, nogil=True)
def _sh_color(dc, rest, x, y, z, out):
    """Reference SH evaluation of one Gaussian: ``dc [3]``, ``rest [K, 3]``, unit view direction
    ``(x, y, z)`` -> ``out [3]`` = SH value ``+ 0.5``, clamped at 0."""
    K = rest.shape[0]
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    for ch in range(3):
        c = SH_C0 * dc[ch]
        if K >= 3:
            c += -SH_C1 * y * rest[0, ch] + SH_C1 * z * rest[1, ch] - SH_C1 * x * rest[2, ch]
        if K >= 8:
            c += (SH_C2[0] * xy * rest[3, ch] + SH_C2[1] * yz * rest[4, ch]
                  + SH_C2[2] * (2 * zz - xx - yy) * rest[5, ch] + SH_C2[3] * xz * rest[6, ch]
                  + SH_C2[4] * (xx - yy) * rest[7, ch])
        if K >= 15:
            c += (SH_C3[0] * y * (3 * xx - yy) * rest[8, ch] + SH_C3[1] * xy * z * rest[9, ch]
                  + SH_C3[2] * y * (4 * zz - xx - yy) * rest[10, ch]
                  + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * rest[11, ch]
                  + SH_C3[4] * x * (4 * zz - xx - yy) * rest[12, ch]
                  + SH_C3[5] * z * (xx - yy) * rest[13, ch]
                  + SH_C3[6] * x * (xx - 3 * yy) * rest[14, ch])
        out[ch] = max(c + 0.5, 0.0)


def sh_to_color(sh_dc: np.ndarray, sh_rest: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Reference 3DGS SH evaluation: ``sh_dc [N, 3]``, ``sh_rest [N, K, 3]`` (K = 0, 3, 8, 15),
    unit ``dirs [N, 3]`` (mean - camera centre) -> RGB ``[N, 3]``, ``+0.5``, clamped at 0."""
    out = np.empty((len(sh_dc), 3))
    dc, rest = np.asarray(sh_dc, np.float64), np.asarray(sh_rest, np.float64)
    for i, d in enumerate(np.asarray(dirs, np.float64)):
        _sh_color(dc[i], rest[i], d[0], d[1], d[2], out[i])
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def _preprocess(means, scales, quats, logits, sh_dc, sh_rest, Rw, tw, cam, intr, size, znear,
                means2d, depths, cov2d, conics, radii, colors, opacities):
    fx, fy, cx, cy = intr[0], intr[1], intr[2], intr[3]
    W, H = size[0], size[1]
    tan_x, tan_y = 0.5 * W / fx, 0.5 * H / fy
    lim_xp, lim_xn = (W - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_yp, lim_yn = (H - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    ntx, nty = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE
    for i in nb.prange(means.shape[0]):
        mx, my, mz = np.float64(means[i, 0]), np.float64(means[i, 1]), np.float64(means[i, 2])
        z = Rw[2, 0] * mx + Rw[2, 1] * my + Rw[2, 2] * mz + tw[2]
        if not np.float32(z) > np.float32(znear):  # near culling as the reference (float32), NaN
            continue
        x = Rw[0, 0] * mx + Rw[0, 1] * my + Rw[0, 2] * mz + tw[0]
        y = Rw[1, 0] * mx + Rw[1, 1] * my + Rw[1, 2] * mz + tw[1]
        qw, qx, qy, qz = (np.float64(quats[i, 0]), np.float64(quats[i, 1]),
                          np.float64(quats[i, 2]), np.float64(quats[i, 3]))
        qn = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        if not qn > 0:
            continue
        qw, qx, qy, qz = qw / qn, qx / qn, qy / qn, qz / qn
        # M = R_q S (columns of the rotation scaled by the standard deviations)
        s0 = math.exp(scales[i, 0])
        s1 = math.exp(scales[i, 1])
        s2 = math.exp(scales[i, 2])
        M = np.empty((3, 3))
        M[0, 0] = (1 - 2 * (qy * qy + qz * qz)) * s0
        M[0, 1] = 2 * (qx * qy - qw * qz) * s1
        M[0, 2] = 2 * (qx * qz + qw * qy) * s2
        M[1, 0] = 2 * (qx * qy + qw * qz) * s0
        M[1, 1] = (1 - 2 * (qx * qx + qz * qz)) * s1
        M[1, 2] = 2 * (qy * qz - qw * qx) * s2
        M[2, 0] = 2 * (qx * qz - qw * qy) * s0
        M[2, 1] = 2 * (qy * qz + qw * qx) * s1
        M[2, 2] = (1 - 2 * (qx * qx + qy * qy)) * s2
        # EWA: J at the point clamped to 1.3x the half field of view; T = J W (2 x 3)
        txc = z * min(lim_xp, max(-lim_xn, x / z))
        tyc = z * min(lim_yp, max(-lim_yn, y / z))
        j00, j02 = fx / z, -fx * txc / (z * z)
        j11, j12 = fy / z, -fy * tyc / (z * z)
        a = 0.0
        b = 0.0
        c = 0.0
        for k in range(3):  # A = T M; Σ' = A Aᵀ
            a0 = 0.0
            a1 = 0.0
            for m in range(3):
                a0 += (j00 * Rw[0, m] + j02 * Rw[2, m]) * M[m, k]
                a1 += (j11 * Rw[1, m] + j12 * Rw[2, m]) * M[m, k]
            a += a0 * a0
            b += a0 * a1
            c += a1 * a1
        a += LOWPASS
        c += LOWPASS
        det = a * c - b * b
        if not det > 0:
            continue
        mid = 0.5 * (a + c)
        lam = mid + math.sqrt(max(0.1, mid * mid - det))
        radius = math.ceil(3 * math.sqrt(lam))
        u = fx * x / z + cx
        v = fy * y / z + cy
        if not (abs(u) < 1e9 and abs(v) < 1e9):
            continue
        # the reference's tile rectangle (getRect, in its pixel-index coordinates u - 0.5)
        rx0 = min(ntx, max(0, math.floor((u - 0.5 - radius) / TILE)))
        rx1 = min(ntx, max(0, math.floor((u - 0.5 + radius + TILE - 1) / TILE)))
        ry0 = min(nty, max(0, math.floor((v - 0.5 - radius) / TILE)))
        ry1 = min(nty, max(0, math.floor((v - 0.5 + radius + TILE - 1) / TILE)))
        if (rx1 - rx0) * (ry1 - ry0) == 0:
            continue
        dx, dy, dz = mx - cam[0], my - cam[1], mz - cam[2]
        dn = math.sqrt(dx * dx + dy * dy + dz * dz)
        _sh_color(sh_dc[i], sh_rest[i], dx / dn, dy / dn, dz / dn, colors[i])
        means2d[i, 0] = u
        means2d[i, 1] = v
        depths[i] = z
        cov2d[i, 0] = a
        cov2d[i, 1] = b
        cov2d[i, 2] = c
        conics[i, 0] = c / det
        conics[i, 1] = -b / det
        conics[i, 2] = a / det
        radii[i] = np.int32(radius)
        opacities[i] = 1 / (1 + math.exp(-np.float64(logits[i])))


def project(scene: SplatScene, camera: Camera) -> Projection:
    """Project every Gaussian of ``scene`` into ``camera`` the way the reference preprocess does
    (see the module docstring); culled Gaussians get ``radii == 0``."""
    n = scene.n
    out = Projection(np.zeros((n, 2)), np.zeros(n), np.zeros((n, 3)), np.zeros((n, 3)),
                     np.zeros(n, np.int32), np.zeros((n, 3)), np.zeros(n))
    if n == 0:
        return out
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    _preprocess(f32(scene.means), f32(scene.scales), f32(scene.quats), f32(scene.opacities),
                f32(scene.sh_dc), f32(scene.sh_rest), camera.R, camera.t, camera.centre,
                np.array([camera.fx, camera.fy, camera.cx, camera.cy]),
                np.array([camera.width, camera.height], np.int64), camera.znear,
                out.means2d, out.depths, out.cov2d, out.conics, out.radii, out.colors,
                out.opacities)
    return out


# ------------------------------------------------------------------------------- rasterize

# columns of the packed per-Gaussian float32 table handed to the kernels
_PX, _PY, _CA, _CB, _CC, _OP, _R, _G, _B, _THR = range(10)


def _pack(proj: Projection, width: int, height: int):
    """Visible Gaussians front to back, as a float32 table, int32 boxes — the tile rectangle
    ``[rx0, rx1) x [ry0, ry1)`` and the pixel box ``[x0, x1] x [y0, y1]`` (pixel indices)
    outside which alpha < 1/255 — and each row's Gaussian (its index in ``proj``)."""
    vis = np.flatnonzero((proj.radii > 0) & (proj.opacities >= ALPHA_MIN)
                         & np.isfinite(proj.colors).all(axis=1))
    vis = vis[np.argsort(proj.depths[vis].astype(np.float32), kind="stable")]
    tab = np.empty((len(vis), 10), np.float32)
    boxes = np.empty((len(vis), 8), np.int32)
    rows = np.empty(len(vis), np.int64)
    n = _pack_rows(vis, proj.means2d, proj.cov2d, proj.conics, proj.radii, proj.colors,
                   proj.opacities, width, height, tab, boxes, rows)
    return tab[:n], boxes[:n], rows[:n]


@nb.njit(cache=True, nogil=True)
def _pack_rows(vis, means2d, cov2d, conics, radii, colors, opacities, W, H, tab, boxes, rows):
    ntx, nty = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE
    n = 0
    for g in vis:
        px, py = means2d[g, 0] - 0.5, means2d[g, 1] - 0.5  # the reference's pixel indices
        op, r = opacities[g], radii[g]
        # alpha >= 1/255  <=>  dᵀ Σ'⁻¹ d <= k = 2 ln(255·opacity): its bounding box (+1 px)
        k = 2 * math.log(max(op, ALPHA_MIN) * 255.0)
        ex = math.sqrt(k * cov2d[g, 0]) + 1
        ey = math.sqrt(k * cov2d[g, 2]) + 1
        x0, x1 = max(math.ceil(px - ex), 0), min(math.floor(px + ex), W - 1)
        y0, y1 = max(math.ceil(py - ey), 0), min(math.floor(py + ey), H - 1)
        if x1 < x0 or y1 < y0:
            continue
        # the reference's tile rectangle, cut to the tiles that box touches
        rx0 = max(min(ntx, max(0, math.floor((px - r) / TILE))), x0 // TILE)
        rx1 = min(min(ntx, max(0, math.floor((px + r + TILE - 1) / TILE))), x1 // TILE + 1)
        ry0 = max(min(nty, max(0, math.floor((py - r) / TILE))), y0 // TILE)
        ry1 = min(min(nty, max(0, math.floor((py + r + TILE - 1) / TILE))), y1 // TILE + 1)
        if rx1 <= rx0 or ry1 <= ry0:
            continue
        tab[n, _PX], tab[n, _PY] = px, py
        tab[n, _CA], tab[n, _CB], tab[n, _CC] = conics[g, 0], conics[g, 1], conics[g, 2]
        tab[n, _OP] = op
        tab[n, _R], tab[n, _G], tab[n, _B] = colors[g, 0], colors[g, 1], colors[g, 2]
        # power below this cannot reach alpha 1/255 (the margin leaves the exact test in charge)
        tab[n, _THR] = math.log(ALPHA_MIN / op) - 1e-3
        boxes[n, 0], boxes[n, 1], boxes[n, 2], boxes[n, 3] = rx0, rx1, ry0, ry1
        boxes[n, 4], boxes[n, 5], boxes[n, 6], boxes[n, 7] = x0, x1, y0, y1
        rows[n] = g
        n += 1
    return n


@nb.njit(cache=True, nogil=True)
def _bin(boxes, ntx, band0, band1):
    """Per-tile lists of Gaussian rows (already front to back) for tile rows [band0, band1)."""
    nt = (band1 - band0) * ntx
    offsets = np.zeros(nt + 1, np.int64)
    for g in range(boxes.shape[0]):
        y0, y1 = max(boxes[g, 2], band0), min(boxes[g, 3], band1)
        for ty in range(y0, y1):
            for tx in range(boxes[g, 0], boxes[g, 1]):
                offsets[(ty - band0) * ntx + tx + 1] += 1
    for i in range(nt):
        offsets[i + 1] += offsets[i]
    ids = np.empty(offsets[nt], np.int32)
    cursor = offsets[:nt].copy()
    for g in range(boxes.shape[0]):
        y0, y1 = max(boxes[g, 2], band0), min(boxes[g, 3], band1)
        for ty in range(y0, y1):
            for tx in range(boxes[g, 0], boxes[g, 1]):
                t = (ty - band0) * ntx + tx
                ids[cursor[t]] = g
                cursor[t] += 1
    return offsets, ids


@nb.njit(cache=True, nogil=True, parallel=True)
def _composite(tab, boxes, offsets, ids, ntx, band0, band1, width, height, bg, out, pair_w):
    """Front-to-back alpha compositing of the tiles in rows [band0, band1) into out [H, W, 3].

    Each tile keeps per-pixel (T, C, done); Gaussians are visited in depth order and each one
    only over its pixel box, which gives every pixel exactly the reference's sequence. If
    ``pair_w`` is not empty (``[len(ids)]``), each (tile, Gaussian) pair's blending weights
    ``alpha·T`` are summed into it (one slot per pair: no two tiles write the same one)."""
    acc = pair_w.shape[0] > 0
    amax = np.float32(ALPHA_MAX)
    amin = np.float32(ALPHA_MIN)
    tmin = np.float32(T_MIN)
    half = np.float32(0.5)
    one = np.float32(1.0)
    nt = (band1 - band0) * ntx
    for tile in nb.prange(nt):
        ty = band0 + tile // ntx
        tx = tile % ntx
        xs, ys = tx * TILE, ty * TILE
        xe, ye = min(xs + TILE, width), min(ys + TILE, height)
        T = np.ones((TILE, TILE), np.float32)
        C = np.zeros((TILE, TILE, 3), np.float32)
        done = np.zeros((TILE, TILE), np.bool_)
        left = (xe - xs) * (ye - ys)
        for k in range(offsets[tile], offsets[tile + 1]):
            if left == 0:
                break
            g = ids[k]
            gx, gy = tab[g, _PX], tab[g, _PY]
            ca, cb, cc = tab[g, _CA], tab[g, _CB], tab[g, _CC]
            op, thr = tab[g, _OP], tab[g, _THR]
            for py in range(max(ys, boxes[g, 6]), min(ye, boxes[g, 7] + 1)):
                dy = gy - np.float32(py)
                for px in range(max(xs, boxes[g, 4]), min(xe, boxes[g, 5] + 1)):
                    j, i = py - ys, px - xs
                    if done[j, i]:
                        continue
                    dx = gx - np.float32(px)
                    power = -half * (ca * dx * dx + cc * dy * dy) - cb * dx * dy
                    if power > 0 or power < thr:
                        continue
                    alpha = min(amax, op * np.exp(power))
                    if alpha < amin:
                        continue
                    t = T[j, i]
                    test_t = t * (one - alpha)
                    if test_t < tmin:
                        done[j, i] = True
                        left -= 1
                        continue
                    w = alpha * t
                    if acc:
                        pair_w[k] += w
                    C[j, i, 0] += tab[g, _R] * w
                    C[j, i, 1] += tab[g, _G] * w
                    C[j, i, 2] += tab[g, _B] * w
                    T[j, i] = test_t
        for j in range(ye - ys):
            for i in range(xe - xs):
                for ch in range(3):
                    out[ys + j, xs + i, ch] = C[j, i, ch] + T[j, i] * bg[ch]


def rasterize(proj: Projection, width: int, height: int, background=(0.0, 0.0, 0.0),
              max_pairs: int = 1 << 25, weights: np.ndarray | None = None) -> np.ndarray:
    """Composite projected Gaussians into a float32 ``[height, width, 3]`` image (not clamped
    above, like the reference). The (tile, Gaussian) lists are built a band of tile rows at a
    time so that no band holds more than ``max_pairs`` entries (unless one tile row does).
    ``weights [N]`` (float64), if given, gets each Gaussian's blending weights ``alpha·T``
    summed over the image's pixels added to it."""
    bg = np.asarray(background, np.float32).reshape(3)
    out = np.empty((height, width, 3), np.float32)
    tab, boxes, rows = _pack(proj, width, height)
    ntx, nty = -(-width // TILE), -(-height // TILE)
    # pairs per tile row, to cut the rows into bands of bounded size
    per_row = np.zeros(nty + 1, np.int64)
    ncols = (boxes[:, 1] - boxes[:, 0]).astype(np.int64)
    np.add.at(per_row, boxes[:, 2], ncols)
    np.add.at(per_row, boxes[:, 3], -ncols)
    per_row = np.cumsum(per_row)[:nty]
    band0 = 0
    while band0 < nty:
        band1, total = band0 + 1, per_row[band0]
        while band1 < nty and total + per_row[band1] <= max_pairs:
            total += per_row[band1]
            band1 += 1
        offsets, ids = _bin(boxes, ntx, band0, band1)
        pair_w = np.zeros(len(ids) if weights is not None else 0, np.float32)
        _composite(tab, boxes, offsets, ids, ntx, band0, band1, width, height, bg, out, pair_w)
        if weights is not None:
            weights[rows] += np.bincount(ids, pair_w, minlength=len(rows))
        band0 = band1
    return out


def render(scene: SplatScene, camera: Camera, background=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Render ``scene`` from ``camera``: float32 ``[height, width, 3]``, linear 0..1 colour (the
    reference's output: not clamped above 1) over ``background`` (RGB 0..1)."""
    return rasterize(project(scene, camera), camera.width, camera.height, background)


def blend_weights(scene: SplatScene, cameras: list[Camera]) -> np.ndarray:
    """``[N]`` float64: each Gaussian's blending weights ``alpha·T`` summed over every pixel of
    every camera's render — how much of the pictures it makes (``0``: invisible in all of
    them; a pixel's weights sum to ``1 - T``)."""
    w = np.zeros(scene.n)
    for cam in cameras:
        rasterize(project(scene, cam), cam.width, cam.height, weights=w)
    return w


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float ``[H, W, 3]`` -> uint8, clamped to 0..1 and rounded half up (torchvision's
    ``save_image``, which the reference evaluation uses)."""
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_views(scene: SplatScene, cameras: list[Camera],
                 background=(0.0, 0.0, 0.0)) -> list[np.ndarray]:
    """One uint8 ``[H, W, 3]`` render per camera."""
    return [to_uint8(render(scene, cam, background)) for cam in cameras]


# --------------------------------------------------------------------------------- quality

def views_quality(reference: list[np.ndarray], test: list[np.ndarray]) -> dict:
    """PSNR and SSIM (dB / 0..1, means over views as the 3DGS papers report them) between two
    lists of uint8 ``[H, W, 3]`` renders of the same views, and per view."""
    from neurocodec.eval.metrics import psnr, ssim

    if len(reference) != len(test):
        raise InputError(f"quality: {len(reference)} reference views but {len(test)} test views")
    p = [psnr(a, b) for a, b in zip(reference, test)]
    s = [ssim(a, b) for a, b in zip(reference, test)]
    return {"psnr": float(np.mean(p)) if p else float("nan"),
            "ssim": float(np.mean(s)) if s else float("nan"), "psnr_views": p, "ssim_views": s}


def render_quality(original: SplatScene, decoded: SplatScene, cameras: list[Camera],
                   background=(0.0, 0.0, 0.0), reference_views: list[np.ndarray] | None = None
                   ) -> dict:
    """Quality of a decoded scene: :func:`views_quality` between renders of ``original`` (or
    the given ``reference_views``, to render it once for many decoded versions) and of
    ``decoded`` from the same ``cameras``."""
    ref = render_views(original, cameras, background) if reference_views is None \
        else reference_views
    return views_quality(ref, render_views(decoded, cameras, background))
