"""A 3D Gaussian splat scene in the reference 3DGS parametrisation (what its PLY stores).

Every reader returns, and every writer and coder takes, a :class:`SplatScene`. Arrays are
numpy float32, one row per Gaussian (``N`` rows):

* ``means``     ``[N, 3]``  positions (x, y, z)
* ``scales``    ``[N, 3]``  log standard deviations along the Gaussian's axes
* ``quats``     ``[N, 4]``  rotation quaternions (w, x, y, z) as stored: not necessarily unit
* ``opacities`` ``[N]``     opacity logits (pre-sigmoid)
* ``sh_dc``     ``[N, 3]``  degree-0 spherical-harmonic coefficients (RGB)
* ``sh_rest``   ``[N, K, 3]`` higher-degree coefficients, ``K = (degree + 1)^2 - 1``
  (0, 3, 8 or 15), coefficient-major: ``sh_rest[:, k, c]`` is coefficient ``k+1`` of channel
  ``c`` (the PLY stores them channel-major as ``f_rest_{c*K + k}``)

``extra`` keeps any other per-vertex property of a PLY (normals, ...) by name, in file order,
so a PLY round trip is bit-exact; codecs ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurocodec.errors import InputError

SH_COEFFS = {0: 0, 1: 3, 2: 8, 3: 15}  # degree -> K
SH_C0 = 0.28209479177387814  # the degree-0 SH basis constant: colour = 0.5 + SH_C0 * sh_dc


@dataclass
class SplatScene:
    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    sh_dc: np.ndarray
    sh_rest: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.means)
        want = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,),
                "sh_dc": (n, 3)}
        for name, shape in want.items():
            a = getattr(self, name)
            if a.shape != shape:
                raise InputError(f"splat scene: {name} has shape {a.shape}, expected {shape}")
        if (self.sh_rest.ndim != 3 or self.sh_rest.shape[0] != n
                or self.sh_rest.shape[2] != 3
                or self.sh_rest.shape[1] not in SH_COEFFS.values()):
            raise InputError(f"splat scene: sh_rest has shape {self.sh_rest.shape}, expected "
                             f"({n}, K, 3) with K in 0, 3, 8, 15")
        for k, a in self.extra.items():
            if len(a) != n:
                raise InputError(f"splat scene: property {k} has {len(a)} rows, not {n}")

    @property
    def n(self) -> int:
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        return {v: k for k, v in SH_COEFFS.items()}[self.sh_rest.shape[1]]

    def subset(self, keep: np.ndarray) -> SplatScene:
        """The Gaussians selected by a boolean mask or an index array, in that order."""
        return SplatScene(self.means[keep], self.scales[keep], self.quats[keep],
                          self.opacities[keep], self.sh_dc[keep], self.sh_rest[keep],
                          {k: v[keep] for k, v in self.extra.items()})

    def finite(self) -> np.ndarray:
        """``bool [N]``: Gaussians whose attributes are all finite (NaN/Inf rows are dropped by
        readers, with a warning, before anything codes them)."""
        ok = np.ones(self.n, bool)
        for a in (self.means, self.scales, self.quats, self.opacities, self.sh_dc, self.sh_rest):
            # reduce over every axis but the first (reshape(n, -1) fails on an empty scene)
            ok &= np.isfinite(a).all(axis=tuple(range(1, a.ndim)))
        return ok
