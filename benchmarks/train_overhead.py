"""What the trainer costs beyond its steps: the real ``train()`` loop (crops, logging every 10
steps, checkpoints every 100) against the bare step on batches already in memory, and one
validation pass with the real entropy coder, as a share of the steps between validations
(``--val-every``, spread further by the trainer's ``val_share`` rule where one costs more).

    python benchmarks/train_overhead.py --data ~/neurocodec-runs/data/train --val ~/neurocodec-runs/data/val \\
        --steps 200 --threads 1 --json docs/results/train_overhead.json

Issue 11's bound: data loading, validation and logging cost at most 10% of the training time.
The bare steps and the trainer's steps alternate in chunks of ``--chunk`` so that other load
on the machine touches both alike.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from train_speed import ARCHS, Runner, cpu_flags

from neurocodec.datasets.images import CropSampler, StepBatches
from neurocodec.determinism import mixed_seed
from neurocodec.train.archs import build_model, get_arch
from neurocodec.train.config import TrainConfig
from neurocodec.train.trainer import train
from neurocodec.train.validate import load_val_images, validate


def trainer_seconds(cfg: TrainConfig, chunk: int, upto: int) -> float:
    """Training-clock seconds of the run in ``cfg.out`` from its step ``upto - chunk`` to
    ``upto`` (the trainer resumes its own checkpoint; the clock excludes validation)."""
    ckpt = Path(cfg.out) / "checkpoint.pt"
    before = torch.load(ckpt, weights_only=True)["elapsed"] if ckpt.exists() else 0.0
    train(replace(cfg, stop_at=upto))
    return torch.load(ckpt, weights_only=True)["elapsed"] - before


def bare_seconds(bare: Runner, batches: StepBatches, seed: int, steps: range) -> float:
    """Seconds of ``bare``'s steps alone on the batches, qualities and noise the trainer draws
    at ``steps`` (the batches are made before the clock starts)."""
    xs, t = [batches[i] for i in steps], 0.0
    for i, x in zip(steps, xs):
        torch.manual_seed(mixed_seed(seed, 0, i))
        t += bare.step(x, torch.randint(0, bare.model.num_qualities, (x.shape[0],)))
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", required=True, help="held-out photos, as a run validates on them")
    ap.add_argument("--archs", default="hyperprior-vr,mlic-vr")
    ap.add_argument("--steps", type=int, default=200, help="steps of each kind")
    ap.add_argument("--chunk", type=int, default=100, help="steps per alternation (and per checkpoint)")
    ap.add_argument("--val-every", type=int, default=TrainConfig.val_every,
                    help="the runs' validation interval")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    val = load_val_images(a.val)
    env = cpu_flags()
    print(f"CPU {env['cpu']}; {a.threads} threads; batch {a.batch} x {a.crop}^2; "
          f"{a.steps} steps of each kind in chunks of {a.chunk}; {len(val)} validation photos")
    report = {"environment": {**env, "threads": a.threads, "torch": torch.__version__,
                              "batch": a.batch, "crop": a.crop, "steps": a.steps,
                              "val_photos": len(val), "val_every": a.val_every},
              "results": {}}
    sampler = CropSampler(a.data, crop=a.crop)
    for arch in a.archs.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(data=a.data, out=tmp, **ARCHS[arch], batch=a.batch, crop=a.crop,
                              threads=a.threads, max_steps=a.steps, ckpt_every=a.chunk,
                              log_every=10, progress="off", tensorboard=False)
            torch.manual_seed(cfg.seed)
            bare = Runner(cfg, copy.deepcopy(build_model(cfg).state_dict()), False)
            # The bare steps see the trainer's own batches, qualities and noise (step speed
            # depends on the content: noise inputs are 1.6x slower than photos).
            batches = StepBatches(sampler, a.batch, seed=cfg.seed)
            bare_seconds(bare, batches, cfg.seed, range(a.steps, a.steps + 2))  # warm-up
            t_bare = t_loop = 0.0
            for upto in range(a.chunk, a.steps + 1, a.chunk):
                t_bare += bare_seconds(bare, batches, cfg.seed, range(upto - a.chunk, upto))
                t_loop += trainer_seconds(cfg, a.chunk, upto)
            model = torch.load(Path(tmp) / "checkpoint.pt", weights_only=True)
            net = build_model(cfg)
            net.load_state_dict(model["model"])
            t = time.perf_counter()
            validate(net, get_arch(cfg.arch), val, list(range(net.num_qualities)))
            t_val = time.perf_counter() - t
        step = t_bare / a.steps
        loop_over = t_loop / t_bare - 1
        val_over = t_val / (a.val_every * step)
        # The trainer skips a due validation while the last one cost more than val_share of
        # the training since it: validations come every `every` steps.
        every = a.val_every * max(1, math.ceil(val_over / cfg.val_share)) if cfg.val_share else a.val_every
        run_over = t_val / (every * step)
        row = {"bare_step_s": step, "trainer_step_s": t_loop / a.steps,
               "loop_overhead": loop_over, "validation_s": t_val,
               "validation_overhead_at_val_every": val_over, "val_share": cfg.val_share,
               "validation_every": every, "validation_overhead": run_over,
               "total_overhead": loop_over + run_over}
        report["results"][arch] = row
        print(f"  {arch:14s} bare {step:.3f} s/step, trainer {t_loop / a.steps:.3f} s/step "
              f"(crops, logs, checkpoints {loop_over:+.1%}); one validation {t_val:.1f} s = "
              f"{val_over:.1%} of {a.val_every} steps; with val_share {cfg.val_share:g} one "
              f"every {every} steps = {run_over:.1%}; total {loop_over + run_over:+.1%}",
              flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
