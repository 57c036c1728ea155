"""HNeRV/NeRV on a clip: fit minutes, file size against HNeRV's own Huffman estimate of the
same quantized model, RGB/YUV PSNR and decode frames/s, one point per parameter budget.

    python benchmarks/video_inr.py --clip bunny_320x180.y4m --codec hnerv \
        --params 100k,200k,400k --epochs 60 --out docs/results/video/bunny-320x180/hnerv.json

HNeRV's public code never writes a file: it estimates the size as the Huffman code length of
the quantized values plus 16 bits per quantization parameter. Here that estimate is computed on
the very symbols our file holds (one Huffman code over all weights, one over all embeddings, as
HNeRV does, and per tensor; the smaller is reported) beside the real file's bytes.
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch


def huffman_bits(values: np.ndarray) -> int:
    """Bits of ``values`` under the Huffman code of their own frequencies (table not counted)."""
    counts = Counter(np.asarray(values).ravel().tolist())
    if len(counts) <= 1:
        return int(sum(counts.values()))  # one symbol: 1 bit each, as a Huffman coder would
    heap = [(c, i, 0) for i, c in enumerate(counts.values())]
    heapq.heapify(heap)
    total, nxt = 0, len(heap)
    while len(heap) > 1:  # each merge adds its weight once per level below it
        a, _, _ = heapq.heappop(heap)
        b, _, _ = heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, (a + b, nxt, 0))
        nxt += 1
    return int(total)


def huffman_estimate(c, codec) -> dict:
    """HNeRV's size estimate (bytes) for the quantized symbols of container ``c``."""
    from neurocodec.codecs.limits import DEFAULT_LIMITS
    from neurocodec.codecs.video.codec import unpack_symbols
    from neurocodec.codecs.video.models import VideoINR

    inr = codec.check(c, DEFAULT_LIMITS)
    with torch.device("meta"):
        model = VideoINR(inr, encoder=False)
    tensors, embed, steps = unpack_symbols(model, c.sections)
    n_steps = sum(len(s) for s in steps)
    weights = np.concatenate([t.ravel() for t in tensors])
    global_bits = huffman_bits(weights) + (huffman_bits(embed) if embed is not None else 0)
    per_tensor = sum(huffman_bits(t) for t in tensors) + (
        huffman_bits(embed) if embed is not None else 0)
    side = 16 * n_steps
    return {"huffman_global_bytes": (global_bits + side) / 8,
            "huffman_per_tensor_bytes": (per_tensor + side) / 8}


def main() -> None:
    from neurocodec.codecs.container import Container
    from neurocodec.codecs.video.codec import INRCodec, parse_params
    from neurocodec.datasets.video import read_clip
    from neurocodec.eval.metrics import video_metrics

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", required=True)
    p.add_argument("--codec", default="hnerv", choices=["hnerv", "nerv"])
    p.add_argument("--params", default="100k,200k,400k")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--frames", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prune", type=float, default=0.0)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--runs", default="", help="keep each fit's run folder under this folder")
    p.add_argument("--out", help="CompressAI-schema JSON to write")
    a = p.parse_args()
    clip = read_clip(a.clip, frames=a.frames)
    t, h, w, _ = clip.shape
    codec = INRCodec(a.codec)
    rows = []
    for budget in a.params.split(","):
        n = parse_params(budget)
        run_dir = str(Path(a.runs) / f"{a.codec}-{budget}") if a.runs else None
        t0 = time.time()
        data = codec.encode(clip, 2, params=n, epochs=a.epochs, threads=a.threads,
                            prune=a.prune, run_dir=run_dir, progress="off",
                            precision=a.precision, channels_last=a.channels_last)
        fit_min = (time.time() - t0) / 60
        c = Container.from_bytes(data)
        torch.set_num_threads(a.threads)
        t0 = time.time()
        rec = codec.decode(c)
        dec = time.time() - t0
        m = video_metrics(clip, rec)
        est = huffman_estimate(c, codec)
        row = {"params": n, "stored": c.meta["inr"]["params"], "bytes": len(data),
               "bpp": 8 * len(data) / (t * h * w), **m, "fit_minutes": fit_min,
               "decode_fps": t / dec, "encoding_time": fit_min * 60, "decoding_time": dec,
               **est, "file_vs_huffman": len(data) / min(est.values()),
               # the entropy-coded payload alone (no container header: magic, JSON metadata)
               "payload_bytes": sum(len(x) for x in c.sections),
               "payload_vs_huffman": sum(len(x) for x in c.sections) / min(est.values())}
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                          for k, v in row.items()}), flush=True)
    if a.out:
        keys = ("bpp", "psnr-rgb", "psnr-y", "psnr-yuv", "ms-ssim-rgb", "encoding_time",
                "decoding_time")
        res = {"name": a.codec, "description": f"neurocodec {a.codec}, {a.epochs} epochs, "
               f"{t} frames {w}x{h}, {a.precision} fit, rANS-coded files",
               "results": {k: [r[k] for r in rows] for k in keys if k in rows[0]},
               "points": rows, "clip": str(a.clip), "epochs": a.epochs,
               "precision": a.precision, "channels_last": a.channels_last}
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
