"""Splat scene files: every reader on a real sample, writers read back within each format's
quantization, hostile files refused with InputError, and (when node's splat-transform is
installed) interop with PlayCanvas's converter. Samples: tests/data/splat/README.md."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from neurocodec.codecs.limits import DecodeLimits
from neurocodec.codecs.splat.io import (
    READ_EXTS,
    WRITE_EXTS,
    decode_ply,
    decode_sog_bundle,
    decode_splat,
    decode_spz,
    encode_ply,
    encode_sog,
    encode_sog_files,
    encode_splat,
    encode_spz,
    morton_order,
    read_scene,
    read_spz,
    scene_format,
    write_scene,
)
from neurocodec.codecs.splat.io._common import normalize_quats, sigmoid
from neurocodec.codecs.splat.io.spz import rotate_x180
from neurocodec.codecs.splat.scene import SH_C0, SplatScene
from neurocodec.errors import InputError

DATA = Path(__file__).parent / "data" / "splat"
SH3 = DATA / "small_sh3_256.ply"      # genuine Inria layout: normals, f_rest_0..44
SH0 = DATA / "biker_300.ply"          # genuine SH-0 layout, no normals
SH2 = DATA / "flowers_200.ply"


@pytest.fixture(scope="module")
def sh3() -> SplatScene:
    return read_scene(SH3)


def qerr(a: SplatScene, b: SplatScene) -> float:
    """Largest 1 - |<qa, qb>| (0 for the same rotation; q and -q are the same)."""
    return float((1 - np.abs((normalize_quats(a.quats) * normalize_quats(b.quats)).sum(1))).max())


def colour(x: SplatScene) -> np.ndarray:
    return np.clip(0.5 + SH_C0 * x.sh_dc, 0, 1)


def close(a: SplatScene, b: SplatScene, pos: float, scale: float, quat: float, alpha: float,
          dc: float, rest: float = 0.0, rest_clip: float = np.inf, dc_clip: bool = False,
          scale_range: tuple[float, float] = (-np.inf, np.inf)) -> None:
    """``a`` (decoded) matches ``b`` (source) within the given steps; ``*_clip``/``*_range``:
    the format's representable range (values beyond are clamped by design)."""
    assert a.n == b.n and a.sh_degree == b.sh_degree

    def less(what: str, err: np.ndarray, bound) -> None:
        over = err >= np.broadcast_to(bound, err.shape)
        assert not over.any(), f"{what}: {int(over.sum())} errors over the bound, max {err.max()}"

    less("pos", np.abs(a.means - b.means), pos)
    less("scale", np.abs(a.scales - np.clip(b.scales, *scale_range)), scale)
    assert qerr(a, b) < quat
    less("alpha", np.abs(sigmoid(a.opacities) - sigmoid(b.opacities)), alpha)
    if dc_clip:
        less("colour", np.abs(colour(a) - colour(b)), dc)
    else:
        less("dc", np.abs(a.sh_dc - b.sh_dc), dc)
    if b.sh_rest.size:
        less("sh_rest", np.abs(a.sh_rest - np.clip(b.sh_rest, -rest_clip, rest_clip)), rest)


def matched(a: SplatScene, b: SplatScene) -> SplatScene:
    """``b``'s rows in the order of ``a``'s (a reordering writer: Morton-sorted SOG,
    compressed PLY), by an optimal assignment on all attributes."""
    opt = pytest.importorskip("scipy.optimize")
    span = np.ptp(b.means, axis=0) + 1e-9

    def f(x: SplatScene) -> np.ndarray:
        return np.concatenate([x.means / span, x.scales / 4, colour(x),
                               np.clip(x.sh_rest.reshape(x.n, -1), -1, 1),
                               sigmoid(x.opacities)[:, None]], axis=1)

    cost = ((f(a)[:, None] - f(b)[None]) ** 2).sum(-1)
    _, j = opt.linear_sum_assignment(cost)
    return b.subset(j)


def raises(fn, *args, match: str = "", **kw) -> str:
    with pytest.raises(InputError, match=match) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


# --------------------------------------------------------------------------------------- PLY

@pytest.mark.parametrize("name", ["small_sh3_256.ply", "biker_300.ply", "flowers_200.ply",
                                  "luma_seal_300.ply"])
def test_ply_round_trip_is_byte_exact(name, tmp_path):
    data = (DATA / name).read_bytes()
    s = decode_ply(data)
    assert encode_ply(s) == data
    write_scene(tmp_path / "out.ply", s)
    assert (tmp_path / "out.ply").read_bytes() == data


def test_ply_reads_the_reference_layout(sh3):
    assert sh3.n == 256 and sh3.sh_degree == 3 and list(sh3.extra) == ["nx", "ny", "nz"]
    # channel-major in the file: f_rest_{c*15 + k} is coefficient k+1 of channel c
    data = SH3.read_bytes()
    start = data.index(b"end_header\n") + 11
    row0 = np.frombuffer(data, "<f4", 62, start)  # x y z nx ny nz dc0..2 rest0..44 ...
    rest = row0[9:54]
    for c in range(3):
        for k in range(15):
            assert sh3.sh_rest[0, k, c] == rest[c * 15 + k]
    assert (sh3.means[0] == row0[:3]).all() and (sh3.quats[0] == row0[58:62]).all()
    assert read_scene(SH0).sh_rest.shape == (300, 0, 3)


def test_ply_big_endian_and_extra_properties(sh3, tmp_path):
    extra = dict(sh3.extra, red=np.arange(256, dtype=np.uint8), rank=np.arange(256) * 7)
    s = SplatScene(sh3.means, sh3.scales, sh3.quats, sh3.opacities, sh3.sh_dc, sh3.sh_rest,
                   {k: (v.astype(np.int32) if k == "rank" else v) for k, v in extra.items()})
    back = decode_ply(encode_ply(s))
    assert list(back.extra) == ["nx", "ny", "nz", "red", "rank"]
    assert back.extra["red"].dtype == np.uint8 and (back.extra["rank"] == s.extra["rank"]).all()
    # the same scene as a big-endian PLY
    data = SH3.read_bytes()
    end = data.index(b"end_header\n") + 11
    be = (data[:end].replace(b"binary_little_endian", b"binary_big_endian")
          + np.frombuffer(data, "<f4", offset=end).astype(">f4").tobytes())
    b2 = decode_ply(be)
    assert (b2.means == sh3.means).all() and (b2.sh_rest == sh3.sh_rest).all()


def _ply(header_lines: list[str], body: bytes) -> bytes:
    return ("\n".join(["ply", "format binary_little_endian 1.0", *header_lines, "end_header"])
            + "\n").encode() + body


def test_ply_hostile_files(tmp_path):
    good = SH0.read_bytes()
    end = good.index(b"end_header\n") + 11
    head = good[:end].decode()
    raises(decode_ply, good[:-7], match="truncated")
    raises(decode_ply, good + b"\0" * 56, match="trailing")
    raises(decode_ply, head.replace("vertex 300", "vertex 301").encode() + good[end:],
           match="truncated")
    raises(decode_ply, head.replace("vertex 300", "vertex 299").encode() + good[end:],
           match="trailing")
    t = time.perf_counter()  # a huge count is refused from the header, nothing allocated
    raises(decode_ply, head.replace("vertex 300", "vertex 99999999999999999").encode() + b"\0" * 64,
           match="declares")
    assert time.perf_counter() - t < 1
    raises(decode_ply, head.replace("binary_little_endian", "ascii").encode() + b"1 2 3\n",
           match="ASCII")
    raises(decode_ply, b"PLY\n" + good[4:], match="not a PLY")
    raises(decode_ply, good[:end - 11] + b"\0" * 100, match="end_header")
    raises(decode_ply, _ply(["element vertex 1", "property list uchar int vertex_indices"], b""),
           match="list property")
    raises(decode_ply, _ply(["element vertex 1", "property half x"], b"\0\0"), match="property")
    raises(decode_ply, _ply(["element vertex 1", "property float x", "property float x"],
                            b"\0" * 8), match="twice")
    raises(decode_ply, _ply(["element vertex 1", "property float x", "property float y",
                             "property float z"], b"\0" * 12), match="not a 3DGS PLY")
    raises(decode_ply, head.replace("property float x", "property blob x").encode() + good[end:],
           match="bad property")
    raises(decode_ply, _ply(["property float x"], b""), match="before any element")
    bad_rest = head.replace("property float opacity", "property float f_rest_0\n"
                            "property float opacity").encode()
    raises(decode_ply, bad_rest + b"\0" * (300 * 60), match="f_rest")
    raises(read_scene, tmp_path / "missing.ply", match="no such file")


def test_nonfinite_gaussians_are_dropped_with_a_warning(sh3):
    means = sh3.means.copy()
    rest = sh3.sh_rest.copy()
    means[3, 1] = np.nan
    rest[7, 14, 2] = np.inf
    s = SplatScene(means, sh3.scales, sh3.quats, sh3.opacities, sh3.sh_dc, rest, sh3.extra)
    with pytest.warns(UserWarning, match="dropped 2 of 256 Gaussians"):
        back = decode_ply(encode_ply(s), "nan.ply")
    keep = np.setdiff1d(np.arange(256), [3, 7])
    assert back.n == 254 and back.finite().all()
    assert (back.means == sh3.means[keep]).all() and (back.extra["nx"] == sh3.extra["nx"][keep]).all()
    # .splat: a zero scale has no log: dropped, not passed on as -inf
    row = bytearray(encode_splat(sh3.subset(np.arange(2))))
    row[12:16] = struct.pack("<f", 0.0)
    with pytest.warns(UserWarning, match="dropped 1 of 2"):
        assert decode_splat(bytes(row)).n == 1
    with pytest.raises(InputError, match="NaN/Inf"):
        encode_spz(s)


# ------------------------------------------------------------------------- compressed PLY

def test_compressed_ply_matches_its_float_decode():
    # SuperSplat's own file (first 2 chunks) against the PLY that was decoded from it
    c = read_scene(DATA / "biker_512.compressed.ply").subset(np.arange(300))
    ply = read_scene(SH0)
    close(c, ply, pos=1e-5, scale=1e-5, quat=1e-9, alpha=0.5 / 255 + 1e-6, dc=1e-5)


def test_compressed_ply_with_sh_from_splat_transform(sh3):
    a = read_scene(DATA / "st_small_sh3.compressed.ply")
    b = matched(a, sh3)
    span = np.ptp(b.means, axis=0)  # one chunk: its box is the scene's
    pos = span / np.array([2047, 1023, 2047]) * 0.6  # half a step of (about) that box
    close(a, b, pos=pos, scale=np.ptp(b.scales, 0) / 1023, quat=1e-3, alpha=0.5 / 255 + 1e-4,
          dc=1 / 255, dc_clip=True, rest=4 / 256 + 1e-6, rest_clip=4)


def test_compressed_ply_hostile():
    data = (DATA / "biker_512.compressed.ply").read_bytes()
    end = data.index(b"end_header\n") + 11
    head = data[:end].decode()
    bad = head.replace("element chunk 2", "element chunk 1").encode() + data[end + 72:]
    raises(decode_ply, bad, match="chunks")
    raises(decode_ply, data[:-4], match="truncated")


# ------------------------------------------------------------------------------------ .splat

def test_splat_matches_its_float_decode(tmp_path):
    s = read_scene(DATA / "luma_seal_300.splat")
    ply = read_scene(DATA / "luma_seal_300.ply")  # decoded from the same .splat
    close(s, ply, pos=1e-7, scale=1e-6, quat=1e-6, alpha=0.5 / 255 + 1e-6, dc=1e-6)
    write_scene(tmp_path / "x.splat", s)
    # quaternions are re-normalised before 8-bit quantization: within a step, not bit-exact
    close(read_scene(tmp_path / "x.splat"), s, pos=1e-7, scale=1e-6, quat=2e-4,
          alpha=1e-6, dc=1e-6)
    raises(decode_splat, b"\0" * 33, match="multiple of 32")


# --------------------------------------------------------------------------------------- SPZ

SPZ_STEPS = dict(pos=0.5 / 4096 + 1e-6, scale=1 / 32 + 1e-5, quat=1e-5,
                 alpha=0.5 / 255 + 1e-5, dc=0.5 / (0.15 * 255) + 1e-5,
                 rest=1 / 16 + 1 / 256 + 1e-6, rest_clip=1.0, scale_range=(-10, 15.9 / 16 + 5))


def test_spz_v4_from_niantic_is_rub():
    # biker.spz's own bytes (first 300 Gaussians), stored in Niantic's RUB axes
    raw = read_spz(DATA / "biker_300_rub.spz")
    spz = read_spz(DATA / "biker_300_rub.spz", rub=True)
    ply = read_scene(SH0)
    assert (raw.means[:, 1:] * ply.means[:, 1:] < 0).mean() > 0.9  # upside down unless rub
    close(spz, ply, **{**SPZ_STEPS, "scale_range": (-10, 5.9375)})


@pytest.mark.parametrize("name", ["st_small_sh3.spz", "st_small_sh3_v3.spz"])
def test_spz_from_splat_transform(name, sh3):
    close(read_scene(DATA / name), sh3, **SPZ_STEPS)


@pytest.mark.parametrize("version", [2, 3, 4])
def test_spz_writer_round_trip(version, sh3, tmp_path):
    out = tmp_path / "x.spz"
    write_scene(out, sh3, version=version)
    back = read_scene(out)
    steps = dict(SPZ_STEPS, quat=1e-5 if version >= 3 else 1e-2)  # v2: 8-bit x, y, z
    close(back, sh3, **steps)
    head = gzip.decompress(out.read_bytes())[:16] if version < 4 else out.read_bytes()[:16]
    assert struct.unpack("<4sI", head[:8]) == (b"NGSP", version)
    flowers = read_scene(SH2)
    close(decode_spz(encode_spz(flowers, version=version)), flowers, **steps)
    assert encode_spz(sh3, version=version) == encode_spz(sh3, version=version)


def test_spz_rub_and_wide_positions(sh3):
    back = decode_spz(encode_spz(sh3, rub=True), rub=True)
    close(back, sh3, **SPZ_STEPS)
    flipped = decode_spz(encode_spz(sh3, rub=True))
    np.testing.assert_allclose(flipped.means[:, 1:], -sh3.means[:, 1:], atol=1e-3)
    # beyond ±2048 the writer gives up fractional bits instead of wrapping around
    far = SplatScene(sh3.means * 400, sh3.scales, sh3.quats, sh3.opacities, sh3.sh_dc,
                     sh3.sh_rest)
    data = gzip.decompress(encode_spz(far))
    frac = data[13]
    assert frac < 12
    np.testing.assert_array_less(np.abs(decode_spz(encode_spz(far)).means - far.means),
                                 0.5 / (1 << frac) + 1e-3)


def _eval_sh(s: SplatScene, d: np.ndarray) -> np.ndarray:
    """Colour of each Gaussian seen along unit directions ``d [N, 3]`` (3DGS's SH basis)."""
    x, y, z = d.T
    c2 = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
          0.5462742152960396]
    c3 = [-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
          -0.4570457994644658, 1.445305721320277, -0.5900435899266435]
    c1 = 0.4886025119029199
    basis = [-c1 * y, c1 * z, -c1 * x, c2[0] * x * y, c2[1] * y * z,
             c2[2] * (2 * z * z - x * x - y * y), c2[3] * x * z, c2[4] * (x * x - y * y),
             c3[0] * y * (3 * x * x - y * y), c3[1] * x * y * z,
             c3[2] * y * (4 * z * z - x * x - y * y), c3[3] * z * (2 * z * z - 3 * x * x - 3 * y * y),
             c3[4] * x * (4 * z * z - x * x - y * y), c3[5] * z * (x * x - y * y),
             c3[6] * x * (x * x - 3 * y * y)]
    out = SH_C0 * s.sh_dc.astype(np.float64)
    for k in range(s.sh_rest.shape[1]):
        out += basis[k][:, None] * s.sh_rest[:, k]
    return out


def _rotmat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = normalize_quats(q).T
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
                    axis=1).reshape(-1, 3, 3)


def test_rub_rotation_is_a_true_rotation(sh3):
    """The RUB conversion moves colour, position and orientation together: every Gaussian of
    the rotated scene looks, from the rotated direction, as the original does."""
    r = rotate_x180(sh3)
    flip = np.diag([1.0, -1.0, -1.0])
    d = np.random.default_rng(0).normal(size=(sh3.n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    np.testing.assert_allclose(_eval_sh(r, d @ flip), _eval_sh(sh3, d), atol=1e-5)
    np.testing.assert_allclose(r.means, sh3.means @ flip)
    np.testing.assert_allclose(_rotmat(r.quats), flip @ _rotmat(sh3.quats) @ flip, atol=1e-6)


def _v4_parts(data: bytes) -> tuple[int, int]:
    return data[15], struct.unpack_from("<I", data, 16)[0]


def test_spz_hostile(sh3):
    v3 = encode_spz(sh3, version=3)
    raw = gzip.decompress(v3)
    raises(decode_spz, v3[: len(v3) // 2], match="truncated|corrupt")
    raises(decode_spz, v3[:12], match="inside its header")
    raises(decode_spz, gzip.compress(raw[:-1]), match="truncated")
    for n in (255, 257):  # a count that lies either way
        lie = raw[:8] + struct.pack("<I", n) + raw[12:]
        raises(decode_spz, gzip.compress(lie), match="declares|truncated|more than")
    raises(decode_spz, b"\x1f\x8b" + v3[2:40], match="corrupt|truncated|header")
    raises(decode_spz, gzip.compress(raw[:4] + struct.pack("<I", 9) + raw[8:]), match="version")
    raises(decode_spz, gzip.compress(raw[:12] + b"\x07" + raw[13:]), match="SH degree")
    raises(decode_spz, b"NOPE" * 8, match="not an SPZ")
    t = time.perf_counter()
    huge = gzip.compress(raw[:8] + struct.pack("<I", 2**31) + raw[12:])
    raises(decode_spz, huge, match="--max-gaussians")
    raises(decode_spz, huge, limits=DecodeLimits(max_gaussians=2**32), match="more than")
    assert time.perf_counter() - t < 1

    v4 = encode_spz(sh3, version=4)
    ns, toc = _v4_parts(v4)
    assert ns == 6 and toc == 32
    raises(decode_spz, v4[:-10], match="truncated")
    raises(decode_spz, v4[:40], match="truncated")
    lie = bytearray(v4)
    struct.pack_into("<Q", lie, toc + 8, 257 * 9)  # positions stream's uncompressed size
    raises(decode_spz, bytes(lie), match="stream 0 declares")
    lie = bytearray(v4)
    lie[toc + 16 * ns + 20: toc + 16 * ns + 40] = b"\xff" * 20  # inside the first zstd stream
    raises(decode_spz, bytes(lie), match="stream 0")
    lie = bytearray(v4)
    lie[15] = 5
    raises(decode_spz, bytes(lie), match="streams")
    lie = bytearray(v4)
    struct.pack_into("<I", lie, 8, 2**24)  # within the cap, but the table of contents disagrees
    raises(decode_spz, bytes(lie), match="declares")
    lie = bytearray(v4)
    struct.pack_into("<I", lie, 8, 2**30)
    raises(decode_spz, bytes(lie), match="--max-gaussians")


# --------------------------------------------------------------------------------------- SOG

def _sog_steps(src: SplatScene, steps: float = 0.5) -> dict:
    """Position bound: ``steps`` 16-bit steps of the log-transformed range (ours rounds: half a
    step; splat-transform truncates: a whole one)."""
    t = np.sign(src.means) * np.log1p(np.abs(src.means))
    step = np.ptp(t, axis=0) / 65535
    pos = (1 + np.abs(src.means)) * np.expm1(step * steps + 1e-7) + 1e-6
    return dict(pos=pos, quat=2e-4, alpha=0.5 / 255 + 1e-4)


@pytest.mark.parametrize("name", ["st_small_sh3.sog", "st_small_sh3_sog",
                                  "st_small_sh3_sog/meta.json"])
def test_sog_from_splat_transform(name, sh3):
    a = read_scene(DATA / name)
    b = matched(a, sh3)
    # splat-transform truncates where ours rounds: a whole step of position and alpha
    close(a, b, scale=0.01, dc=0.005, rest=0.05, **{**_sog_steps(b, 1.0), "alpha": 1 / 255 + 1e-4})
    fl = read_scene(SH2)
    a = read_scene(DATA / "st_flowers_200.sog")
    b = matched(a, fl)
    close(a, b, scale=0.01, dc=0.01, rest=0.2, **{**_sog_steps(b, 1.0), "alpha": 1 / 255 + 1e-4})


def test_sog_writer_round_trip(sh3, tmp_path):
    src = sh3.subset(morton_order(sh3.means))  # the order the writer stores them in
    for out in (tmp_path / "x.sog", tmp_path / "dir" / "meta.json"):
        write_scene(out, sh3)
        back = read_scene(out)
        # scales and colours share a 256-entry codebook: tails are coarse, the bulk is fine
        close(back, src, scale=0.5, dc=0.1, rest=0.02, **_sog_steps(src))
        assert np.sqrt(((back.scales - src.scales) ** 2).mean()) < 0.03
        assert np.sqrt(((back.sh_dc - src.sh_dc) ** 2).mean()) < 0.03
    assert sorted(os.listdir(tmp_path / "dir")) == sorted(
        ["meta.json", "means_l.webp", "means_u.webp", "scales.webp", "quats.webp", "sh0.webp",
         "shN_centroids.webp", "shN_labels.webp"])
    assert read_scene(tmp_path / "dir").n == 256
    unsorted = decode_sog_bundle(encode_sog(sh3, morton=False))
    close(unsorted, sh3, scale=0.5, dc=0.1, rest=0.02, **_sog_steps(sh3))
    assert encode_sog(sh3) == encode_sog(sh3)  # deterministic
    flowers = read_scene(SH2)
    back = decode_sog_bundle(encode_sog(flowers))
    close(back, flowers.subset(morton_order(flowers.means)), scale=0.5, dc=0.1, rest=0.05,
          **_sog_steps(flowers))


def test_sog_palette_above_65536_rows():
    """More Gaussians than palette entries: the two-level k-means path (cheap, synthetic)."""
    from neurocodec.codecs.splat.io.sog import sh_palette

    x = np.random.default_rng(1).normal(size=(70000, 9)).astype(np.float32)
    x[:, :3] *= 0.1
    pal, lab = sh_palette(x, iters=1)
    assert len(pal) <= 65536 and lab.max() < len(pal) and lab.shape == (70000,)
    assert np.sqrt(((pal[lab] - x) ** 2).mean()) < 0.5 * x.std()


def _bundle(files: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in files.items():
            zf.writestr(k, v)
    return buf.getvalue()


def test_sog_hostile(sh3):
    import imagecodecs

    files = encode_sog_files(sh3)
    meta = json.loads(files["meta.json"])

    def with_meta(**changes) -> bytes:
        return _bundle({**files, "meta.json": json.dumps({**meta, **changes}).encode()})

    raises(decode_sog_bundle, _bundle({**files, "meta.json": b"{nope"}), match="not JSON")
    raises(decode_sog_bundle, with_meta(version=None), match="v1")
    raises(decode_sog_bundle, with_meta(version=3), match="version")
    raises(decode_sog_bundle, with_meta(count=257), match="fewer")
    raises(decode_sog_bundle, with_meta(count=-1), match="count")
    raises(decode_sog_bundle, with_meta(count=2**30), match="--max-gaussians")
    raises(decode_sog_bundle, with_meta(means={**meta["means"], "files": ["../x", "y"]}),
           match="bad name")
    raises(decode_sog_bundle, with_meta(scales={"codebook": [1.0] * 300, "files": ["scales.webp"]}),
           match="at most 256")
    raises(decode_sog_bundle, with_meta(sh0={"codebook": [0.0] * 4, "files": ["sh0.webp"]}),
           match="indexes past")
    raises(decode_sog_bundle, with_meta(means={**meta["means"], "mins": [0, "a", 1]}),
           match="numbers")
    raises(decode_sog_bundle, _bundle({k: v for k, v in files.items() if k != "quats.webp"}),
           match="no 'quats.webp'")
    raises(decode_sog_bundle, _bundle({**files, "sh0.webp": b"RIFF" + b"\0" * 40}),
           match="not a WebP")
    big = bytes(imagecodecs.webp_encode(np.zeros((64, 4096, 4), np.uint8), lossless=True))
    raises(decode_sog_bundle, _bundle({**files, "sh0.webp": big}), match="far more")
    corrupt = bytearray(files["quats.webp"])
    corrupt[40:] = b"\x55" * (len(corrupt) - 40)
    raises(decode_sog_bundle, _bundle({**files, "quats.webp": bytes(corrupt)}),
           match="cannot be decoded")
    raises(decode_sog_bundle, b"PK\x03\x04" + b"\0" * 50, match="zip")
    raises(decode_sog_bundle, with_meta(shN={**meta["shN"], "bands": 2}), match="wide")


# --------------------------------------------------------------------- dispatch and writing

def test_dispatch_and_exts(tmp_path, sh3):
    assert ".ply" in READ_EXTS and "meta.json" in READ_EXTS and ".spz" in WRITE_EXTS
    assert scene_format("a.SPZ") == "spz" and scene_format("x/meta.json") == "sog-folder"
    assert scene_format(DATA / "st_small_sh3_sog") == "sog-folder" and scene_format("a.png") is None
    (tmp_path / "junk.bin").write_bytes(b"hello world")
    raises(read_scene, tmp_path / "junk.bin", match="not a splat scene")
    (tmp_path / "empty").mkdir()
    raises(read_scene, tmp_path / "empty", match="not a SOG folder")
    # content wins over the name: an SPZ called .ply is still read
    (tmp_path / "really_spz.ply").write_bytes(encode_spz(sh3))
    assert read_scene(tmp_path / "really_spz.ply").n == 256
    raises(write_scene, tmp_path / "x.png", sh3, match="unsupported splat output")
    raises(write_scene, tmp_path / "x.compressed.ply", sh3, match="compressed PLY")


def test_writers_are_atomic_and_refuse_to_overwrite(tmp_path, sh3):
    for name in ("a.ply", "a.spz", "a.sog", "a.splat"):
        p = tmp_path / name
        write_scene(p, sh3)
        before = p.read_bytes()
        raises(write_scene, p, sh3, match="exists")
        assert p.read_bytes() == before
        write_scene(p, sh3.subset(np.arange(10)), force=True)
        assert read_scene(p).n == 10
    folder = tmp_path / "sog"
    write_scene(folder / "meta.json", sh3)
    raises(write_scene, folder / "meta.json", sh3, match="exists")
    write_scene(folder / "meta.json", sh3.subset(np.arange(20)), force=True)
    assert read_scene(folder).n == 20
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.md").write_text("keep me")
    raises(write_scene, other / "meta.json", sh3, force=True, match="not a SOG folder")
    assert (other / "notes.md").read_text() == "keep me"
    leftovers = [f for f in os.listdir(tmp_path) if f.startswith(".")]
    assert leftovers == []
    raises(write_scene, tmp_path / "nodir" / "x.ply", sh3, match="does not exist")
    empty = SplatScene(*(np.zeros((0,) + s, np.float32) for s in [(3,), (3,), (4,), (), (3,),
                                                                   (0, 3)]))
    raises(write_scene, tmp_path / "e.sog", empty, match="no Gaussians")
    write_scene(tmp_path / "e.ply", empty)
    assert read_scene(tmp_path / "e.ply").n == 0


# ---------------------------------------------------------------------- splat-transform interop

def _splat_transform() -> list[str] | None:
    for cand in (os.environ.get("SPLAT_TRANSFORM"), shutil.which("splat-transform"),
                 str(Path.home() / "node_modules" / ".bin" / "splat-transform")):
        if cand and Path(cand).is_file() and shutil.which("node"):
            return [cand]
    return None


ST = _splat_transform()


def _convert(src: Path, dst: Path, *flags: str) -> None:
    r = subprocess.run([*ST, "-q", "-w", "-g", "cpu", *flags, str(src), str(dst)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.skipif(ST is None, reason="splat-transform (npm @playcanvas/splat-transform) and "
                                       "node not found; set SPLAT_TRANSFORM to its CLI")
def test_interop_with_splat_transform(tmp_path, sh3):
    # files we write open in splat-transform and give back what our reader gives back
    for name, opts in (("ours_v3.spz", {"version": 3}), ("ours_v4.spz", {"version": 4}),
                       ("ours.sog", {}), ("ours.ply", {})):
        ours = tmp_path / name
        write_scene(ours, sh3, **opts)
        _convert(ours, tmp_path / f"{name}.st.ply")
        theirs, mine = read_scene(tmp_path / f"{name}.st.ply"), read_scene(ours)
        close(theirs, mine, pos=1e-6, scale=1e-6, quat=1e-6, alpha=0.5 / 255 + 1e-6,
              dc=1e-5, rest=1e-6)
    (tmp_path / "dir").mkdir()
    write_scene(tmp_path / "dir" / "meta.json", sh3)
    _convert(tmp_path / "dir" / "meta.json", tmp_path / "dir.st.ply")
    close(read_scene(tmp_path / "dir.st.ply"), read_scene(tmp_path / "dir"), pos=1e-6,
          scale=1e-6, quat=1e-6, alpha=0.5 / 255 + 1e-6, dc=1e-5, rest=1e-6)
    # its outputs of a PLY we wrote read back through our readers as through its own
    src = tmp_path / "ours.ply"
    for out, flags in (("st.spz", ()), ("st.compressed.ply", ()), ("st.sog", ("-i", "1"))):
        _convert(src, tmp_path / out, *flags)
        _convert(tmp_path / out, tmp_path / f"{out}.back.ply")
        mine, theirs = read_scene(tmp_path / out), read_scene(tmp_path / f"{out}.back.ply")
        close(mine, theirs, pos=1e-5, scale=1e-5, quat=1e-6, alpha=0.5 / 255 + 1e-6,
              dc=1e-5, rest=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing non-finite comes back
        read_scene(tmp_path / "st.sog")


@pytest.mark.parametrize("name", ["small_sh3_256.ply", "st_small_sh3.compressed.ply",
                                  "st_small_sh3.spz", "st_small_sh3_v3.spz", "st_small_sh3.sog",
                                  "luma_seal_300.splat"])
def test_mutated_files_fail_cleanly(name, tmp_path):
    """Random byte flips and cuts: an InputError or a finite scene, never another exception."""
    data = (DATA / name).read_bytes()
    rng = np.random.default_rng(0)
    for it in range(40):
        b = bytearray(data)
        if it % 2:
            b = b[:int(rng.integers(0, len(b)))]
        else:
            for i in rng.integers(0, min(len(b), 512) if it % 4 else len(b), 4):
                b[int(i)] = int(rng.integers(0, 256))
        p = tmp_path / f"m{it}{name[name.index('.'):]}"
        p.write_bytes(bytes(b))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert read_scene(p).finite().all()
        except InputError:
            pass
