"""What encoder-side latent refinement (``neurocodec encode --refine STEPS``) buys and costs.

Every image is encoded at every quality of the model twice, plainly and with ``--refine
STEPS``; both files are decoded by the unchanged decoder and measured (real file sizes, PSNR
and MS-SSIM of the decoded 8-bit images). Prints the BD-rate of refined against plain files
and the encode-time ratio; ``--out`` writes the refined curve as a CompressAI-schema JSON (with
the plain curve of the same images, the BD figures and per-image rows beside it).

    python benchmarks/refine.py --data ../shared/data/images/kodak --steps 100 \\
        --out docs/results/kodak/hyperprior-vr-refine100.json

Both encodes run on ``--threads`` torch threads (default 1: on a shared machine, one thread
is the fastest and the steadiest).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from neurocodec.codecs.container import Container
from neurocodec.codecs.image import DEFAULT_MODEL
from neurocodec.codecs.image.io import read_image
from neurocodec.codecs.image.refine import RefineConfig
from neurocodec.codecs.registry import load_codec
from neurocodec.eval.bdrate import bd_rate
from neurocodec.eval.environment import environment
from neurocodec.eval.metrics import bpp, ms_ssim, psnr

FIELDS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")


def measure(codec, img: np.ndarray, q: int, refine: RefineConfig | None) -> dict:
    """Encode, decode and measure one image: bpp of the whole file, metrics, times (s)."""
    t = time.perf_counter()
    data = codec.encode(img, q, refine=refine)
    enc = time.perf_counter() - t
    t = time.perf_counter()
    rec = codec.decode(Container.from_bytes(data))
    dec = time.perf_counter() - t
    return {"bytes": len(data), "bpp": bpp(len(data), img.shape), "psnr-rgb": psnr(img, rec),
            "ms-ssim-rgb": ms_ssim(img, rec), "encoding_time": enc, "decoding_time": dec}


def curve(rows: list[dict], qualities: list[int]) -> dict[str, list[float]]:
    """Per-quality means over the images, CompressAI's ``results`` layout."""
    return {f: [float(np.mean([r[f] for r in rows if r["quality"] == q])) for q in qualities]
            for f in FIELDS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/images/kodak", help="folder of images")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="default: the default image model")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=RefineConfig(steps=1).lr)
    ap.add_argument("--qualities", type=int, nargs="*", help="default: all of the model's")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the refined curve (CompressAI schema) here")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    paths = sorted(p for p in Path(a.data).iterdir() if p.suffix.lower() == ".png")
    paths = paths[: a.limit] if a.limit else paths
    if not paths:
        print(f"{a.data}: no .png images", file=sys.stderr)
        return 1
    codec = load_codec(a.model)
    qualities = a.qualities or codec.qualities
    cfg = RefineConfig(steps=a.steps, lr=a.lr)
    rows: dict[str, list[dict]] = {"plain": [], "refined": []}
    for p in paths:
        img, _ = read_image(p)
        for q in qualities:
            for kind, refine in (("plain", None), ("refined", cfg)):
                rows[kind].append({"image": p.name, "quality": q,
                                   **measure(codec, img, q, refine)})
            pl, rf = rows["plain"][-1], rows["refined"][-1]
            print(f"{p.name} q={q}: {pl['bpp']:.4f} -> {rf['bpp']:.4f} bpp, "
                  f"{pl['psnr-rgb']:.2f} -> {rf['psnr-rgb']:.2f} dB, "
                  f"{pl['encoding_time']:.2f} -> {rf['encoding_time']:.2f} s", flush=True)

    plain, refined = (curve(rows[k], qualities) for k in ("plain", "refined"))
    anchor, test = {"results": plain}, {"results": refined}
    bd = {m: bd_rate(anchor, test, metric=m) for m in ("psnr-rgb", "ms-ssim-rgb")}
    ratio = float(np.sum(refined["encoding_time"]) / np.sum(plain["encoding_time"]))
    for m, r in bd.items():
        print(f"BD-rate ({m}) of --refine {a.steps} vs plain: {r['bd_rate']:+.2f}% "
              f"(BD-quality {r['bd_psnr']:+.3f} dB{', ' + r['warning'] if r['warning'] else ''})")
    print(f"encode time: {ratio:.1f}x plain ({np.mean(plain['encoding_time']):.2f} s -> "
          f"{np.mean(refined['encoding_time']):.2f} s per image, {a.threads} thread(s)); "
          f"decode time unchanged: {np.mean(plain['decoding_time']):.2f} / "
          f"{np.mean(refined['decoding_time']):.2f} s")
    if a.out:
        n = len(paths)
        doc = {"name": f"{a.model}-refine{a.steps}",
               "description": (f"neurocodec {a.model}, latents refined by {a.steps} SGA steps "
                               f"(lr {a.lr}) before coding; {n} images of {a.data}"
                               f"{' (--limit: not the full set)' if a.limit else ''}; sizes "
                               f"are whole .ncb files, decoded by the unchanged decoder"),
               "results": refined, "qualities": qualities, "images": n,
               "refine": {"steps": a.steps, "lr": a.lr, "tau_start": cfg.tau_start,
                          "tau_end": cfg.tau_end, "seed": cfg.seed, "threads": a.threads},
               "plain": {"name": a.model, "results": plain},
               "bd_rate_vs_plain": bd, "encoding_time_ratio": ratio,
               "per_image": [{**r, "refined": k == "refined"} for k in rows for r in rows[k]],
               "environment": environment()}
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
