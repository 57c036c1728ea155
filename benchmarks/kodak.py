"""Rate–distortion of our shipped image models and classical baselines on an image folder.

Every point is a real file: our models' sizes are whole .ncb containers, the baselines' their
codec's bytes. Writes one CompressAI-schema JSON per codec and prints BD-rates (pchip)
against each anchor: our measured JPEG 4:2:0 by default, plus any published curves.

    python benchmarks/kodak.py --data ../shared/data/images/kodak \
        --codecs hyperprior-vr,jpeg-420,jpeg-444,webp,jpeg2000 --out docs/results/kodak \
        --extra ../shared/data/anchors/kodak/compressai_vtm.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from neurocodec.codecs.container import Container
from neurocodec.codecs.image.io import read_image
from neurocodec.datasets.images import list_images
from neurocodec.eval.baselines import BASELINES, get_baseline
from neurocodec.eval.bdrate import bd_rate, load_results
from neurocodec.eval.metrics import bpp, ms_ssim, psnr


def evaluate(name: str, images: list[Path]) -> dict:
    if name in BASELINES:
        b = get_baseline(name)
        qualities, desc = b.qualities, b.description
        enc = b.encode
        dec = b.decode
    else:
        from neurocodec.codecs.registry import get_model_info, load_codec

        codec = load_codec(name)
        info = get_model_info(name)
        qualities = codec.qualities
        desc = (f"neurocodec {name} ({info.params} params, {info.training_hours:.2f} h CPU "
                f"training); sizes are whole .ncb files")
        enc = codec.encode

        def dec(data):
            return codec.decode(Container.from_bytes(data))

    loaded = [(p, read_image(p)[0]) for p in images]
    cols = {k: [] for k in ["bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"]}
    per_image = []
    for q in qualities:
        rows = []
        for p, img in loaded:
            t0 = time.perf_counter()
            data = enc(img, q)
            t1 = time.perf_counter()
            rec = dec(data)
            t2 = time.perf_counter()
            rows.append([bpp(len(data), img.shape), psnr(img, rec), ms_ssim(img, rec), t1 - t0,
                         t2 - t1])
            per_image.append({"image": p.name, "quality": q, "bytes": len(data),
                              "psnr-rgb": rows[-1][1], "ms-ssim-rgb": rows[-1][2],
                              "encoding_time": t1 - t0, "decoding_time": t2 - t1})
        m = np.mean(rows, axis=0)
        for k, v in zip(cols, m):
            cols[k].append(float(v))
        print(f"  {name} q={q}: {m[0]:.4f} bpp, {m[1]:.2f} dB, MS-SSIM {m[2]:.4f}, "
              f"enc {m[3]:.3f} s, dec {m[4]:.3f} s", flush=True)
    return {"name": name, "description": desc, "results": cols,
            "qualities": list(qualities), "per_image": per_image,
            "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                            "cpu": platform.processor() or platform.machine(),
                            "date": time.strftime("%Y-%m-%d")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--codecs", default="hyperprior-vr,jpeg-420")
    ap.add_argument("--anchor", default="jpeg-420")
    ap.add_argument("--out", default="docs/results/kodak")
    ap.add_argument("--extra", nargs="*", default=[], help="published results JSON files")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images")
    ap.add_argument("--reuse", action="store_true", help="reuse existing result files")
    a = ap.parse_args()
    images = list_images(a.data)[: a.limit or None]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in a.codecs.split(","):
        path = out / f"{name}.json"
        if a.reuse and path.exists():
            results[name] = load_results(path)
            continue
        print(f"{name}: {len(images)} images", flush=True)
        results[name] = evaluate(name, images)
        path.write_text(json.dumps(results[name], indent=1))
    anchors = {a.anchor: results[a.anchor]} if a.anchor in results else {}
    for e in a.extra:
        r = load_results(e)
        anchors[f"{r['name']} (published)"] = r
    print(f"\nBD-rate (pchip, PSNR-RGB) on {len(images)} images; negative = fewer bits")
    print(f"{'codec':16s}" + "".join(f"{k:>26s}" for k in anchors))
    for name, r in results.items():
        cells = []
        for an, ar in anchors.items():
            if an == name:
                cells.append(f"{'anchor':>26s}")
                continue
            d = bd_rate(ar, r)
            cells.append(f"{d['bd_rate']:+9.2f}% ({d['bd_psnr']:+.2f} dB, ov {d['overlap']:.2f})")
        print(f"{name:16s}" + "".join(f"{c:>26s}" for c in cells))


if __name__ == "__main__":
    main()
