"""The 3DGS attribute coder ``gsc``: round trip within each attribute's quantization bound,
deterministic, quality ordering, hostile files, the CLI and the zoo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurocodec.cli import main
from neurocodec.codecs.container import Container
from neurocodec.codecs.limits import DecodeLimits
from neurocodec.codecs.splat import coder as cd
from neurocodec.codecs.splat.io import read_scene
from neurocodec.codecs.splat.positions import morton_key
from neurocodec.codecs.splat.scene import SplatScene
from neurocodec.errors import BitstreamError, InputError

from .conftest import DATA

SPLAT = DATA / "splat"
SCENES = ["biker_300.ply", "flowers_200.ply", "small_sh3_256.ply"]


@pytest.fixture(scope="module")
def coder():
    return cd.SplatCoder()


def _matched(scene: SplatScene, c: Container) -> np.ndarray:
    """Index of each decoded Gaussian of file ``c`` in ``scene``: format 3 comes back in the
    Morton order of the decoded positions, formats 1 and 2 in that of the original ones."""
    if c.meta["format"] >= 3:
        return cd.coding_order(scene, cd.Steps(**c.meta["steps"]))
    m = scene.means.astype(np.float64)
    base = np.ptp(m, axis=0).max() / cd.GRID
    xi = np.clip(np.rint((m - m.min(axis=0)) / base), 0, cd.GRID).astype(np.int64)
    return np.argsort(morton_key(xi), kind="stable")


@pytest.mark.parametrize("name", SCENES)
def test_round_trip_within_bounds(coder, name):
    s = read_scene(SPLAT / name)
    q = 2
    data = coder.encode(s, q)
    assert data == coder.encode(s, q)  # deterministic encode
    c = Container.from_bytes(data)
    d = coder.decode(c)
    d2 = coder.decode(Container.from_bytes(data))
    for a in ("means", "scales", "quats", "opacities", "sh_dc", "sh_rest"):
        assert np.array_equal(getattr(d, a), getattr(d2, a))  # deterministic decode
    o = s.subset(_matched(s, c))
    st = cd.steps_for(q)
    assert d.n == s.n and d.sh_degree == s.sh_degree
    assert np.abs(d.scales - o.scales).max() <= st.scale / 2 + 1e-5
    assert np.abs(d.sh_dc - o.sh_dc).max() <= st.dc * 1.5 + 1e-5  # YCoCg-R is lossless on ints
    if s.sh_degree:
        assert np.abs(d.sh_rest - o.sh_rest).max() <= st.rest / 2 + 1e-5
    a, ad = (1 / (1 + np.exp(-x.opacities.astype(np.float64))) for x in (o, d))
    assert np.abs(a - ad).max() <= st.alpha / 2 + 1e-6
    # positions: within half the Gaussian's own power-of-two step, per axis
    k = cd.size_class(np.rint(d.scales / st.scale).astype(np.int64), st.scale,
                      c.meta["pos_shift"])
    bound = (2.0 ** k) / 2 * c.meta["base"] + 1e-6 * np.abs(o.means).max()
    assert (np.abs(d.means - o.means) <= bound[:, None] + 1e-7).all()
    # rotations: the same rotation (q ~ -q), components within the rotation step
    qo = cd.canonical_quats(o.quats)
    dot = np.abs((qo * d.quats).sum(axis=1))
    assert dot.min() > 0.99
    assert np.allclose(np.linalg.norm(d.quats, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("fmt", [1, 2])
def test_older_formats_still_decode(coder, fmt):
    # format 1 (no neighbour prediction), format 2 (per-axis position residuals): same
    # quantizers, same bounds
    s = read_scene(SPLAT / "flowers_200.ply")
    c = Container.from_bytes((SPLAT / f"gsc_format{fmt}_flowers_200_q2.ncb").read_bytes())
    assert c.meta["format"] == fmt
    for other in {1, 2, 3, 0} - {fmt}:  # a file claiming another format: refused
        with pytest.raises(BitstreamError, match="format"):
            coder.decode(Container.from_bytes(Container(
                **{**c.__dict__, "meta": {**c.meta, "format": other}}).to_bytes()))
    d = coder.decode(c)
    o = s.subset(_matched(s, c))
    st = cd.Steps(**c.meta["steps"])
    assert d.n == s.n and d.sh_degree == 2
    assert np.abs(d.scales - o.scales).max() <= st.scale / 2 + 1e-5
    assert np.abs(d.sh_rest - o.sh_rest).max() <= st.rest / 2 + 1e-5
    assert np.abs((cd.canonical_quats(o.quats) * d.quats).sum(axis=1)).min() > 0.99
    # format 3 at the same steps: the same attributes, Gaussian for Gaussian (only the
    # positions' quantizer changed)
    c3 = Container.from_bytes(coder.encode(s, 2, steps=st))
    d3 = coder.decode(c3)
    back = np.argsort(_matched(s, c3))[_matched(s, c)]  # format-3 row of each old row
    for a in ("scales", "opacities", "sh_dc", "sh_rest"):
        assert np.array_equal(getattr(d, a), getattr(d3, a)[back])
    bound = c.meta["base"] * 2.0 ** cd.size_class(np.rint(d.scales / st.scale).astype(int),
                                                   st.scale, c.meta["pos_shift"])
    assert (np.abs(d.means - d3.means[back]) <= bound[:, None] + 1e-6).all()


def test_positions_gap_code_round_trip_and_refuse_corruption():
    from neurocodec.codecs.splat import positions as P

    rng = np.random.default_rng(5)
    xi = np.concatenate([rng.integers(0, cd.GRID + 1, (500, 3)),
                         [[0, 0, 0], [cd.GRID] * 3, [cd.GRID] * 3]])
    k = np.concatenate([rng.integers(0, cd.KMAX + 1, 500), [0, 0, cd.KMAX]])
    assert np.array_equal(P.from_key(P.morton_key(xi)), xi)
    keys = np.sort(P.cell_keys(xi, k))
    order = np.argsort(P.cell_keys(xi, k), kind="stable")
    k = k[order]
    dec = P.from_key(keys)
    cell = np.left_shift(1, k)[:, None]
    assert (np.abs(dec - (xi[order] // cell * cell + cell // 2 * (k[:, None] > 0))) == 0).all()
    assert (np.abs(dec - xi[order]) <= np.maximum(cell // 2, 0)).all()
    lengths, bits = P.encode_gaps(keys, k)
    assert np.array_equal(P.decode_keys(lengths, k, bits), keys)
    with pytest.raises(BitstreamError):  # bits missing
        P.decode_keys(lengths, k, bits[:-1])
    with pytest.raises(BitstreamError):  # a gap length beyond 63 bits
        P.decode_keys(np.where(np.arange(len(k)) == 3, 64, lengths), k, bits)
    big = lengths.copy()
    big[-1] = 63  # the last cell far beyond the grid: refused, not wrapped
    need = int(np.maximum(big - 1, 0).sum())
    with pytest.raises(BitstreamError, match="outside"):
        P.decode_keys(big, k, bytes((need + 7) // 8))


def test_nearest_previous_is_brute_force():
    rng = np.random.default_rng(3)
    xi = rng.integers(0, 50, size=(300, 3)).astype(np.int64)
    nbr = cd.nearest_previous(xi, 16, 4)
    for i in range(300):
        cand = list(range(max(0, i - 16), i))
        d = [int(((xi[i] - xi[j]) ** 2).sum()) for j in cand]
        want = [cand[t] for t in sorted(range(len(cand)), key=lambda t: (d[t], -cand[t]))][:4]
        got = [int(v) for v in nbr[i] if v >= 0]
        assert got == want
    assert (nbr[0] == -1).all() and nbr[1, 0] == 0 and (nbr[1, 1:] == -1).all()


def test_context_streams_round_trip_and_refuse_corruption():
    from neurocodec.codecs.splat.streams import (
        CtxChannel,
        CtxSpec,
        decode_ctx_stream,
        encode_ctx_stream,
    )

    rng = np.random.default_rng(4)
    n = 3000
    nbr = cd.previous(n, 3)
    st = rng.integers(0, 3, n)
    v0 = np.cumsum(rng.integers(-3, 4, n))
    v1 = np.rint(rng.laplace(0, 5, n)).astype(np.int64) + v0 // 3
    v1[7] = 1 << 28  # an escape
    chs = [CtxChannel(v0, st, 3, n_self=6),
           CtxChannel(v1, np.zeros(n, int), 1, 4, 5, (0,), cls=st),
           CtxChannel(st, st, 3, pred_ok=False)]
    specs = [CtxSpec(st, 3, n_self=6), CtxSpec(np.zeros(n, int), 1, 4, 5, (0,),
                                               cls=lambda ch: ch[2] if len(ch) > 2 else st),
             CtxSpec(st, 3)]
    data = encode_ctx_stream(chs, nbr)
    assert data == encode_ctx_stream(chs, nbr)
    out = decode_ctx_stream(data, specs, nbr, n, "t")
    for a, b in zip(out, (v0, v1, st)):
        assert np.array_equal(a, b)
    with pytest.raises(BitstreamError):  # beyond the caller's bound
        decode_ctx_stream(data, specs, nbr, n, "t", limit=1 << 20)
    with pytest.raises(BitstreamError):  # a static context beyond its count
        decode_ctx_stream(data, [CtxSpec(st + 1, 3, n_self=6)] + specs[1:], nbr, n, "t")
    for cut in (3, 40, len(data) - 2):
        with pytest.raises(BitstreamError):
            decode_ctx_stream(data[:cut], specs, nbr, n, "t")
    b = bytearray(data)
    b[5] = 250  # a table that does not exist
    with pytest.raises(BitstreamError):
        decode_ctx_stream(bytes(b), specs, nbr, n, "t")
    # wide values with their low bits apart (positions); escapes in the high part
    w = rng.integers(-(1 << 16), 1 << 16, n)
    w[9] = -(1 << 29)
    sw = [CtxChannel(w, st, 3, 1, 4, (), pred_ok=False, split=True),
          CtxChannel(v0, st, 3, 1, 4, (0,), pred_ok=False, split=True)]
    data = encode_ctx_stream(sw, None)
    assert len(data) < n * 2 * 2.5  # ~17 bits per wide value, not 48 (escapes)
    out = decode_ctx_stream(data, [CtxSpec(st, 3, 1, 4, (), split=True),
                                   CtxSpec(st, 3, 1, 4, (0,), split=True)], None, n, "t")
    assert np.array_equal(out[0], w) and np.array_equal(out[1], v0)
    b = bytearray(data)
    b[5 + 3 * 4] = 9  # the first channel's first shift: beyond MAX_SHIFT
    with pytest.raises(BitstreamError, match="split"):
        decode_ctx_stream(bytes(b), [CtxSpec(st, 3, 1, 4, (), split=True),
                                     CtxSpec(st, 3, 1, 4, (0,), split=True)], None, n, "t")
    with pytest.raises(ValueError):  # a context from a later channel
        encode_ctx_stream([CtxChannel(v0, st, 3, 1, 4, (1,)), chs[1]], nbr)


def test_rotation_canonicalisation():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(500, 4)).astype(np.float32) * 3
    big, three = cd.smallest_three(q)
    big_n, three_n = cd.smallest_three(-q)
    assert np.array_equal(big, big_n) and np.allclose(three, three_n)
    assert (np.abs(three) <= np.sqrt(0.5) + 1e-9).all()
    u = cd.canonical_quats(q)
    rows = np.arange(len(u))
    assert (u[rows, np.argmax(np.abs(u), axis=1)] > 0).all()
    ref = q / np.linalg.norm(q, axis=1, keepdims=True)
    assert np.allclose(np.abs((u * ref).sum(axis=1)), 1, atol=1e-5)
    # a zero quaternion becomes the identity, not NaN
    assert np.allclose(cd.canonical_quats(np.zeros((1, 4), np.float32)), [[1, 0, 0, 0]])


def test_higher_quality_lower_error_more_bytes(coder):
    s = read_scene(SPLAT / "biker_300.ply")
    sizes, errs = [], []
    for q in (0, 3, 5):
        data = coder.encode(s, q)
        c = Container.from_bytes(data)
        d = coder.decode(c)
        o = s.subset(_matched(s, c))
        sizes.append(len(data))
        errs.append(float(np.abs(d.sh_dc - o.sh_dc).mean() + np.abs(d.scales - o.scales).mean()))
    assert sizes == sorted(sizes) and errs == sorted(errs, reverse=True)


def test_prune_is_reported(coder):
    s = read_scene(SPLAT / "biker_300.ply")
    s.opacities[:10] = -12.0  # invisible
    c = Container.from_bytes(coder.encode(s, 1, prune=1 / 255))
    assert c.meta["pruned"] >= 10 and c.shape[0] == s.n - c.meta["pruned"]


def test_hidden_pruning_drops_what_no_view_sees(coder):
    s = read_scene(SPLAT / "biker_300.ply")
    faint = s.subset(np.arange(s.n))
    faint.opacities[:20] = np.log(0.0045 / (1 - 0.0045))  # barely drawn
    faint.scales[:20] = np.log(1e-4)  # and far below a pixel
    mask = cd.hidden_mask(faint, 1e-4)
    assert mask[:20].all() and mask.sum() < 40
    assert not cd.hidden_mask(faint, 0.0).any()
    hollow = s.subset(np.arange(s.n))
    hollow.opacities[: s.n * 4 // 5] = -12.0  # 80 % never drawn (a room seen from outside)
    assert cd.hidden_mask(hollow, 0.5).sum() == int(cd.HIDDEN_MAX_FRACTION * s.n)
    c = Container.from_bytes(coder.encode(faint, 1, hidden=1e-4))
    assert c.meta["pruned_hidden"] == mask.sum() and c.shape[0] == s.n - mask.sum()
    assert coder.decode(c).n == c.shape[0]
    with pytest.raises(InputError):
        coder.encode(s, 1, hidden=1.5)


def test_corrupted_and_truncated_raise(coder):
    data = coder.encode(read_scene(SPLAT / "flowers_200.ply"), 1)
    for cut in (10, len(data) // 2, len(data) - 1):
        with pytest.raises(BitstreamError):
            coder.decode(Container.from_bytes(data[:cut]))
    rng = np.random.default_rng(1)
    for _ in range(20):
        b = bytearray(data)
        b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(BitstreamError):
            coder.decode(Container.from_bytes(bytes(b)))
    # a valid container whose sections were corrupted (checksums recomputed): still refused
    c = Container.from_bytes(data)
    for i in range(3):
        sec = list(c.sections)
        sec[i] = sec[i][: len(sec[i]) // 2]
        with pytest.raises(BitstreamError):
            coder.decode(Container.from_bytes(Container(**{**c.__dict__, "sections": sec}
                                                         ).to_bytes()))


def test_hostile_headers_refused_before_allocation(coder):
    c = Container.from_bytes(coder.encode(read_scene(SPLAT / "biker_300.ply"), 1))

    def bad(**kw):
        h = {**c.__dict__, **kw}
        with pytest.raises(BitstreamError):
            coder.decode(Container.from_bytes(Container(**h).to_bytes()))

    bad(shape=[1 << 40, 14])  # huge N: refused by the limit, nothing allocated
    bad(shape=[1 << 23, 14])  # within the limit but not what the streams hold
    bad(shape=[c.shape[0], 17])  # floats do not match the SH degree
    bad(sections=c.sections[:3])
    bad(sections=[*c.sections, b""])
    bad(sections=[c.sections[1], c.sections[0], *c.sections[2:]])
    bad(sections=[*c.sections[:2], c.sections[2] + b"\0", c.sections[3]])  # gap bits
    for key, val in (("sh_degree", 7), ("format", 4), ("format", 2), ("base", -1.0),
                     ("origin", [0, 0]),
                     ("steps", {"scale": 0.1}), ("rot_thresholds", [1, 2]),
                     ("pos_shift", "x")):
        bad(meta={**c.meta, key: val})
    with pytest.raises(BitstreamError):
        coder.decode(c, DecodeLimits(max_gaussians=10))


def test_cli_encode_decode(tmp_path, capsys):
    src = SPLAT / "flowers_200.ply"
    out = tmp_path / "s.ncb"
    assert main(["encode", str(src), "-o", str(out), "-q", "4"]) == 0
    c = Container.from_bytes(out.read_bytes())
    assert (c.medium, c.codec, c.meta["quality"]) == ("splat", "gsc", 4)
    ref = cd.SplatCoder().decode(c)
    for ext in ("ply", "spz"):
        dst = tmp_path / f"dec.{ext}"
        assert main(["decode", str(out), "-o", str(dst)]) == 0
        back = read_scene(dst)
        assert back.n == 200 and back.sh_degree == 2
        if ext == "ply":
            assert np.array_equal(back.means, ref.means)
    assert main(["decode", str(out), "-o", str(tmp_path / "dec.png")]) != 0
    pruned = tmp_path / "p.ncb"
    assert main(["encode", str(src), "-o", str(pruned), "-q", "4", "--prune-hidden", "0.01"]) == 0
    meta = Container.from_bytes(pruned.read_bytes()).meta
    assert meta["hidden"] == 0.01 and meta["pruned_hidden"] > 0
    assert main(["encode", str(src), "-o", str(tmp_path / "x.ncb"), "--prune-hidden", "1"]) != 0
    assert not (tmp_path / "x.ncb").exists()


def test_zoo_lists_the_coder(capsys):
    assert main(["zoo", "list", "--json", "--medium", "splat"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["medium"], r["default"]) for r in rows] == [("gsc", "splat", True)]
    assert rows[0]["qualities"] == cd.QUALITIES
