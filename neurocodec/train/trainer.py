"""A minimal rate–distortion trainer: time-budgeted schedule, checkpoints and exact resume.

Loss per image: ``lmbda[q] * 255**2 * MSE + bpp`` with a random quality ``q`` per image, plus
the factorized prior's auxiliary loss on its own optimizer (CompressAI's recipe).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior, load_compatible
from neurocodec.datasets.images import CropSampler


@dataclass
class TrainConfig:
    data: str
    out: str
    N: int = 96
    M: int = 128
    transform: str = "gdn"
    crop: int = 128
    batch: int = 8
    lr: float = 2e-4
    lr_final: float = 1e-5
    warmup_steps: int = 100
    budget_minutes: float = 60.0
    max_steps: int = 0  # > 0: schedule and stop by steps (reproducible), not by time
    stop_at: int = 0  # > 0: leave after this step (checkpointed), e.g. to train in chunks
    clip: float = 1.0
    eb_lr_mult: float = 10.0  # the factorized prior's small density MLP learns this much faster
    aux_lr: float = 1e-3
    seed: int = 0
    threads: int = 2
    ckpt_every: int = 100


def lr_at(cfg: TrainConfig, step: int, frac: float) -> float:
    """Linear warm-up, then cosine decay over the fraction of the budget (time or steps) spent."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * min(frac, 1.0)))


def rd_loss(model: ScaleHyperprior, x: torch.Tensor, q: torch.Tensor) -> dict:
    out = model(x, q)
    npix = x.shape[-2] * x.shape[-1]
    bits = sum((-torch.log2(v)).flatten(1).sum(1) for v in out["likelihoods"].values())
    bpp = bits / npix
    mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    lmbda = torch.tensor(model.cfg.lmbdas, dtype=x.dtype)[q]
    loss = (lmbda * 255**2 * mse + bpp).mean()
    psnr = (10 * torch.log10(1 / mse.detach().clamp_min(1e-10))).mean()
    return {"loss": loss, "bpp": bpp.mean().detach(), "psnr": psnr}


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = ScaleHyperprior(HyperpriorConfig(N=cfg.N, M=cfg.M, transform=cfg.transform)).train()
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    eb_ids = {id(p) for p in model.entropy_bottleneck.parameters()}
    opt = torch.optim.Adam([
        {"params": [p for p in main_params if id(p) not in eb_ids], "lr_mult": 1.0},
        {"params": [p for p in main_params if id(p) in eb_ids], "lr_mult": cfg.eb_lr_mult}],
        lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    sampler = CropSampler(cfg.data, crop=cfg.crop, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, elapsed = 0, 0.0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        load_compatible(model, st["model"])
        _load_opt(opt, st["opt"], main_params)
        aux_opt.load_state_dict(st["aux_opt"])
        for g in aux_opt.param_groups:
            g["lr"] = cfg.aux_lr
        sampler.set_state(st["sampler"])
        torch.set_rng_state(st["torch_rng"])
        if "gen" in st:
            gen.set_state(st["gen"])
        step, elapsed = st["step"], st["elapsed"]
        _truncate_log(out / "log.csv", step)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    log = open(out / "log.csv", "a", newline="")
    writer = csv.writer(log)
    if step == 0:
        writer.writerow(["step", "minutes", "lr", "loss", "bpp", "psnr", "aux"])
    budget = cfg.budget_minutes * 60
    t0 = time.time() - elapsed
    while True:
        elapsed = time.time() - t0
        frac = step / cfg.max_steps if cfg.max_steps > 0 else elapsed / budget
        if frac >= 1.0 or (cfg.stop_at > 0 and step >= cfg.stop_at):
            break
        lr = lr_at(cfg, step, frac)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        x = sampler.batch(cfg.batch)
        q = torch.randint(0, model.num_qualities, (cfg.batch,), generator=gen)
        r = rd_loss(model, x, q)
        opt.zero_grad()
        r["loss"].backward()
        torch.nn.utils.clip_grad_norm_(main_params, cfg.clip)
        opt.step()
        aux = model.aux_loss()
        aux_opt.zero_grad()
        aux.backward()
        aux_opt.step()
        step += 1
        if step % 10 == 0:
            writer.writerow([step, f"{elapsed / 60:.2f}", f"{lr:.3g}", f"{r['loss'].item():.4f}",
                             f"{r['bpp'].item():.4f}", f"{r['psnr'].item():.2f}",
                             f"{aux.item():.2f}"])
            log.flush()
        if step % cfg.ckpt_every == 0:
            _save(ckpt, model, opt, aux_opt, sampler, gen, step, time.time() - t0)
    _save(ckpt, model, opt, aux_opt, sampler, gen, step, time.time() - t0)
    log.close()
    return ckpt


def _load_opt(opt: torch.optim.Optimizer, state: dict, params: list) -> None:
    """Load Adam state, also from checkpoints that kept all parameters in one group."""
    if len(state["param_groups"]) == len(opt.param_groups):
        opt.load_state_dict(state)
        return
    old = torch.optim.Adam(params)
    old.load_state_dict(state)
    for p in params:
        if p in old.state:
            opt.state[p] = old.state[p]


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from, so the curve continues."""
    if not path.exists():
        return
    rows = path.read_text().splitlines()
    keep = [r for r in rows if not r[:1].isdigit() or int(r.split(",")[0]) <= step]
    path.write_text("\n".join(keep) + "\n")


def _save(path: Path, model, opt, aux_opt, sampler, gen, step: int, elapsed: float) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "aux_opt": aux_opt.state_dict(), "sampler": sampler.state(),
                "torch_rng": torch.get_rng_state(), "gen": gen.get_state(), "step": step, "elapsed": elapsed,
                "model_cfg": model.cfg.to_dict()}, tmp)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Train the variable-rate hyperprior")
    for f, v in TrainConfig.__dataclass_fields__.items():
        flag = f"--{f.replace('_', '-')}"
        if f in ("data", "out"):
            p.add_argument(flag, required=True)
        else:
            p.add_argument(flag, type=type(v.default), default=v.default)
    p.add_argument("--no-resume", action="store_true")
    a = vars(p.parse_args(argv))
    resume = not a.pop("no_resume")
    train(TrainConfig(**a), resume=resume)


if __name__ == "__main__":
    main()
