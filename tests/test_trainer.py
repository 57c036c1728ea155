import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocodec.cli import main
from neurocodec.codecs.image.codec import HyperpriorImageCodec, load_weights, save_weights
from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior
from neurocodec.codecs.registry import get_model_info
from neurocodec.datasets.images import CropSampler, StepBatches, load_rgb
from neurocodec.errors import InputError
from neurocodec.train import ddp
from neurocodec.train.archs import model_from_checkpoint
from neurocodec.train.losses import ms_ssim_distortion, ms_ssim_window
from neurocodec.train.trainer import TrainConfig, train
from tests.conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
VAL_IMAGE = DATA / "kodim19_crop75x53.png"


def _cfg(out, stop_at=0, **kw) -> TrainConfig:
    base = dict(data=str(DATA), out=str(out), N=8, M=12, transform="gdn", crop=64, batch=2, max_steps=20,
                stop_at=stop_at, warmup_steps=2, ckpt_every=4, threads=1, progress="off",
                tensorboard=False, val_share=0.0)
    return TrainConfig(**{**base, **kw})


def _rows(path):
    with open(path) as f:
        return list(csv.reader(f))


def _dicts(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _ckpt(path):
    return torch.load(path, weights_only=True)


@pytest.fixture
def val_dir(tmp_path):
    d = tmp_path / "val"
    d.mkdir()
    shutil.copy(VAL_IMAGE, d)
    return d


def test_resume_continues_exactly(tmp_path):
    full = train(_cfg(tmp_path / "full"))
    part = tmp_path / "part"
    train(_cfg(part, stop_at=10))  # "interrupted" at step 10
    resumed = train(_cfg(part))  # picks up the step-10 checkpoint
    a = torch.load(full, weights_only=True)["model"]
    b = torch.load(resumed, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    la, lb = _rows(tmp_path / "full" / "log.csv"), _rows(part / "log.csv")
    assert [r[0] for r in la] == [r[0] for r in lb]
    assert [r[3:] for r in la] == [r[3:] for r in lb]  # loss, bpp, psnr, aux columns


def test_batches_do_not_depend_on_workers_or_validation(tmp_path, val_dir):
    """Worker processes and validation runs leave the training trajectory untouched."""
    a = _ckpt(train(_cfg(tmp_path / "a", max_steps=6)))["model"]
    b = _ckpt(train(_cfg(tmp_path / "b", max_steps=6, workers=2, val=str(val_dir),
                         val_every=3, val_qualities=(0,))))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_step_batches_are_per_step_and_per_rank():
    s = CropSampler(DATA, crop=32, vflip=True)
    r0, r1 = StepBatches(s, 3, seed=1, rank=0), StepBatches(s, 3, seed=1, rank=1)
    assert r0[5].shape == (3, 3, 32, 32)
    assert torch.equal(r0[5], r0[5]) and not torch.equal(r0[5], r0[6])
    assert not torch.equal(r0[5], r1[5])  # DDP ranks train on different crops


def test_ms_ssim_window_fits_small_crops():
    assert ms_ssim_window(256) == (11, (0.0448, 0.2856, 0.3001, 0.2363, 0.1333))
    win, weights = ms_ssim_window(128)
    assert (win - 1) * 16 < 128 and len(weights) == 4 and sum(weights) == pytest.approx(1)
    x = torch.rand(2, 3, 128, 128)
    x_hat = (x + 0.05 * torch.randn_like(x)).requires_grad_()
    d = ms_ssim_distortion(x_hat, x)
    d.sum().backward()
    assert d.shape == (2,) and torch.all((d > 0) & (d < 1))
    assert torch.isfinite(x_hat.grad).all()
    assert torch.allclose(ms_ssim_distortion(x, x), torch.zeros(2), atol=1e-6)


def test_ms_ssim_training(tmp_path):
    ckpt = train(_cfg(tmp_path / "r", loss="ms-ssim", max_steps=10, ckpt_every=100,
                      log_every=5))
    rows = _dicts(tmp_path / "r" / "log.csv")
    assert [r["step"] for r in rows] == ["5", "10"]
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("loss", "bpp", "psnr", "aux"))
    st = _ckpt(ckpt)
    assert st["model_cfg"]["lmbdas"][0] > 1  # MS-SSIM λ scale, not the MSE one
    assert all(torch.isfinite(v).all() for v in st["model"].values())


def test_validation_is_off_the_training_clock(tmp_path, val_dir, monkeypatch):
    """The time budget and its schedule count training, not the real-bitstream validation."""
    import time

    from neurocodec.train import trainer

    def slow(*args, **kw):
        time.sleep(2.0)
        return real(*args, **kw)

    real = trainer.validate
    monkeypatch.setattr(trainer, "validate", slow)
    t = time.time()
    ckpt = train(_cfg(tmp_path / "r", max_steps=2, val=str(val_dir), val_every=1,
                      val_qualities=(0,)))
    assert time.time() - t > 4.0 and len(_dicts(tmp_path / "r" / "val.csv")) == 2
    assert _ckpt(ckpt)["elapsed"] < 2.0


def test_validation_share_skips_due_validations(tmp_path, val_dir, monkeypatch):
    """A validation costlier than ``val_share`` of the training since the last is skipped;
    the first one and the final one always run."""
    import time

    from neurocodec.train import trainer

    def slow(*args, **kw):
        time.sleep(1.0)
        return real(*args, **kw)

    real = trainer.validate
    monkeypatch.setattr(trainer, "validate", slow)
    train(_cfg(tmp_path / "r", max_steps=4, val=str(val_dir), val_every=1, val_qualities=(0,),
               val_share=0.05))
    assert [r["step"] for r in _dicts(tmp_path / "r" / "val.csv")] == ["1", "4"]


def test_validation_reports_real_bitstream_sizes(tmp_path, val_dir):
    out = tmp_path / "r"
    ckpt = train(_cfg(out, max_steps=4, val=str(val_dir), val_every=2, val_qualities=(0, 1)))
    rows = _dicts(out / "val.csv")
    assert [(r["step"], r["quality"]) for r in rows] == [("2", "0"), ("2", "1"),
                                                         ("4", "0"), ("4", "1")]
    img = load_rgb(VAL_IMAGE)
    for r in rows:
        assert int(r["pixels"]) == img.shape[0] * img.shape[1] and int(r["images"]) == 1
        assert int(r["bytes"]) > 0
        assert float(r["bpp"]) == pytest.approx(8 * int(r["bytes"]) / int(r["pixels"]), abs=1e-5)
        assert float(r["bpp_est"]) > 0 and 0 < float(r["ms_ssim"]) <= 1
    # The final rows are the file the real codec writes with the final weights.
    st = _ckpt(ckpt)
    model = model_from_checkpoint(st["arch"], st["model_cfg"])
    model.load_state_dict(st["model"])
    model.build_z_tables()
    codec = HyperpriorImageCodec(model.eval(), "validation", "")
    for r in rows[2:]:
        assert int(r["bytes"]) == len(codec.encode(img, int(r["quality"])))


def test_progress_bar_and_tensorboard(tmp_path, capsys):
    out = tmp_path / "r"
    train(_cfg(out, max_steps=3, progress="on", tensorboard=True))
    err = capsys.readouterr().err
    assert "3/3" in err and "bpp=" in err and "psnr=" in err and "step/s" in err
    assert list((out / "tb").glob("events.out.tfevents.*"))
    train(_cfg(tmp_path / "quiet", max_steps=2, progress="off"))
    assert capsys.readouterr().err == ""


def test_ddp_two_processes_gloo(tmp_path):
    """torchrun, 2 CPU processes (gloo): different crops per rank, identical weights after."""
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "neurocodec.train", "--data", str(DATA), "--out", str(out), "--N", "8",
           "--M", "12", "--transform", "gdn", "--crop", "64", "--batch", "2", "--max-steps", "3",
           "--warmup-steps", "1", "--threads", "1", "--no-tensorboard", "--progress", "off"]
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    st = _ckpt(out / "checkpoint.pt")
    assert st["step"] == 3
    d0, d1 = st["rank_digests"]
    assert d0 == d1  # gradients were averaged: each rank saw other crops, yet the same weights
    model = model_from_checkpoint(st["arch"], st["model_cfg"])
    model.load_state_dict(st["model"])
    assert ddp.state_digest(model) == d0
    assert len(_rows(out / "log.csv")) == 1  # header only (log_every 10), written once


def _run_cli(capsys, *args) -> tuple[int, str]:
    rc = main(["train", "image", *[str(a) for a in args]])
    return rc, capsys.readouterr().err


def test_cli_config_file_and_overrides(tmp_path, capsys):
    out = tmp_path / "r"
    cfg = {"data": str(DATA), "out": str(out), "N": 8, "M": 12, "transform": "gdn", "crop": 64, "batch": 2,
           "max_steps": 2, "warmup_steps": 1, "threads": 1, "progress": "off",
           "tensorboard": False, "lmbdas": [0.01, 0.02]}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    rc, err = _run_cli(capsys, "--config", tmp_path / "c.json", "--max-steps", 3,
                       "--lmbda", 0.0067)
    assert rc == 0, err
    st = _ckpt(out / "checkpoint.pt")
    assert st["step"] == 3 and st["model_cfg"]["lmbdas"] == [0.0067]
    assert json.loads((out / "config.json").read_text())["max_steps"] == 3
    # --resume continues the run; the written config.json is itself a valid --config
    rc, err = _run_cli(capsys, "--config", out / "config.json", "--max-steps", 4, "--resume")
    assert rc == 0, err
    assert _ckpt(out / "checkpoint.pt")["step"] == 4


@pytest.mark.parametrize("case", ["no-data-dir", "no-images", "arch", "json", "field", "type",
                                  "resume", "missing-out"])
def test_cli_errors(tmp_path, capsys, case):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["--data", DATA, "--out", tmp_path / "r", "--N", 8, "--M", 12, "--transform", "gdn", "--crop", 64,
            "--max-steps", 1, "--progress", "off", "--no-tensorboard"]
    bad = tmp_path / "bad.json"
    args = {
        "no-data-dir": [*base, "--data", tmp_path / "nope"],
        "no-images": [*base, "--data", empty],
        "arch": [*base, "--arch", "nope"],
        "json": ["--config", bad],
        "field": ["--config", bad],
        "type": ["--config", bad],
        "resume": [*base, "--resume"],
        "missing-out": ["--data", DATA],
    }[case]
    bad.write_text({"json": "{not json", "field": '{"bogus": 1}',
                    "type": '{"batch": "eight"}'}.get(case, "{}"))
    rc, err = _run_cli(capsys, *args)
    assert rc == 1
    assert err.startswith("neurocodec: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_cli_resume_with_another_model_config_is_an_error(tmp_path, capsys):
    args = ["--data", DATA, "--out", tmp_path / "r", "--M", 12, "--transform", "gdn", "--crop", 64, "--batch", 2,
            "--max-steps", 1, "--threads", 1, "--progress", "off", "--no-tensorboard"]
    assert _run_cli(capsys, *args, "--N", 8)[0] == 0
    rc, err = _run_cli(capsys, *args, "--N", 16, "--max-steps", 2)
    assert rc == 1 and "N=8" in err and err.count("\n") == 1


def test_export_a_run(tmp_path, val_dir):
    from neurocodec.codecs.image.codec import load_weights
    from neurocodec.train.export import export

    run = tmp_path / "r"
    train(_cfg(run, max_steps=2, val=str(val_dir), val_qualities=(0,)))
    path = export(run, "tiny-run", tmp_path / "w", command="test", data="tests/data")
    manifest = json.loads((tmp_path / "w" / "tiny-run.json").read_text())
    assert manifest["codec"] == "hyperprior" and manifest["training_steps"] == 2
    assert (tmp_path / "w" / "tiny-run.log.csv").exists()
    assert (tmp_path / "w" / "tiny-run.val.csv").exists()
    img = load_rgb(VAL_IMAGE)
    codec = HyperpriorImageCodec(load_weights(path), "tiny-run", "")
    assert len(codec.encode(img, 0)) > 0


def test_init_starts_a_fresh_run_from_weights(tmp_path, tiny_env):
    """--init copies a model's weights into step 0; a mismatched config is a one-line error."""
    src = tiny_env / "tiny-test.safetensors"
    cfg = _cfg(tmp_path / "run", N=8, M=12, lmbdas=(0.01, 0.05), init="tiny-test", max_steps=1,
               lr=1e-12, warmup_steps=0, eb_lr_mult=0.0, aux_lr=0.0)
    st = torch.load(train(cfg), weights_only=True)["model"]
    shipped = HyperpriorImageCodec.from_info(get_model_info("tiny-test")).model.state_dict()
    k = "g_s.0.weight"
    assert torch.allclose(st[k], shipped[k], atol=1e-6)  # one step at lr 1e-12 moves nothing
    from neurocodec.train.export import export

    export(tmp_path / "run", "tiny-more", tmp_path / "w", command="test", data="tests/data")
    man = json.loads((tmp_path / "w" / "tiny-more.json").read_text())
    assert man["init_from"]["name"] == "tiny-test" and man["run_steps"] == 1
    assert src.exists()
    with pytest.raises(InputError, match="M=12"):
        train(_cfg(tmp_path / "bad", N=8, M=16, lmbdas=(0.01, 0.05), init=str(src)))


def test_init_extends_the_rate_range(tmp_path, tiny_env):
    """--init with the source's λs plus new ones: the source's gains are kept, the new
    qualities' gains start extrapolated (or interpolated) in log λ; other λs are an error."""
    shipped = HyperpriorImageCodec.from_info(get_model_info("tiny-test")).model.state_dict()
    src = [float(v) for v in load_weights(get_model_info("tiny-test").weights_path).cfg.lmbdas]
    lo, mid = src[0] / 2, (src[0] * src[1]) ** 0.5
    cfg = _cfg(tmp_path / "run", N=8, M=12, lmbdas=(lo, src[0], mid, src[1]), init="tiny-test",
               max_steps=1, lr=1e-12, warmup_steps=0, eb_lr_mult=0.0, aux_lr=0.0)
    st = torch.load(train(cfg), weights_only=True)["model"]
    for k in ("log_gain", "log_inv_gain", "log_hgain", "log_hinv_gain"):
        a, b = shipped[k][0].float(), shipped[k][1].float()
        got = st[k].float()
        assert got.shape[0] == 4
        assert torch.allclose(got[1], a, atol=1e-5) and torch.allclose(got[3], b, atol=1e-5)
        step = (b - a) / math.log(src[1] / src[0])  # per unit of log λ
        assert torch.allclose(got[0], a - step * math.log(2), atol=1e-5), k
        assert torch.allclose(got[2], (a + b) / 2, atol=1e-5), k
    assert torch.allclose(st["g_s.0.weight"], shipped["g_s.0.weight"], atol=1e-6)
    with pytest.raises(InputError, match="lmbdas"):  # a source λ missing: not an extension
        train(_cfg(tmp_path / "bad", N=8, M=12, lmbdas=(lo, src[1]), init="tiny-test"))


def test_init_across_archs_copies_the_transforms(tmp_path, tiny_env):
    """A hyperprior's transforms (and factorized prior) start an mlic run; its own entropy
    model stays fresh. The manifest of the exported source counts toward the budget."""
    torch.manual_seed(0)
    hp = ScaleHyperprior(HyperpriorConfig(N=8, M=192, lmbdas=(0.01, 0.05), transform="dct"))
    with torch.no_grad():  # unlike any fresh model's weights
        for p in hp.parameters():
            p.add_(0.01)
    src = tmp_path / "hp.safetensors"
    save_weights(hp.eval(), src)
    (tmp_path / "hp.json").write_text(json.dumps({"name": "hp-dct", "training_hours": 1.5,
                                                    "training_steps": 700}))
    mlic = dict(arch="mlic", transform="dct", N=8, M=192, lmbdas=(0.01, 0.05), crop=64,
                model_args={"slices": 4, "hidden": 8, "heads": 2}, max_steps=1, lr=1e-12,
                warmup_steps=0, eb_lr_mult=0.0, aux_lr=0.0)
    st = torch.load(train(_cfg(tmp_path / "run", init=str(src), **mlic)),
                    weights_only=True)["model"]
    want = load_weights(src).state_dict()
    for k in ("g_a.refine.a.weight", "g_s.post.0.weight", "log_gain",
              "entropy_bottleneck.biases.0"):
        assert torch.allclose(st[k], want[k], atol=1e-6), k
    torch.manual_seed(0)
    fresh = torch.load(train(_cfg(tmp_path / "fresh", **mlic)), weights_only=True)["model"]
    k = "slices.channel_ctx.0.net.0.weight"
    assert torch.allclose(st[k], fresh[k], atol=1e-6)
    assert not torch.allclose(st["g_s.post.0.weight"], fresh["g_s.post.0.weight"])
    from neurocodec.train.export import export

    export(tmp_path / "run", "mlic-more", tmp_path / "w", command="test", data="tests/data")
    man = json.loads((tmp_path / "w" / "mlic-more.json").read_text())
    assert man["init_from"]["name"] == "hp-dct" and man["training_steps"] == 701
    with pytest.raises(InputError, match="N=8"):
        train(_cfg(tmp_path / "bad", init=str(src), **{**mlic, "N": 16}))
    with pytest.raises(InputError, match="transforms do not fit"):
        train(_cfg(tmp_path / "gdn", init="tiny-test", **{**mlic, "transform": "gdn", "M": 12}))


def test_cli_impossible_dct_width_is_one_line_error(tmp_path, capsys):
    rc, err = _run_cli(capsys, "--data", DATA, "--out", tmp_path / "r", "--M", 128,
                       "--crop", 64, "--max-steps", 1, "--progress", "off", "--no-tensorboard")
    assert rc == 1 and "192" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("flags, want", [({"avx2"}, "fp32"), ({"avx2", "avx512_bf16"}, "bf16"),
                                         ({"amx_bf16", "amx_tile"}, "bf16"), (set(), "fp32")])
def test_auto_precision_follows_the_cpu(tmp_path, monkeypatch, flags, want):
    from neurocodec.codecs.video.fit import FitConfig
    from neurocodec.eval import environment

    monkeypatch.setattr(environment, "cpu_flags", lambda: frozenset(flags))
    assert _cfg(tmp_path).precision == want  # the default is "auto", resolved at once
    assert FitConfig().precision == want
    assert _cfg(tmp_path, precision="fp32").precision == "fp32"
    assert FitConfig(precision="bf16").precision == "bf16"
    with pytest.raises(InputError, match="auto, fp32 or bf16"):
        _cfg(tmp_path, precision="fp16")
