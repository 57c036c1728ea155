"""Every Triton kernel compiles to a cubin for sm_80 and sm_90 without a GPU, without spills.

Runs ``triton.compile`` with an explicit ``GPUTarget`` in a subprocess (this process runs
under ``TRITON_INTERPRET=1``, whose ``@triton.jit`` objects cannot be compiled)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ptxas_missing() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    spec = importlib.util.find_spec("triton")
    base = Path(spec.origin).parent / "backends" / "nvidia"
    if not base.is_dir():
        return "this triton has no NVIDIA backend"
    if not (base / "bin" / "ptxas").exists() and not shutil.which("ptxas"):
        return "no ptxas (neither triton's bundled one nor on PATH)"
    return None


def test_kernels_compile_for_sm80_and_sm90():
    reason = _ptxas_missing()
    if reason:
        pytest.skip(f"cannot compile Triton kernels here: {reason}")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-m", "neurocodec.kernels.compile_check", "--json"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    got = {(row["kernel"], row["arch"]) for row in rows}
    kernels = {row["kernel"] for row in rows}
    assert {"_decode_kernel", "_encode_kernel"} <= kernels
    assert got == {(k, a) for k in kernels for a in ("sm_80", "sm_90")}
    for row in rows:
        assert row["cubin_is_elf"] and row["cubin_bytes"] > 1000, row
        assert row["registers"] is not None and row["registers"] <= 255, row
        assert row["cubin_registers"] in (None, row["registers"]), row
        assert row["spill_stores"] == 0 and row["spill_loads"] == 0, row
        assert row["shared"] <= 48 * 1024, row
