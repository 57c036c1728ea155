"""PlayCanvas / SuperSplat "compressed PLY" (``*.compressed.ply``), read only.

A binary PLY with two or three elements:

* ``chunk`` (one row per 256 Gaussians, ``ceil(N / 256)`` rows), float properties
  ``min_x..max_z`` (position box), ``min_scale_x..max_scale_z`` (log-scale box) and, in newer
  files, ``min_r..max_b`` (colour box, in ``0.5 + SH_C0 * f_dc`` units);
* ``vertex`` (N rows), four ``uint`` words:

  - ``packed_position``: x 11 bits | y 10 bits | z 11 bits (MSB first), each a fraction of its
    chunk's box: ``min + (max - min) * q / (2^b - 1)`` — steps of box/2047 and box/1023;
  - ``packed_scale``: the same 11-10-11 packing of the log-scales in the chunk's scale box;
  - ``packed_rotation``: 2 bits index of the largest |component| of the unit (w, x, y, z)
    quaternion, then the other three (in index order) as 10 bits each,
    ``v = (q / 1023 - 0.5) * sqrt(2)`` (steps of sqrt(2)/1023 over ±1/sqrt(2)); the largest is
    ``sqrt(1 - a^2 - b^2 - c^2)`` (non-negative);
  - ``packed_color``: r, g, b, a bytes (MSB first); rgb a fraction of the chunk colour box
    (or the colour itself when the file has no colour box), ``f_dc = (colour - 0.5) / SH_C0``;
    ``a = sigmoid(opacity)`` in 1/255 steps;

* optionally ``sh`` (N rows), ``uchar f_rest_0..(3K-1)`` channel-major like the float PLY:
  ``v = (n - 0.5) * 8`` with ``n = (q + 0.5) / 256`` (0 and 255 map to the ends, ±4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import SH_C0, SplatScene, bad, drop_nonfinite, logit_u8
from .ply import PlyElement, element_arrays

CHUNK = 256
_BOX = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y",
        "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z")
_COLOR_BOX = ("min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
_PACKED = ("packed_position", "packed_rotation", "packed_scale", "packed_color")


def is_compressed(elements: list[PlyElement]) -> bool:
    """The layout is recognised by its elements (a ``chunk`` element beside a ``vertex`` one
    with ``packed_position``), whatever the file is called."""
    names = {e.name: e for e in elements}
    return ("chunk" in names and "vertex" in names
            and any(p == "packed_position" for p, _ in names["vertex"].props))


def _unorm(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((v >> np.uint32(shift)) & np.uint32((1 << bits) - 1)).astype(np.float64) / (
        (1 << bits) - 1)


def _unpack_111011(v: np.ndarray) -> np.ndarray:
    return np.stack([_unorm(v, 21, 11), _unorm(v, 11, 10), _unorm(v, 0, 11)], axis=1)


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1.0 - t) + hi * t


def decode(data: bytes, endian: str, elements: list[PlyElement], header_len: int,
           src: str | Path) -> SplatScene:
    kinds = {e.name: dict(e.props) for e in elements}
    extra_el = set(kinds) - {"chunk", "vertex", "sh"}
    if extra_el:
        raise bad(src, f"compressed PLY has unexpected elements {', '.join(sorted(extra_el))}")
    ch, vx = kinds["chunk"], kinds["vertex"]
    has_color = all(p in ch for p in _COLOR_BOX)
    want = _BOX + (_COLOR_BOX if has_color else ())
    if set(ch) != set(want) or any(ch[p] != "f4" for p in want):
        raise bad(src, "compressed PLY chunk element must hold float min/max position and "
                       "scale (and optionally colour) properties only")
    if set(vx) != set(_PACKED) or any(vx[p] != "u4" for p in _PACKED):
        raise bad(src, "compressed PLY vertex element must hold the four uint packed_* "
                       "properties only")
    arrays = element_arrays(data, endian, elements, header_len)
    c, v = arrays["chunk"], arrays["vertex"]
    n = len(v)
    if len(c) != -(-n // CHUNK):
        raise bad(src, f"compressed PLY has {len(c)} chunks for {n} Gaussians "
                       f"(expected {-(-n // CHUNK)})")
    k = 0
    if "sh" in arrays:
        sh = arrays["sh"]
        names = [p for p, _ in next(e for e in elements if e.name == "sh").props]
        if len(names) not in (9, 24, 45) or names != [f"f_rest_{i}" for i in range(len(names))]:
            raise bad(src, "compressed PLY sh element must hold f_rest_0..f_rest_{8|23|44}")
        if any(kinds["sh"][p] != "u1" for p in names) or len(sh) != n:
            raise bad(src, "compressed PLY sh element must hold one uchar row per Gaussian")
        k = len(names) // 3
    ci = np.arange(n) // CHUNK

    def box(prefix_lo: str, prefix_hi: str, axes: str) -> tuple[np.ndarray, np.ndarray]:
        lo = np.stack([c[f"{prefix_lo}{a}"].astype(np.float64) for a in axes], axis=1)[ci]
        hi = np.stack([c[f"{prefix_hi}{a}"].astype(np.float64) for a in axes], axis=1)[ci]
        return lo, hi

    pos = _lerp(*box("min_", "max_", "xyz"), _unpack_111011(v["packed_position"]))
    scales = _lerp(*box("min_scale_", "max_scale_", "xyz"), _unpack_111011(v["packed_scale"]))

    rot = v["packed_rotation"]
    small = np.stack([_unorm(rot, 20, 10), _unorm(rot, 10, 10), _unorm(rot, 0, 10)], axis=1)
    small = (small - 0.5) * np.sqrt(2.0)
    largest = (rot >> np.uint32(30)).astype(np.int64)
    quats = np.empty((n, 4))
    # the three stored components fill the slots other than the largest, in index order
    slots = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    rows = np.arange(n)[:, None]
    quats[rows, slots] = small
    quats[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - (small * small).sum(axis=1)))

    col = v["packed_color"]
    rgb = np.stack([_unorm(col, 24, 8), _unorm(col, 16, 8), _unorm(col, 8, 8)], axis=1)
    if has_color:
        rgb = _lerp(*box("min_", "max_", "rgb"), rgb)
    alpha = (col & np.uint32(255)).astype(np.uint8)

    if k:
        q = np.stack([sh[f"f_rest_{i}"] for i in range(3 * k)], axis=1).astype(np.float64)
        nrm = np.where(q == 0, 0.0, np.where(q == 255, 1.0, (q + 0.5) / 256.0))
        sh_rest = ((nrm - 0.5) * 8.0).astype(np.float32).reshape(n, 3, k).transpose(0, 2, 1)
    else:
        sh_rest = np.zeros((n, 0, 3), np.float32)
    scene = SplatScene(
        means=pos.astype(np.float32), scales=scales.astype(np.float32),
        quats=quats.astype(np.float32), opacities=logit_u8(alpha),
        sh_dc=((rgb - 0.5) / SH_C0).astype(np.float32),
        sh_rest=np.ascontiguousarray(sh_rest))
    return drop_nonfinite(scene, src)
