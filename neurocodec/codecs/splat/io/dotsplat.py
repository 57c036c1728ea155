"""antimatter15 ``.splat`` (the WebGL viewer's format): no header, 32 bytes per Gaussian::

    float32 x, y, z | float32 sx, sy, sz | uint8 r, g, b, a | uint8 qw, qx, qy, qz

* scales are linear standard deviations (``exp`` of the PLY's log-scales);
* ``rgb = clip((0.5 + SH_C0 * f_dc) * 255)`` and ``a = clip(sigmoid(opacity) * 255)`` — 1/255
  steps; higher SH bands are not stored;
* the quaternion is normalised and stored as ``clip(q * 128 + 128)`` (steps of 1/128).

The Gaussian count is the file size / 32: a size that is not a multiple of 32 is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocodec.codecs.container import write_atomic

from ._common import (
    SH_C0,
    SplatScene,
    bad,
    drop_nonfinite,
    load,
    logit_u8,
    normalize_quats,
    require_finite,
    sigmoid,
)

ROW = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])


def decode_splat(data: bytes, src: str | Path = "<splat>") -> SplatScene:
    if len(data) % ROW.itemsize:
        raise bad(src, f".splat size {len(data)} is not a multiple of {ROW.itemsize} bytes "
                       f"(truncated or not a .splat file)")
    r = np.frombuffer(data, ROW)
    n = len(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a zero or negative scale has no log: it becomes -inf/NaN and the row is dropped
        scales = np.log(r["scale"].astype(np.float64)).astype(np.float32)
    scene = SplatScene(
        means=r["pos"].astype(np.float32), scales=scales,
        quats=((r["rot"].astype(np.float32) - 128.0) / 128.0),
        opacities=logit_u8(r["rgba"][:, 3]),
        sh_dc=((r["rgba"][:, :3].astype(np.float32) / 255.0 - 0.5) / SH_C0).astype(np.float32),
        sh_rest=np.zeros((n, 0, 3), np.float32))
    return drop_nonfinite(scene, src)


def read_splat(path: str | Path) -> SplatScene:
    return decode_splat(load(path), path)


def encode_splat(scene: SplatScene) -> bytes:
    """``.splat`` bytes (drops SH bands above 0)."""
    require_finite(scene, ".splat")
    r = np.zeros(scene.n, ROW)
    r["pos"] = scene.means
    r["scale"] = np.exp(scene.scales.astype(np.float64))
    rgb = (0.5 + SH_C0 * scene.sh_dc.astype(np.float64)) * 255.0
    r["rgba"][:, :3] = np.clip(np.round(rgb), 0, 255)
    r["rgba"][:, 3] = np.clip(np.round(sigmoid(scene.opacities) * 255.0), 0, 255)
    r["rot"] = np.clip(np.round(normalize_quats(scene.quats) * 128.0 + 128.0), 0, 255)
    return r.tobytes()


def write_splat(path: str | Path, scene: SplatScene, force: bool = False) -> None:
    write_atomic(path, encode_splat(scene), force=force)
