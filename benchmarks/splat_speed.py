"""Splat coder speed: ``gsc`` encode and decode seconds per 100k Gaussians, warm, beside
the SOG and SPZ writers on the same scenes.

For every scene of ``--data``: one untimed encode + decode first (loading the compiled
kernels), then each quality of ``gsc`` encoded and decoded once, best of ``--repeat``; the
seconds per 100k Gaussians are the mean over the qualities. Beside it, in the same run, the
SOG and SPZ files of the splat bench's baselines (PlayCanvas ``splat-transform -g cpu`` when
it is installed, a whole process per call as users run it; our own writers otherwise), best
of ``--repeat``. Prints the seconds and our encode time over each writer's; ``--json`` writes
them. The issue's target is ≤ 2 s per 100k Gaussians each way. ``--hidden F`` times the
encode with hidden-Gaussian pruning (``gsc`` option ``hidden``); ``--no-writers`` skips SOG/SPZ.

    python benchmarks/splat_speed.py --data ../shared/data/splats/ply --json docs/results/splat/speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from timing import best_time

from neurocodec.codecs.container import Container
from neurocodec.codecs.registry import load_codec
from neurocodec.codecs.splat.io import read_scene
from neurocodec.eval.splat_baselines import get_splat_baseline


def measure(path: Path, codec, writers: dict, repeat: int, **options) -> dict:
    """One scene: our warm encode/decode (mean over qualities) and each writer's encode, in
    seconds per 100k Gaussians."""
    scene = read_scene(path)
    per = 1e5 / scene.n
    codec.decode(Container.from_bytes(codec.encode(scene, 0, **options)))
    enc, dec = [], []
    for q in codec.qualities:
        t, data = best_time(lambda q=q: codec.encode(scene, q, **options), repeat)
        enc.append(t)
        dec.append(best_time(lambda d=data: codec.decode(Container.from_bytes(d)), repeat)[0])
    row = {"scene": path.name, "gaussians": int(scene.n),
           "encode_s_per_100k": float(np.mean(enc)) * per,
           "decode_s_per_100k": float(np.mean(dec)) * per}
    for name, w in writers.items():
        t, _ = best_time(lambda w=w: w.encode(scene, None), repeat)
        row[f"{name}_encode_s_per_100k"] = t * per
        row[f"encode_vs_{name}"] = row["encode_s_per_100k"] / row[f"{name}_encode_s_per_100k"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/splats/ply")
    ap.add_argument("--codec", default="gsc")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--hidden", type=float, help="gsc option hidden (pruning share)")
    ap.add_argument("--no-writers", action="store_true", help="time only our coder")
    ap.add_argument("--json")
    a = ap.parse_args()
    codec = load_codec(a.codec)
    writers = {} if a.no_writers else {n: get_splat_baseline(n) for n in ("sog", "spz")}
    options = {} if a.hidden is None else {"hidden": a.hidden}
    rows = []
    for path in sorted(Path(a.data).glob("*.ply")):
        row = measure(path, codec, writers, a.repeat, **options)
        rows.append(row)
        line = (f"{path.name:24s} {row['gaussians']:8,d} G  {a.codec} encode "
                f"{row['encode_s_per_100k']:.2f} decode {row['decode_s_per_100k']:.2f} s/100k")
        for n in writers:
            line += (f";  {n.upper()} writer {row[f'{n}_encode_s_per_100k']:.2f} "
                     f"({row[f'encode_vs_{n}']:.2f}x ours/theirs)")
        print(line, flush=True)
    if a.json:
        out = {"name": f"{a.codec}-speed" + ("-hidden" if options else ""), "rows": rows,
               "options": options,
               "writers": {k: w.description for k, w in writers.items()},
               "machine": platform.processor() or platform.machine(),
               "date": time.strftime("%Y-%m-%d"), "repeat": a.repeat,
               "command": "python benchmarks/splat_speed.py"}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
