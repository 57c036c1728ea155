"""How much render error each splat attribute's quantization step costs (the ratios behind
``neurocodec.codecs.splat.coder.BASE_STEPS``).

For each scene: quantize ONE attribute at a probe step (every other attribute at a negligible
step), render 6 orbit views at 256x256, and report the render MSE per squared step ``w_a``.
At high rate the allocation that buys the same render error per bit in every attribute is
``step_a ~ sqrt(n_a / w_a)`` (``n_a`` scalars per Gaussian); printed normalised to colour.

    python benchmarks/splat_calibrate.py /work/shared/data/splats/ply/donut_sh0.ply ...
"""

from __future__ import annotations

import sys
from dataclasses import asdict, replace

import numpy as np

from neurocodec.codecs.container import Container
from neurocodec.codecs.splat.coder import SplatCoder, Steps
from neurocodec.codecs.splat.io import read_scene
from neurocodec.codecs.splat.render import orbit_cameras, render_quality, render_views

TINY = Steps(scale=1e-4, pos=1e-4, rot=1e-5, alpha=1e-5, dc=1e-5, rest=1e-5)
PROBE = Steps(scale=0.05, pos=0.25, rot=0.02, alpha=0.02, dc=0.04, rest=0.1)
N_SCALARS = {"scale": 3, "pos": 3, "rot": 3, "alpha": 1, "dc": 3, "rest": 1}


def main(paths: list[str]) -> None:
    coder = SplatCoder()
    allw = {}
    for p in paths:
        s = read_scene(p)
        cams = orbit_cameras(s, 6, 256, 256)
        ref = render_views(s, cams)
        base = render_quality(s, coder.decode(Container.from_bytes(coder.encode(
            s, 0, steps=TINY))), cams, reference_views=ref)["psnr"]
        attrs = [a for a in N_SCALARS if a != "rest" or s.sh_degree]
        row = {}
        for a in attrs:
            st = replace(TINY, **{a: asdict(PROBE)[a]})
            d = coder.decode(Container.from_bytes(coder.encode(s, 0, steps=st)))
            psnr = render_quality(s, d, cams, reference_views=ref)["psnr"]
            mse = 10 ** (-psnr / 10) - 10 ** (-base / 10)
            row[a] = max(mse, 1e-12) / asdict(PROBE)[a] ** 2
            print(f"{p.split('/')[-1]:24s} {a:6s} probe {asdict(PROBE)[a]:.3g}: "
                  f"{psnr:.2f} dB (tiny steps: {base:.2f}) w={row[a]:.3e}", flush=True)
        ideal = {a: np.sqrt(N_SCALARS[a] / row[a]) for a in row}
        print("  step ratios (dc = 1):", {a: round(v / ideal["dc"], 3) for a, v in ideal.items()})
        for a, v in row.items():
            allw.setdefault(a, []).append(v)
    gm = {a: float(np.exp(np.mean(np.log(v)))) for a, v in allw.items()}
    ideal = {a: np.sqrt(N_SCALARS[a] / w) for a, w in gm.items()}
    print("geometric mean over scenes, step ratios (dc = 1):",
          {a: round(v / ideal["dc"], 3) for a, v in ideal.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
