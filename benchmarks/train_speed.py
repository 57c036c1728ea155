"""Training-step throughput of the shipped architectures under fp32 / channels_last / bf16
autocast / torch.compile, interleaved in one run on real crops, as pixels per second of a full
trainer step (forward, backward, both Adam steps) and as a ratio to fp32.

    python benchmarks/train_speed.py --data ../shared/data/images/train --json docs/results/train_speed.json

Every variant starts from the same initial weights and sees the same batches; the best of
``--repeat`` interleaved rounds is kept. Also prints the forward pass's bpp and PSNR under each
variant against fp32 on one batch (the loss must not change), and the CPU (lscpu model name,
bf16/AMX flags), because which variant wins depends on it.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from neurocodec.codecs.rd import bits_per_pixel
from neurocodec.datasets.images import CropSampler, StepBatches
from neurocodec.eval import environment
from neurocodec.train.archs import build_model
from neurocodec.train.config import TrainConfig
from neurocodec.train.optim import main_parameters, optimizers
from neurocodec.train.trainer import prepare_model, train_step

ARCHS = {  # the shipped models' configurations
    "hyperprior-vr": dict(arch="hyperprior", transform="dct", N=96, M=192),
    "mlic-vr": dict(arch="mlic", transform="dct", N=96, M=192,
                    model_args={"slices": 8, "hidden": 32}),
}
VARIANTS = {
    "fp32": dict(precision="fp32"),
    "channels_last": dict(precision="fp32", channels_last=True),
    "bf16": dict(precision="bf16"),
    "bf16+channels_last": dict(precision="bf16", channels_last=True),
    "compile": dict(precision="fp32"),  # fp32 through torch.compile
}


def cpu_flags() -> dict:
    flags = environment.cpu_flags()
    return {"cpu": environment.cpu_model(), "bf16": "avx512_bf16" in flags,
            "amx": "amx_bf16" in flags, "auto": environment.resolve_precision("auto")}


class Runner:
    def __init__(self, cfg: TrainConfig, init: dict, compile_: bool):
        torch.manual_seed(0)
        self.cfg = cfg
        self.model = prepare_model(build_model(cfg).train(), cfg)
        self.model.load_state_dict(init)
        self.opt, self.aux = optimizers(self.model, cfg)
        self.params = main_parameters(self.model)
        self.net = torch.compile(self.model) if compile_ else self.model
        self.lmbdas = torch.tensor(self.model.cfg.lmbdas)

    def step(self, x: torch.Tensor, q: torch.Tensor) -> float:
        t = time.perf_counter()
        self.last, _ = train_step(self.net, self.model, x, q, self.lmbdas, self.cfg, self.opt,
                                  self.aux, self.params)
        return time.perf_counter() - t

    @torch.no_grad()
    def probe(self, x: torch.Tensor, q: torch.Tensor) -> tuple[float, float]:
        """bpp and PSNR of the training forward pass on one batch (fixed noise)."""
        torch.manual_seed(1)
        xx = x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            out = self.model(xx, q)
        lik = {k: v.float() for k, v in out["likelihoods"].items()}
        bpp = float(bits_per_pixel(lik, x.shape[-2] * x.shape[-1]).mean())
        mse = float((out["x_hat"].float() - x).pow(2).mean())
        return bpp, 10 * torch.log10(torch.tensor(1 / mse)).item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--archs", default="hyperprior-vr,mlic-vr")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    batches = StepBatches(CropSampler(a.data, crop=a.crop), a.batch, seed=0)
    xs = [batches[i] for i in range(a.repeat + 2)]
    qs = [torch.randint(0, 6, (a.batch,), generator=torch.Generator().manual_seed(i))
          for i in range(len(xs))]
    env = cpu_flags()
    print(f"CPU {env['cpu']}; avx512_bf16={env['bf16']} amx={env['amx']}; {a.threads} threads; "
          f"batch {a.batch} x {a.crop}^2 real crops; best of {a.repeat} interleaved rounds")
    report = {"environment": {**env, "threads": a.threads, "torch": torch.__version__,
                              "batch": a.batch, "crop": a.crop, "repeat": a.repeat},
              "results": {}}
    for arch in a.archs.split(","):
        base = TrainConfig(data=a.data, out="", **ARCHS[arch])
        torch.manual_seed(0)
        init = copy.deepcopy(build_model(base).state_dict())
        runners, probes = {}, {}
        for v in a.variants.split(","):
            try:
                r = Runner(replace(base, **VARIANTS[v]), init, v == "compile")
                for i in range(2):  # warm-up (and compilation)
                    r.step(xs[i], qs[i])
                runners[v] = r
            except Exception as e:  # e.g. no C++ compiler for inductor
                print(f"  {arch} {v}: unavailable ({e.__class__.__name__}: {str(e)[:120]})")
        times: dict[str, list[float]] = {v: [] for v in runners}
        for i in range(2, 2 + a.repeat):
            for v, r in runners.items():
                times[v].append(r.step(xs[i], qs[i]))
        for v in runners:
            probe_runner = Runner(replace(base, **VARIANTS[v]), init, False)
            probes[v] = probe_runner.probe(xs[0], qs[0])
        px = a.batch * a.crop * a.crop
        ref = min(times["fp32"]) if "fp32" in times else None
        rows = {}
        for v, t in times.items():
            best = min(t)
            bpp, psnr = probes[v]
            rows[v] = {"step_s": best, "pixels_per_s": px / best,
                       "speedup_vs_fp32": (ref / best) if ref else None,
                       "probe_bpp": bpp, "probe_psnr": psnr}
            print(f"  {arch:14s} {v:20s} {best:6.3f} s/step  {px / best / 1e3:8.1f} kpx/s  "
                  f"x{(ref / best) if ref else float('nan'):.2f} vs fp32   probe {bpp:.4f} bpp "
                  f"{psnr:.3f} dB")
        report["results"][arch] = rows
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
