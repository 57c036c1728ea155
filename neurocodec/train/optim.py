"""Optimizers and the learning-rate schedule.

Two Adam optimizers, CompressAI's recipe: one for the rate–distortion loss, one for the
factorized priors' ``quantiles`` under their auxiliary loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurocodec.train.config import TrainConfig


def is_aux(name: str) -> bool:
    """Parameters trained by the auxiliary loss only (factorized priors' tail/median tracking)."""
    return name.endswith("quantiles")


def main_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter but the aux ones, in ``named_parameters`` order."""
    return [p for n, p in model.named_parameters() if not is_aux(n)]


def optimizers(model: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """``(main, aux)``. The main one has two groups; the second holds the factorized priors'
    density MLPs (the modules owning ``quantiles``), which learn ``eb_lr_mult`` times faster."""
    prior_ids = {id(p) for m in model.modules() if isinstance(getattr(m, "quantiles", None),
                                                              nn.Parameter)
                 for p in m.parameters()}
    main = main_parameters(model)
    opt = torch.optim.Adam([
        {"params": [p for p in main if id(p) not in prior_ids], "lr_mult": 1.0},
        {"params": [p for p in main if id(p) in prior_ids], "lr_mult": cfg.eb_lr_mult}],
        lr=cfg.lr)
    aux = torch.optim.Adam([p for n, p in model.named_parameters() if is_aux(n)], lr=cfg.aux_lr)
    return opt, aux


def lr_at(cfg: TrainConfig, step: int, frac: float) -> float:
    """Linear warm-up, then cosine decay over the fraction of the budget (time or steps) spent."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * min(frac, 1.0)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr * g["lr_mult"]
