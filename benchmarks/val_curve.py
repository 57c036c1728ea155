"""A training run's learning curve against a shipped model, on the run's own validation photos:
the BD-rate (PSNR-RGB, pchip) of every validated step of ``RUN/val.csv`` against ``--model``
coded the same way (real ``.ncb`` files, :func:`neurocodec.train.validate.validate`).

    python benchmarks/val_curve.py --run ~/neurocodec-runs/hp-long --model hyperprior-vr \
        --val ~/neurocodec-runs/data/val

This is the export rule of issue 11: a run's weights ship when this improves by >= 2%.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from neurocodec.codecs.image.codec import load_weights
from neurocodec.codecs.registry import get_model_info
from neurocodec.eval.bdrate import bd_rate
from neurocodec.train.archs import get_arch
from neurocodec.train.validate import load_val_images, validate


def _curve(rows: list[dict]) -> dict:
    return {"results": {"bpp": [float(r["bpp"]) for r in rows],
                        "psnr-rgb": [float(r["psnr"]) for r in rows]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    info = get_model_info(a.model)
    model = load_weights(info.weights_path)
    base = validate(model, get_arch(info.codec), load_val_images(a.val),
                    list(range(model.num_qualities)))
    runs = list(csv.DictReader(open(a.run / "val.csv")))
    for step in sorted({int(r["step"]) for r in runs}):
        d = bd_rate(_curve(base), _curve([r for r in runs if int(r["step"]) == step]))
        print(f"step {step:6d}: BD-rate vs {a.model} {d['bd_rate']:+.2f}% "
              f"(overlap {d['overlap']:.2f})")


if __name__ == "__main__":
    main()
