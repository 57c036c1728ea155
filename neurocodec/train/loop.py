"""The one training loop: learning-rate schedule, time or step budget, checkpoints with exact
resume, validation, logs and the progress bar. Image training (trainer.py) and video fitting
(codecs/video/fit.py) both run it; what differs — the model, its batches and its loss — comes
in as ``step_fn``.

``cfg`` is any config with the schedule fields of :class:`~neurocodec.train.config.TrainConfig`
(``lr, lr_final, warmup_steps, budget_minutes, max_steps, stop_at, ckpt_every, log_every,
val_every, val_share, progress, tensorboard``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from neurocodec.errors import TrainingError
from neurocodec.train import checkpoint, ddp
from neurocodec.train.logs import RunLog
from neurocodec.train.optim import lr_at, set_lr

# ``step_fn(step) -> (terms, aux)``: one optimisation step; ``terms`` holds at least "loss",
# "bpp" and "psnr" (0-d tensors), ``aux`` the auxiliary loss (a 0-d tensor, zero if none).
StepFn = Callable[[int], tuple[dict, Tensor]]
# ``validate(step) -> rows`` for ``RunLog.validation`` (one per quality), or None.
ValidateFn = Callable[[int], list[dict]]


@dataclass
class Run:
    """One run's model, optimizers and where it stands; ``arch`` and ``model.cfg`` go into
    its checkpoints so a resume with another architecture is refused."""

    out: Path
    model: nn.Module
    opt: torch.optim.Optimizer
    aux_opt: torch.optim.Optimizer | None
    arch: str
    step: int = 0
    elapsed: float = 0.0
    saved: int = 0  # the step of the checkpoint on disk (0: none yet)

    @property
    def ckpt(self) -> Path:
        return self.out / "checkpoint.pt"

    def restore(self, aux_lr: float = 0.0) -> bool:
        """Continue from ``out/checkpoint.pt`` if there is one."""
        if not self.ckpt.exists():
            return False
        self.step, self.elapsed = checkpoint.restore(self.ckpt, self.model, self.opt,
                                                     self.aux_opt, self.arch, aux_lr)
        self.saved = self.step
        return True

    def save(self, **extra) -> None:
        """Never non-finite weights over a good checkpoint: a TrainingError instead."""
        bad = next((n for n, p in self.model.named_parameters()
                    if not torch.isfinite(p.detach()).all()), None)
        if bad is not None:
            raise TrainingError(f"weight {bad} is not finite")
        checkpoint.save(self.ckpt, self.model, self.opt, self.aux_opt, self.arch, self.step,
                        self.elapsed, **extra)
        self.saved = self.step


def run_loop(cfg, run: Run, step_fn: StepFn, d: ddp.Dist | None = None,
             validate: ValidateFn | None = None, final_extra: Callable[[], dict] | None = None
             ) -> Run:
    """Train ``run`` until its budget (``cfg.max_steps`` steps, else ``cfg.budget_minutes``)
    or ``cfg.stop_at``; checkpoint every ``cfg.ckpt_every`` steps and at the end (with
    ``final_extra()``'s fields), validate every ``cfg.val_every`` steps (skipping those
    that would make validation more than ``cfg.val_share`` of the training time) and after the
    last.
    A loss (or, raised by ``step_fn``, a gradient) that is not finite stops the run with a
    :class:`TrainingError`; nothing more is saved, so the checkpoint on disk stays good."""
    d = d or ddp.Dist()
    log = None
    if d.main:
        run.out.mkdir(parents=True, exist_ok=True)
        log = RunLog(run.out, run.step, cfg.max_steps or None, cfg.progress, cfg.tensorboard,
                     validation=validate is not None)
    try:
        _loop(cfg, run, step_fn, d, validate, final_extra, log)
    except TrainingError as e:
        if log is not None:
            log.close()
        kept = f"{run.ckpt} keeps step {run.saved}" if run.saved else "no checkpoint was written"
        raise TrainingError(f"step {run.step + 1}: {e}; stopped ({kept}): try a lower --lr or "
                            f"--clip, or check the data") from None
    return run


def _loop(cfg, run: Run, step_fn: StepFn, d: ddp.Dist, validate: ValidateFn | None,
          final_extra: Callable[[], dict] | None, log: RunLog | None) -> None:
    budget = cfg.budget_minutes * 60
    t0 = time.time() - run.elapsed
    start, last_val = run.step, -1
    val_cost, val_clock = 0.0, run.elapsed  # the last validation's seconds; the clock then

    def do_validation() -> None:
        # Off the clock: the budget (and the cosine schedule over it) is training time, and
        # a real-bitstream pass of a slow model (mlic: ~10 s per image and quality on one
        # thread) would otherwise take a quarter of it.
        nonlocal last_val, t0, val_cost, val_clock
        t = time.time()
        log.validation(run.step, validate(run.step))
        last_val, val_cost, val_clock = run.step, time.time() - t, run.elapsed
        t0 += val_cost

    def validation_due() -> bool:
        if validate is None or cfg.val_every <= 0 or run.step % cfg.val_every:
            return False
        return cfg.val_share <= 0 or val_cost <= cfg.val_share * (run.elapsed - val_clock)

    while True:
        run.elapsed = ddp.from_main(time.time() - t0, d)  # every rank follows rank 0's clock
        frac = run.step / cfg.max_steps if cfg.max_steps > 0 else run.elapsed / budget
        if frac >= 1.0 or (cfg.stop_at > 0 and run.step >= cfg.stop_at):
            break
        lr = lr_at(cfg, run.step, frac)
        set_lr(run.opt, lr)
        r, aux = step_fn(run.step)
        if not ddp.everywhere(torch.isfinite(r["loss"].detach())):
            raise TrainingError(f"the loss is {float(r['loss'])}")
        run.step += 1
        if not d.main:
            continue
        left = None if cfg.max_steps > 0 else (budget - run.elapsed) / 60
        log.step(run.step, lr, r, aux, run.elapsed / 60, left, cfg.log_every)
        if run.step % cfg.ckpt_every == 0:
            run.elapsed = time.time() - t0
            run.save()
        if validation_due():
            run.elapsed = time.time() - t0
            do_validation()
    extra = final_extra() if final_extra is not None else {}
    if d.main:
        if validate is not None and run.step > start and last_val != run.step:
            do_validation()  # the final weights' numbers
        run.elapsed = time.time() - t0
        run.save(**extra)
        log.close()
