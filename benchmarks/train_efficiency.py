"""Equal-time training: CompressAI's own recipe vs our trainer, same data, same wall-clock
budget, one λ, measured on Kodak from REAL bitstreams.

    python benchmarks/train_efficiency.py --data ../shared/data/images/train \
        --kodak ../shared/data/images/kodak --minutes 45 --out ~/neurocodec-runs/efficiency \
        --json docs/results/train_efficiency.json

* CompressAI: ``mbt2018-mean`` (quality 3 architecture, N=128, M=192, random init) trained as
  its ``examples/train.py`` does: Adam 1e-4 on the main parameters, Adam 1e-3 on the
  quantiles (aux loss), ``RateDistortionLoss(lmbda)``, clipping at 1.0, batch 16 of 256²
  random crops, noise quantization. Evaluated with its own ``compress``/``decompress``
  (its rANS coder, after ``update(force=True)``): bytes of its strings.
* Ours: ``neurocodec train image --lmbda λ`` with the defaults (DCT-start transforms, N=96,
  M=192, batch 8 of 256² crops), then exported and coded as whole ``.ncb`` files.

Both see crops of the same folder (our sampler, full- and half-size photos), run on the same
number of threads, one after the other, each for ``--minutes``. Printed: bpp, PSNR and RD cost
``bpp + λ·255²·MSE`` on Kodak for both, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from neurocodec.codecs.image.io import read_image, to_tensor, to_uint8
from neurocodec.datasets.images import CropSampler, StepBatches, list_images
from neurocodec.determinism import mixed_seed
from neurocodec.eval.metrics import psnr


def train_compressai(data: str, minutes: float, lmbda: float, out: Path, threads: int) -> dict:
    from compressai.losses import RateDistortionLoss
    from compressai.zoo import image_models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = image_models["mbt2018-mean"](quality=3, pretrained=False).train()
    params = {n for n, p in net.named_parameters() if not n.endswith(".quantiles")}
    aux_params = {n for n, p in net.named_parameters() if n.endswith(".quantiles")}
    named = dict(net.named_parameters())
    opt = torch.optim.Adam((named[n] for n in sorted(params)), lr=1e-4)
    aux_opt = torch.optim.Adam((named[n] for n in sorted(aux_params)), lr=1e-3)
    crit = RateDistortionLoss(lmbda=lmbda)
    batches = StepBatches(CropSampler(data, crop=256), 16, seed=0)
    t0, step, log = time.time(), 0, []
    while time.time() - t0 < minutes * 60:
        x = batches[step]
        torch.manual_seed(mixed_seed(0, 0, step))
        opt.zero_grad()
        aux_opt.zero_grad()
        o = net(x)
        loss = crit(o, x)
        loss["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        aux = net.aux_loss()
        aux.backward()
        aux_opt.step()
        step += 1
        if step % 20 == 0:
            log.append({"step": step, "minutes": (time.time() - t0) / 60,
                        "loss": float(loss["loss"]), "bpp": float(loss["bpp_loss"])})
            print(f"compressai step {step} {log[-1]['minutes']:.1f} min loss {log[-1]['loss']:.3f}",
                  flush=True)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / "compressai_mbt2018_mean.pt")
    return {"steps": step, "minutes": (time.time() - t0) / 60, "log": log, "net": net}


@torch.no_grad()
def eval_compressai(net, kodak: list[Path], lmbda: float) -> dict:
    import torch.nn.functional as F

    net.eval().update(force=True)
    rows = []
    for p in kodak:
        img, _ = read_image(p)
        x = to_tensor(img)
        h, w = x.shape[-2:]
        xp = F.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="constant")
        enc = net.compress(xp)
        nbytes = sum(len(s[0]) for s in enc["strings"])
        rec = net.decompress(enc["strings"], enc["shape"])["x_hat"][..., :h, :w].clamp(0, 1)
        rows.append(_row(img, to_uint8(rec), nbytes, lmbda))
    return _mean(rows)


def train_ours(data: str, minutes: float, lmbda: float, out: Path, threads: int) -> dict:
    from neurocodec.train.config import TrainConfig
    from neurocodec.train.trainer import train

    run = out / "ours"
    cfg = TrainConfig(data=data, out=str(run), lmbdas=(lmbda,), budget_minutes=minutes,
                      threads=threads, progress="off", tensorboard=False)
    t0 = time.time()
    ckpt = train(cfg, resume=False)
    st = torch.load(ckpt, weights_only=True)
    return {"steps": int(st["step"]), "minutes": (time.time() - t0) / 60, "run": run}


def eval_ours(run: Path, kodak: list[Path], lmbda: float) -> dict:
    from neurocodec.codecs.container import Container
    from neurocodec.codecs.image.codec import ImageCodec, load_weights
    from neurocodec.codecs.registry import weights_digest
    from neurocodec.train.export import export

    path = export(run, "efficiency-ours", run / "export", command="benchmarks/train_efficiency.py",
                  data="train")
    codec = ImageCodec(load_weights(path), "efficiency-ours", weights_digest(path))
    rows = []
    for p in kodak:
        img, _ = read_image(p)
        data = codec.encode(img, 0)
        rows.append(_row(img, codec.decode(Container.from_bytes(data)), len(data), lmbda))
    return _mean(rows)


def _row(img: np.ndarray, rec: np.ndarray, nbytes: int, lmbda: float) -> dict:
    px = img.shape[0] * img.shape[1]
    mse = float(np.mean((img.astype(np.float64) - rec.astype(np.float64)) ** 2))
    bpp = 8.0 * nbytes / px
    return {"bpp": bpp, "psnr": psnr(img, rec), "rd_cost": bpp + lmbda * mse}


def _mean(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--minutes", type=float, default=45.0)
    ap.add_argument("--lmbda", type=float, default=0.0067)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="only the first N Kodak images")
    ap.add_argument("--json")
    a = ap.parse_args()
    kodak = list_images(a.kodak)[: a.limit or None]
    theirs = train_compressai(a.data, a.minutes, a.lmbda, a.out, a.threads)
    r_theirs = eval_compressai(theirs.pop("net"), kodak, a.lmbda)
    ours = train_ours(a.data, a.minutes, a.lmbda, a.out, a.threads)
    r_ours = eval_ours(ours.pop("run"), kodak, a.lmbda)
    ratio = r_ours["rd_cost"] / r_theirs["rd_cost"]
    for name, t, r in (("compressai mbt2018-mean", theirs, r_theirs), ("ours", ours, r_ours)):
        print(f"{name:24s} {t['steps']:6d} steps {t['minutes']:5.1f} min   Kodak {r['bpp']:.4f} "
              f"bpp {r['psnr']:.2f} dB  RD cost {r['rd_cost']:.4f}")
    print(f"RD cost ours / CompressAI's: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "lmbda": a.lmbda, "minutes": a.minutes, "threads": a.threads,
            "compressai": {**r_theirs, "steps": theirs["steps"], "log": theirs["log"]},
            "ours": {**r_ours, "steps": ours["steps"]},
            "rd_cost_ratio": ratio if math.isfinite(ratio) else None}, indent=1) + "\n")


if __name__ == "__main__":
    main()
