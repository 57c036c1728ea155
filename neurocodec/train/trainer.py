"""The rate–distortion trainer shared by every codec: schedule, checkpoints, exact resume,
validation with the real entropy coder, logs, and DDP under ``torchrun``.

Per image, ``lmbda[q] * D + bpp`` with a random quality ``q`` (losses.py), plus the factorized
priors' auxiliary loss on its own optimizer (CompressAI's recipe). The model does the mixed
quantization itself: straight-through rounding into the synthesis, noise for the likelihoods.

Every step reseeds torch from ``(seed, rank, step)`` and takes the batch of that step
(StepBatches), so a step's randomness depends on nothing before it: a resumed run repeats an
uninterrupted one exactly (same thread count, CPU), each DDP rank draws its own crops, quality
levels and noise, and validation or DataLoader workers cannot shift anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from neurocodec.datasets.images import CropSampler, StepBatches
from neurocodec.determinism import mixed_seed
from neurocodec.errors import InputError, TrainingError
from neurocodec.train import checkpoint, ddp
from neurocodec.train.archs import build_model, get_arch
from neurocodec.train.config import TrainConfig
from neurocodec.train.loop import Run, run_loop
from neurocodec.train.losses import DISTORTIONS, rd_loss
from neurocodec.train.optim import is_aux, main_parameters, optimizers
from neurocodec.train.validate import load_val_images, validate

__all__ = ["TrainConfig", "train"]


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Train (or, with ``resume``, continue) the run in ``cfg.out``; returns its checkpoint."""
    if cfg.loss not in DISTORTIONS:
        raise InputError(f"unknown loss {cfg.loss!r} (known: {', '.join(DISTORTIONS)})")
    get_arch(cfg.arch)
    d = ddp.setup(cfg.device)
    try:
        return _train(cfg, d, resume)
    finally:
        ddp.teardown(d)


def _train(cfg: TrainConfig, d: ddp.Dist, resume: bool) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = prepare_model(build_model(cfg).to(d.device).train(), cfg)
    if cfg.crop % model.PAD:
        fit = max(model.PAD, cfg.crop // model.PAD * model.PAD)
        raise InputError(f"--crop {cfg.crop}: {cfg.arch} with the {cfg.transform} transform "
                         f"trains on crops of a multiple of {model.PAD} pixels (e.g. {fit})")
    opt, aux_opt = optimizers(model, cfg)
    main_params = main_parameters(model)  # clipped together
    data = StepBatches(CropSampler(cfg.data, crop=cfg.crop, vflip=cfg.vflip), cfg.batch,
                       seed=cfg.seed, rank=d.rank)
    val_images = load_val_images(cfg.val) if cfg.val and d.main else []
    val_q = list(cfg.val_qualities) or list(range(model.num_qualities))
    if not set(val_q) <= set(range(model.num_qualities)):
        raise InputError(f"val_qualities {val_q}: the model has {model.num_qualities} qualities")
    run = Run(Path(cfg.out), model, opt, aux_opt, cfg.arch)
    if not (resume and run.restore(cfg.aux_lr)) and cfg.init:
        checkpoint.init_from(cfg.init, model, cfg.arch)
    net = ddp.wrap(model, d, [n for n, _ in model.named_parameters() if is_aux(n)],
                   cfg.find_unused_parameters)
    if d.main:
        run.out.mkdir(parents=True, exist_ok=True)
        (run.out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    batches = iter(DataLoader(data, batch_size=None, num_workers=cfg.workers,
                              sampler=range(run.step, cfg.max_steps or sys.maxsize),
                              pin_memory=d.device.type == "cuda"))
    lmbdas = torch.tensor(model.cfg.lmbdas, device=d.device)

    def step_fn(step: int) -> tuple[dict, Tensor]:
        x = next(batches).to(d.device, non_blocking=True)
        torch.manual_seed(mixed_seed(cfg.seed, d.rank, step))  # qualities and noise of this step
        q = torch.randint(0, model.num_qualities, (x.shape[0],)).to(d.device)
        return train_step(net, model, x, q, lmbdas, cfg, opt, aux_opt, main_params)

    def final_extra() -> dict:
        nonlocal batches
        del batches  # stops DataLoader workers
        digests.extend(ddp.rank_digests(net, d))
        return {"rank_digests": digests} if d.world > 1 else {}

    digests: list[str] = []
    validate_fn = None
    if val_images:
        def validate_fn(step: int) -> list[dict]:
            return validate(model, get_arch(cfg.arch), val_images, val_q)

    run_loop(cfg, run, step_fn, d, validate_fn, final_extra)
    if len(set(digests)) > 1:
        raise RuntimeError(f"DDP ranks diverged: parameter digests {digests}")
    return run.ckpt


def prepare_model(model: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """The model's memory format for ``cfg.channels_last`` (before the optimizers see it)."""
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train_step(net, model, x: Tensor, q: Tensor, lmbdas: Tensor, cfg: TrainConfig,
               opt: torch.optim.Optimizer, aux_opt: torch.optim.Optimizer, main_params: list
               ) -> tuple[dict, Tensor]:
    """One trainer step on ``x [B,3,H,W]`` at qualities ``q [B]``: the forward pass (under bf16
    autocast for ``precision="bf16"``; the entropy models always run in fp32), the loss in
    fp32, both optimizer steps. Returns the loss terms and the aux loss."""
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        out = net(x, q)
    out = {"x_hat": out["x_hat"].float(),
           "likelihoods": {k: v.float() for k, v in out["likelihoods"].items()}}
    r = rd_loss(out, x, lmbdas[q], cfg.loss)
    return r, _update(r["loss"], opt, main_params, cfg.clip, model.aux_loss, aux_opt)


def _update(loss: Tensor, opt: torch.optim.Optimizer, params: list, clip: float,
            aux_loss: Callable[[], Tensor], aux_opt: torch.optim.Optimizer) -> Tensor:
    """One step of each optimizer: the clipped rate–distortion step, then the aux step (its
    loss reads the priors after the main step, as CompressAI does); returns the aux loss."""
    opt.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, clip)
    if not ddp.everywhere(torch.isfinite(loss.detach()) & torch.isfinite(norm)):
        raise TrainingError(f"the loss ({loss.item():.4g}) or its gradient (norm "
                            f"{norm.item():.4g}) is not finite")
    opt.step()
    aux = aux_loss()
    if not ddp.everywhere(torch.isfinite(aux.detach())):
        raise TrainingError(f"the auxiliary loss is {aux.item()}")
    aux_opt.zero_grad()
    aux.backward()
    aux_opt.step()
    return aux
