"""Checkpoints that resume exactly: weights, both optimizers, step and elapsed time.

Nothing random is stored: every step reseeds from ``(seed, rank, step)`` (see trainer.py), so
the step after a resume draws what it would have drawn without the interruption.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from neurocodec.codecs.image.hyperprior import load_compatible
from neurocodec.errors import InputError
from neurocodec.train.optim import main_parameters


def save(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
         aux_opt: torch.optim.Optimizer | None, arch: str, step: int, elapsed: float,
         **extra) -> None:
    """Written to a temporary file first: an interruption never leaves half a checkpoint."""
    tmp = path.with_suffix(".tmp")
    cfg = model.cfg.to_dict()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "aux_opt": None if aux_opt is None else aux_opt.state_dict(), "step": step, "elapsed": elapsed,
                "arch": arch, "model_cfg": cfg, **extra}, tmp)
    tmp.replace(path)


def restore(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
            aux_opt: torch.optim.Optimizer | None, arch: str, aux_lr: float = 0.0
            ) -> tuple[int, float]:
    """Load a checkpoint into the model and optimizers; returns ``(step, elapsed seconds)``."""
    dev = next(model.parameters()).device
    st = torch.load(path, weights_only=True, map_location=dev)
    was = st.get("arch", "hyperprior")  # checkpoints from before the arch registry
    got = _mismatch(was, st["model_cfg"], arch, model)
    if got:
        raise InputError(f"{path}: the run was trained with {got}; resume with the run's "
                         "config.json, or start over with --no-resume")
    load_compatible(model, st["model"])
    _load_opt(opt, st["opt"], main_parameters(model))
    if aux_opt is not None:
        aux_opt.load_state_dict(st["aux_opt"])
        for g in aux_opt.param_groups:  # the config's aux lr wins over the checkpoint's
            g["lr"] = aux_lr
    return st["step"], st["elapsed"]


def init_from(source: str, model: nn.Module, arch: str) -> None:
    """Copy the weights of a shipped model (by name) or a ``.safetensors`` file into a fresh
    ``model``: the config fields both have must match, and each top-level module is copied
    whole when the source has all its tensors with the same shapes. The analysis and synthesis
    transforms must be among them; a model of the same arch and config gives every module.
    Another arch lends what fits (a hyperprior's transforms into mlic, so that mlic's budget
    goes to its entropy model). A run whose λs add rate points to the source's (every source
    λ kept, in order) extends its range: the new qualities' gains start interpolated or
    extrapolated from the source's (:func:`_extend_rows`)."""
    from neurocodec.codecs.image.codec import load_weights
    from neurocodec.codecs.registry import get_model_info
    from neurocodec.errors import ModelError

    path = Path(source)
    try:
        if not path.suffix == ".safetensors":
            path = get_model_info(source).weights_path
        src = load_weights(path)
    except ModelError as e:
        raise InputError(f"--init {source}: {e}") from None
    have, cfg = src.cfg.to_dict(), model.cfg.to_dict()
    rows = _quality_rows(have.get("lmbdas"), cfg.get("lmbdas"))
    what = ", ".join(f"{k}={have[k]!r}" for k in cfg if k in have and have[k] != cfg[k]
                     and not (k == "lmbdas" and rows is not None))
    if what:
        raise InputError(f"--init {source}: its weights have {what}")
    dev = next(model.parameters()).device
    state = {k: v.to(dev) for k, v in src.state_dict().items()}
    if rows is not None:
        for k in GAIN_PARAMS:
            if k in state:
                state[k] = _extend_rows(state[k], *rows)
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in model.state_dict().items():
        groups.setdefault(k.split(".")[0], {})[k] = v
    copied = [g for g, own in groups.items()
              if all(k in state and state[k].shape == v.shape for k, v in own.items())]
    lacking = [g for g in ("g_a", "g_s") if g not in copied]
    if lacking:
        raise InputError(f"--init {source}: its {src.codec_name} transforms do not fit "
                         f"{arch} ({', '.join(lacking)} differ)")
    model.load_state_dict({k: state[k] for g in copied for k in groups[g]}, strict=False)


# The per-quality parameters of the variable-rate models ([qualities, channels], log domain).
GAIN_PARAMS = ("log_gain", "log_inv_gain", "log_hgain", "log_hinv_gain")


def _quality_rows(src: list | None, dst: list | None
                  ) -> tuple[list[float], list[float]] | None:
    """``(source λs, run λs)`` when the run adds rate points to the source's (every source λ
    among the run's, in the same order), so that ``--init`` extends a model's rate range;
    ``None`` when the λs are equal or the source's are not a subset."""
    if not src or not dst or list(src) == list(dst) or len(dst) <= len(src):
        return None
    at = [next((i for i, d in enumerate(dst) if math.isclose(d, s, rel_tol=1e-9)), -1)
          for s in src]
    if min(at) < 0 or at != sorted(at) or len(set(at)) != len(at) or sorted(dst) != list(dst):
        return None
    return list(src), list(dst)


def _extend_rows(t: torch.Tensor, src: list[float], dst: list[float]) -> torch.Tensor:
    """``t [len(src), C]`` (log gains) -> ``[len(dst), C]``: each source row where its λ is,
    the others interpolated — or, beyond the ends, extrapolated — linearly in log λ from the
    two nearest source λs (gains follow a power of λ, Cui et al. 2021)."""
    ls = torch.tensor([math.log(v) for v in src], dtype=torch.float64)
    out = []
    for d in dst:
        x = math.log(d)
        hit = [i for i, v in enumerate(src) if math.isclose(v, d, rel_tol=1e-9)]
        if hit:
            out.append(t[hit[0]])
            continue
        i = int(torch.searchsorted(ls, torch.tensor([x], dtype=torch.float64)))
        a, b = (0, 1) if i == 0 else (len(src) - 2, len(src) - 1) if i >= len(src) else (i - 1, i)
        w = (x - float(ls[a])) / (float(ls[b]) - float(ls[a]))
        out.append(t[a] + (t[b] - t[a]) * w)
    return torch.stack(out)


def _mismatch(src_arch: str, src_cfg: dict, arch: str, model: nn.Module) -> str:
    """How a source (checkpoint, weights) differs from the run's model: ``"arch 'x'"``, the
    differing config fields as ``"N=8, M=12"`` (the source's values), or ``""``."""
    if src_arch != arch:
        return f"arch {src_arch!r}"
    cfg = model.cfg.to_dict()
    return ", ".join(f"{k}={src_cfg.get(k)!r}" for k in cfg if src_cfg.get(k) != cfg[k])


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


def truncate_log(path: Path, step: int) -> None:
    """Drop CSV rows written after the checkpoint we resume from, so the curve continues."""
    if not path.exists():
        return
    rows = path.read_text().splitlines()
    keep = [r for r in rows if not r[:1].isdigit() or int(r.split(",")[0]) <= step]
    path.write_text("\n".join(keep) + "\n")
