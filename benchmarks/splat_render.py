"""CPU splat renderer speed: seconds per view of a scene file at a given size.

Reads the scene with ``neurocodec.codecs.splat.io.read_scene``, renders ``--views`` orbit
cameras (or the cameras of ``--cameras cams.json``), one warm-up render first (numba compiles
on first use, then caches), and prints the preprocess, raster and total seconds per view with
``--threads`` numba threads. ``-o DIR`` also writes the renders as PNG, ``--json`` the timings.

    python benchmarks/splat_render.py ../shared/data/splats/ply/biker_sh0.ply --views 8
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numba
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scene")
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("W", "H"))
    ap.add_argument("--fov", type=float, default=50.0, help="horizontal field of view, degrees")
    ap.add_argument("--cameras", help="JSON cameras (see neurocodec.codecs.splat.render)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--out", help="write the renders as PNG here")
    ap.add_argument("--json", help="write the timings here")
    args = ap.parse_args()

    from neurocodec.codecs.splat import io as splat_io
    from neurocodec.codecs.splat import render as R

    numba.set_num_threads(args.threads)
    t = time.perf_counter()
    scene = splat_io.read_scene(args.scene)
    read_s = time.perf_counter() - t
    cams = (R.cameras_from_json(args.cameras) if args.cameras
            else R.orbit_cameras(scene, args.views, *args.size, fov_deg=args.fov))
    R.render(scene, cams[0])  # compile / load the numba cache
    pre, ras, images = [], [], []
    for cam in cams:
        t0 = time.perf_counter()
        proj = R.project(scene, cam)
        t1 = time.perf_counter()
        images.append(R.rasterize(proj, cam.width, cam.height))
        t2 = time.perf_counter()
        pre.append(t1 - t0)
        ras.append(t2 - t1)
    total = np.add(pre, ras)
    print(f"{Path(args.scene).name}: {scene.n:,} Gaussians, SH degree {scene.sh_degree}, "
          f"read {read_s:.2f} s; {len(cams)} views {cams[0].width}x{cams[0].height}, "
          f"{args.threads} threads")
    print(f"  preprocess {np.mean(pre):.3f} s/view, raster {np.mean(ras):.3f} s/view, "
          f"total {np.mean(total):.3f} s/view (min {total.min():.3f}, max {total.max():.3f})")
    if args.out:
        from PIL import Image

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            Image.fromarray(R.to_uint8(img)).save(out / f"view_{i:03d}.png")
        R.cameras_to_json(cams, out / "cameras.json")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "scene": Path(args.scene).name, "gaussians": scene.n, "sh_degree": scene.sh_degree,
            "views": len(cams), "size": [cams[0].width, cams[0].height],
            "threads": args.threads, "preprocess_s": pre, "raster_s": ras,
            "s_per_view": float(np.mean(total)), "cpu": platform.processor() or platform.machine(),
        }, indent=1))


if __name__ == "__main__":
    main()
