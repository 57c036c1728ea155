"""Exact, machine-independent decoding (docs/determinism.md): the integer-exact synthesis,
decodes compared across thread counts and ISAs in fresh processes, and the golden vectors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurocodec.codecs.container import Container
from neurocodec.codecs.registry import load_codec
from neurocodec.transforms.blockdct import DctSynthesis
from neurocodec.transforms.exact import (
    ExactConv,
    ExactnessError,
    ExactSynthesis,
    Grid,
    UnsupportedModule,
    compile_exact,
    run_tiled,
)
from neurocodec.transforms.gdn import GDN
from tests.conftest import DATA

GOLDEN = DATA / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
ROOT = str(DATA.parent.parent)


def rgb_sha256(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


def random_dct_synthesis(seed: int = 0, hidden: int = 16) -> DctSynthesis:
    """A DctSynthesis with every layer random (the zero-initialised ones too) and a sizeable
    refinement, so each part of the exact form is exercised."""
    torch.manual_seed(seed)
    g = DctSynthesis(hidden=hidden).double().eval()
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0, 0.5 / (m.weight[0].numel() ** 0.5))
                m.bias.normal_(0, 0.05)
    return g


def decode_all(files: list[str]) -> list[str]:
    out = []
    for f in files:
        c = Container.from_bytes((GOLDEN / f).read_bytes())
        out.append(rgb_sha256(load_codec(c.model).decode(c)))
    return out


# ---------------------------------------------------------------------- the executor
def test_exact_synthesis_matches_float64_reference():
    g = random_dct_synthesis()
    log_ig = 0.3 * torch.randn(2, 192)
    y = 2 * torch.randn(1, 192, 5, 7)
    ex = ExactSynthesis(g, log_ig)
    with torch.no_grad():
        ref = g(y.double() * log_ig[1].double().exp()[None, :, None, None])
    out = ex(y, 1)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 40, 56)
    # every value on the grid, and close to the float64 pass
    assert torch.equal(torch.round(out.double() * 2**18), out.double() * 2**18)
    assert (out.double() - ref).abs().max() < 1e-4
    assert ref.abs().max() > 0.5  # the check is not vacuous


def test_exact_synthesis_independent_of_threads_and_tiling():
    g = random_dct_synthesis(1)
    log_ig = torch.zeros(1, 192)
    y = 2 * torch.randn(1, 192, 19, 11)
    untiled = ExactSynthesis(g, log_ig, tile_elems=None)
    tiled = ExactSynthesis(g, log_ig, tile_elems=1 << 10)  # tiles of 8 latents, 8 pixels
    assert tiled.tiles == [8, 8]
    n = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            outs += [untiled(y, 0), tiled(y, 0)]
    finally:
        torch.set_num_threads(n)
    assert all(torch.equal(o, outs[0]) for o in outs[1:])
    a = untiled.quantize_input(y, 0)
    for workers in (1, 3):  # odd tile sizes at the edges, several threads
        assert torch.equal(run_tiled(untiled.net, a, 5, workers), untiled.net(a))


def test_conv_exact_under_permuted_summation():
    """The executor's convolutions equal the same integer sums taken in another order
    (unfold + matmul over a shuffled reduction axis, or per kernel tap in reverse)."""
    torch.manual_seed(2)
    grid = Grid()
    conv = nn.Conv2d(7, 5, 3, padding=1).double()
    ex = compile_exact(conv, grid)
    assert isinstance(ex, ExactConv)
    a = torch.randint(-grid.limit, grid.limit + 1, (1, 7, 9, 6)).double()
    cols = F.unfold(a, 3, padding=1)[0]  # [63, 54]
    perm = torch.randperm(cols.shape[0])
    acc = ex.weight.reshape(5, -1)[:, perm] @ cols[perm] + ex.bias[:, None]
    ref = torch.round(acc * 2.0**-ex.w_bits).clamp(-grid.limit, grid.limit).reshape(1, 5, 9, 6)
    assert torch.equal(ex(a), ref)
    # the stride-8 transposed convolution (the IDCT), taps summed channel by channel in reverse
    deconv = nn.ConvTranspose2d(192, 3, 8, stride=8, bias=False).double()
    ex = compile_exact(deconv, grid)
    a = torch.randint(-grid.limit, grid.limit + 1, (1, 192, 3, 2)).double()
    acc = torch.zeros(1, 3, 3, 8, 2, 8, dtype=torch.float64)
    for c in reversed(range(192)):
        acc += torch.einsum("ij,okl->oikjl", a[0, c], ex.weight[c])[None]
    ref = torch.round(acc.reshape(1, 3, 24, 16) * 2.0**-ex.w_bits)
    assert torch.equal(ex(a), ref.clamp(-grid.limit, grid.limit))


def test_bound_holds_and_impossible_weights_raise():
    ex = ExactSynthesis(random_dct_synthesis(), torch.zeros(1, 192))
    for conv in (m for m in ex.modules() if isinstance(m, ExactConv)):
        w = conv.weight.long().abs()
        if conv.transposed:  # one stride phase meets in an output
            s = conv.stride[0]
            per_out = torch.stack([w[:, :, i::s, j::s].sum((0, 2, 3)) for i in range(s)
                                   for j in range(s)]).amax(0)
        else:
            per_out = w.sum((1, 2, 3))
        bias = conv.bias.long().abs() if conv.bias is not None else 0
        assert int((per_out * Grid().limit + bias).max()) < 1 << 52
    huge = nn.Conv2d(4, 4, 3, padding=1)
    with torch.no_grad():
        huge.weight.fill_(1e9)
    with pytest.raises(ExactnessError):
        compile_exact(huge)
    with pytest.raises(UnsupportedModule):
        compile_exact(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), GDN(3)))


def test_crafted_latents_stay_exact():
    """Non-finite or absurd inputs (a crafted file) are clamped onto the grid first."""
    ex = ExactSynthesis(random_dct_synthesis(), torch.zeros(1, 192))
    y = torch.randn(1, 192, 4, 4)
    y[0, 0, 0, 0], y[0, 1, 1, 1], y[0, 2, 2, 2], y[0, 3] = np.nan, np.inf, -np.inf, 1e30
    a = ex.quantize_input(y, 0)
    assert torch.isfinite(a).all() and a.abs().max() == Grid().limit
    out = ex(y, 0)
    assert torch.isfinite(out).all() and out.abs().max() <= 2**6


# ---------------------------------------------------------------------- whole decodes
GOLDEN_FILES = [e["file"] for e in MANIFEST["files"]]
ENVIRONMENTS = [(1, None), (2, None), (4, None), (2, "default"), (2, "avx2")]
# torch does not fall back from a capability the CPU lacks: its kernels die on SIGILL
HAS_AVX512 = "AVX512" in torch.backends.cpu.get_cpu_capability()
DECODE = ("import json, sys, torch; torch.set_num_threads(int(sys.argv[1])); "
          "from tests.test_determinism import decode_all; "
          "print(json.dumps([torch.backends.cpu.get_cpu_capability(), "
          "torch.get_num_threads(), decode_all(sys.argv[2:])]))")


def decode_in_fresh_processes(environments: list[tuple[int, str | None]]) -> list[list]:
    """[capability, threads, RGB hashes of the golden files] from one fresh process per
    (torch threads, ATEN_CPU_CAPABILITY), all started at once."""
    procs = []
    for threads, isa in environments:
        env = {**os.environ, "PYTHONPATH": ROOT}
        env.pop("ATEN_CPU_CAPABILITY", None)
        if isa:
            env["ATEN_CPU_CAPABILITY"] = isa
        procs.append(subprocess.Popen([sys.executable, "-c", DECODE, str(threads),
                                       *GOLDEN_FILES], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r[1] for r in results] == [t for t, _ in environments]
    return results


def test_decodes_identical_across_threads_and_isas():
    """Fresh processes, each with its own torch thread count or ATEN_CPU_CAPABILITY (read at
    start-up), decode to the same bytes, and so does this process."""
    results = decode_in_fresh_processes(ENVIRONMENTS)
    assert "DEFAULT" in {r[0] for r in results}  # the scalar kernels really ran in one
    assert all(r[2] == results[0][2] for r in results), results
    assert results[0][2] == decode_all(GOLDEN_FILES)


@pytest.mark.skipif(not HAS_AVX512, reason="CPU without AVX-512 (torch would die on SIGILL)")
def test_decodes_identical_under_avx512():
    (cap, _, hashes), = decode_in_fresh_processes([(2, "avx512")])
    assert cap == "AVX512" and hashes == decode_all(GOLDEN_FILES)


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_golden_vectors(entry):
    """Golden files (the first ones written by container version 1) decode to the recorded
    pixels. A failure means
    the decoded pixels changed: a decoder change, a changed model, or (for the float64
    entropy networks) a torch / CPU whose float64 results differ (docs/determinism.md)."""
    data = (GOLDEN / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["ncb_sha256"]
    c = Container.from_bytes(data)
    assert (c.model, c.weights, c.meta["quality"]) == (entry["model"], entry["weights"],
                                                      entry["quality"])
    img = load_codec(c.model).decode(c)
    assert list(img.shape) == entry["shape"] and img.dtype == np.uint8
    assert rgb_sha256(img) == entry["rgb_sha256"]


def test_golden_vectors_cover_every_shipped_image_model():
    from neurocodec.codecs.registry import WEIGHTS_DIR, list_models

    shipped = {m.name for m in list_models()
               if m.medium == "image" and m.weights_path.parent == WEIGHTS_DIR}
    qualities = {e["model"]: set() for e in MANIFEST["files"]}
    for e in MANIFEST["files"]:
        qualities[e["model"]].add(e["quality"])
    assert set(qualities) == shipped
    assert all(len(q) >= 2 for q in qualities.values())
    versions = [(GOLDEN / e["file"]).read_bytes()[4] for e in MANIFEST["files"]]
    assert versions == [e.get("container_version", 1) for e in MANIFEST["files"]]
    assert 1 in versions  # v1 files (written before container v2) keep decoding
