"""The README's examples work as written (only file names are put in place, and the training
run is cut to two steps on small crops)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _block(lang: str, containing: str) -> str:
    for body in re.findall(rf"```{lang}\n(.*?)```", README, re.S):
        if containing in body:
            return body
    raise AssertionError(f"no ```{lang} block with {containing!r} in README.md")


def _commands(body: str) -> list[list[str]]:
    """Shell lines of a block, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", body)
    return [shlex.split(line.split("  #")[0]) for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def test_python_api_example(tmp_path):
    shutil.copy(DATA / "kodim19_crop128x96.png", tmp_path / "photo.png")
    code = _block("python", "neurocodec.encode")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code + "\nassert rec.shape == img.shape\n"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "photo.ncb").read_bytes()[:4] == b"NCDC"
    assert (tmp_path / "photo_dec.png").exists()


def test_training_example_trains_exports_and_encodes(tmp_path):
    """`train image` as the README shows it (two steps), export, then encode with the exported
    single-rate model found through NEUROCODEC_WEIGHTS, with no -q."""
    data, val = tmp_path / "data", tmp_path / "val"
    data.mkdir()
    val.mkdir()
    shutil.copy(DATA / "kodim19_crop128x96.png", data)
    shutil.copy(DATA / "kodim19_crop75x53.png", val)
    shutil.copy(DATA / "kodim19_crop75x53.png", tmp_path / "photo.png")
    train, export, encode = _commands(_block("sh", "train.export"))
    subst = {"DIR": str(data), "VALDIR": str(val)}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(cmd: list[str], extra_env=None) -> str:
        cmd = [subst.get(a, a) for a in cmd]
        if cmd[0] == "neurocodec":
            cmd = [sys.executable, "-m", "neurocodec.cli", *cmd[1:]]
        elif cmd[0] == "python":
            cmd[0] = sys.executable
        elif cmd[0].startswith("NEUROCODEC_WEIGHTS="):
            extra_env = {"NEUROCODEC_WEIGHTS": str(tmp_path / cmd[0].split("=", 1)[1])}
            return run(cmd[1:], extra_env)
        r = subprocess.run(cmd, cwd=tmp_path, env={**env, **(extra_env or {})},
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (cmd, r.stderr[-2000:])
        return r.stdout

    run([*train, "--max-steps", "2", "--crop", "64", "--batch", "2", "--progress", "off",
         "--no-tensorboard"])
    assert (tmp_path / "runs" / "mine" / "checkpoint.pt").exists()
    run(export)
    assert (tmp_path / "my-weights" / "mine.safetensors").exists()
    out = run(encode)
    assert "mine q=0" in out and (tmp_path / "photo.ncb").exists()


def test_trainer_and_bench_example(tmp_path):
    for d in ("photos", "kodak"):
        (tmp_path / d).mkdir()
        shutil.copy(DATA / "kodim19_crop128x96.png", tmp_path / d)
    code = _block("python", "run_bench").replace(
        "max_steps=2000", "max_steps=2, crop=64, batch=2, progress='off', tensorboard=False")
    code = code.replace('anchor="webp"', 'anchor="webp", workers=1, progress=False')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "runs" / "mine" / "checkpoint.pt").exists()
    assert (tmp_path / "reports" / "k" / "report.html").exists()
