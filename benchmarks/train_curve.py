"""Loss-curve A/B of trainer variants (fp32 against bf16 autocast + channels_last by default):
the same initial weights, the same batches, qualities and noise draws, stepped side by side,
then each trained model coded to real files on held-out photos.

    python benchmarks/train_curve.py --data ~/neurocodec-runs/data/train --val ~/neurocodec-runs/data/val \\
        --steps 500 --threads 1 --json docs/results/train_curve.json

Prints, per window of ``--window`` steps, each variant's mean loss and the paired relative
difference to the first variant with its standard error (per-step differences, same batch), and
at the end the BD-rate of each variant's real files against the first's (``--val``). A variant
keeps the curve when its differences are no larger than those of the first variant run with
other noise draws (``--variants fp32,bf16+channels_last,fp32@1``: same batches, other noise).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from train_speed import ARCHS, VARIANTS, Runner, cpu_flags

from neurocodec.datasets.images import CropSampler, StepBatches
from neurocodec.eval.bdrate import bd_rate
from neurocodec.train.archs import build_model, get_arch
from neurocodec.train.config import TrainConfig
from neurocodec.train.validate import load_val_images, validate


def windows(losses: dict[str, list[float]], ref: str, width: int) -> list[dict]:
    """Per window: each variant's mean loss and the paired relative difference to ``ref``."""
    rows = []
    n = len(losses[ref])
    for lo in range(0, n, width):
        r = np.asarray(losses[ref][lo:lo + width])
        row: dict = {"steps": [lo, lo + len(r)], ref: float(r.mean())}
        for v, ls in losses.items():
            if v == ref:
                continue
            d = (np.asarray(ls[lo:lo + width]) - r) / r
            row[v] = float(np.mean(ls[lo:lo + width]))
            row[f"{v}_rel"] = float(d.mean())
            row[f"{v}_rel_se"] = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
        rows.append(row)
    return rows


def _seed(variant: str) -> int:
    """``"fp32@1"``: fp32 with other noise draws — the run-to-run noise a difference is
    judged against."""
    return int(variant.split("@")[1]) if "@" in variant else 0


def _schema(curve: list[tuple[float, float]]) -> dict:
    return {"results": {"bpp": [b for b, _ in curve], "psnr-rgb": [p for _, p in curve]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", help="held-out photos: code each trained variant to real files")
    ap.add_argument("--val-limit", type=int, default=4)
    ap.add_argument("--val-qualities", default="0,1,2,3,4,5")
    ap.add_argument("--archs", default="hyperprior-vr,mlic-vr")
    ap.add_argument("--variants", default="fp32,bf16+channels_last")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    variants = a.variants.split(",")
    ref = variants[0]
    batches = StepBatches(CropSampler(a.data, crop=a.crop), a.batch, seed=0)
    val = load_val_images(a.val)[: a.val_limit] if a.val else []
    val_q = [int(v) for v in a.val_qualities.split(",")]
    env = cpu_flags()
    print(f"CPU {env['cpu']}; avx512_bf16={env['bf16']} amx={env['amx']}; {a.threads} threads; "
          f"batch {a.batch} x {a.crop}^2; {a.steps} steps side by side")
    report = {"environment": {**env, "threads": a.threads, "torch": torch.__version__,
                              "batch": a.batch, "crop": a.crop, "steps": a.steps},
              "results": {}}
    for arch in a.archs.split(","):
        base = TrainConfig(data=a.data, out="", **ARCHS[arch])
        torch.manual_seed(0)
        init = copy.deepcopy(build_model(base).state_dict())
        runners = {v: Runner(replace(base, **VARIANTS[v.split("@")[0]]), init, False)
                   for v in variants}
        losses: dict[str, list[float]] = {v: [] for v in variants}
        for step in range(a.steps):
            x = batches[step]
            q = torch.randint(0, 6, (a.batch,), generator=torch.Generator().manual_seed(step))
            for v, r in runners.items():
                # the same noise draws in every variant, unless it names other ones (@seed)
                torch.manual_seed(10_000 + step + 1_000_000 * _seed(v))
                r.step(x, q)
                losses[v].append(r.last["loss"].item())
            if (step + 1) % a.window == 0:
                w = windows({v: ls[-a.window:] for v, ls in losses.items()}, ref, a.window)[0]
                print(f"  {arch} steps {step + 1 - a.window}-{step + 1}: " + "  ".join(
                    f"{v} {w[v]:.4f}" + (f" ({w[v + '_rel']:+.2%} ± {w[v + '_rel_se']:.2%})"
                                         if v != ref else "") for v in variants), flush=True)
        res: dict = {"windows": windows(losses, ref, a.window), "losses": losses}
        if val:
            curves = {}
            for v, r in runners.items():
                rows = validate(r.model, get_arch(base.arch), val, val_q)
                curves[v] = [(row["bpp"], row["psnr"]) for row in rows]
            res["val"] = {v: [{"bpp": b, "psnr": p} for b, p in c] for v, c in curves.items()}
            for v in variants[1:]:
                bd = bd_rate(_schema(curves[ref]), _schema(curves[v]))
                res["val"][f"{v}_vs_{ref}"] = bd
                print(f"  {arch} held-out real files ({len(val)} photos, q {val_q}): {v} "
                      f"BD-rate {bd['bd_rate']:+.2f}% vs {ref}; " + "; ".join(
                          f"{u} " + ", ".join(f"{b:.3f}/{p:.2f}" for b, p in c)
                          for u, c in curves.items()), flush=True)
        report["results"][arch] = res
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
