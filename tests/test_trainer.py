import csv

import torch

from neurocodec.train.trainer import TrainConfig, train
from tests.conftest import DATA


def _cfg(out, stop_at=0) -> TrainConfig:
    return TrainConfig(data=str(DATA), out=str(out), N=8, M=12, crop=64, batch=2,
                       max_steps=20, stop_at=stop_at, warmup_steps=2, ckpt_every=4, threads=1)


def _rows(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_resume_continues_exactly(tmp_path):
    full = train(_cfg(tmp_path / "full"))
    part = tmp_path / "part"
    train(_cfg(part, stop_at=10))  # "interrupted" at step 10
    resumed = train(_cfg(part))  # picks up the step-10 checkpoint
    a = torch.load(full, weights_only=False)["model"]
    b = torch.load(resumed, weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    la, lb = _rows(tmp_path / "full" / "log.csv"), _rows(part / "log.csv")
    assert [r[0] for r in la] == [r[0] for r in lb]
    assert [r[3:] for r in la] == [r[3:] for r in lb]  # loss, bpp, psnr, aux columns
