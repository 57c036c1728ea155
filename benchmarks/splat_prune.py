"""Hidden-Gaussian pruning of the splat coder: for each scene and pruning share ``F``, how
many Gaussians go, the render PSNR of the pruned scene before quantization, and the bytes and
render PSNR of ``gsc`` files at the given qualities (the bench's 8 orbit views, 256x256).

    python benchmarks/splat_prune.py ../shared/data/splats/ply/donut_sh0.ply --shares 0,1e-4,1e-3,3e-3 -q 4,5
"""

from __future__ import annotations

import argparse

from neurocodec.codecs.container import Container
from neurocodec.codecs.splat import coder as cd
from neurocodec.codecs.splat import render as R
from neurocodec.codecs.splat.io import read_scene
from neurocodec.eval.bench import SPLAT_SIZE, SPLAT_VIEWS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenes", nargs="+")
    ap.add_argument("--shares", default="0,1e-4,1e-3")
    ap.add_argument("-q", "--qualities", default="4")
    a = ap.parse_args()
    coder = cd.SplatCoder()
    for path in a.scenes:
        s = read_scene(path)
        cams = R.orbit_cameras(s, SPLAT_VIEWS, SPLAT_SIZE, SPLAT_SIZE)
        ref = R.render_views(s, cams)
        for share in (float(v) for v in a.shares.split(",")):
            drop = cd.hidden_mask(s, share)
            alone = R.render_quality(s, s.subset(~drop), cams, reference_views=ref)["psnr"]
            for q in (int(v) for v in a.qualities.split(",")):
                data = coder.encode(s, q, hidden=share)
                d = coder.decode(Container.from_bytes(data))
                p = R.render_quality(s, d, cams, reference_views=ref)["psnr"]
                print(f"{path.split('/')[-1]} F={share:g}: pruned {drop.mean():.3f} "
                      f"(alone {alone:.2f} dB)  q{q} {len(data):,} bytes {p:.2f} dB", flush=True)


if __name__ == "__main__":
    main()
