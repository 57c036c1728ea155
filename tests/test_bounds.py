"""Container v2 and bounded decoding: crafted and fuzzed files fail fast, with a one-line
BitstreamError, before anything sized by the file is allocated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from neurocodec.codecs.container import Container, uleb128
from neurocodec.codecs.image.codec import ImageCodec
from neurocodec.codecs.image.hyperprior import HyperpriorConfig, ScaleHyperprior
from neurocodec.codecs.image.mlic import MLICConfig, MLICModel
from neurocodec.codecs.limits import DecodeLimits, check_int, check_int_list, check_str
from neurocodec.codecs.registry import load_codec
from neurocodec.entropy import rans
from neurocodec.errors import BitstreamError, InputError

from .bounds_files import raw_container
from .conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
# Decoded PSNR of the v1 files when they were written (tests/data/SOURCES.md); the synthesis
# may move by a level here and there, not by more than this.
V1_PSNR = {"v1_hyperprior.ncb": 31.2807, "v1_mlic.ncb": 31.8344}


@cache
def crop() -> np.ndarray:
    img = np.asarray(Image.open(DATA / "kodim19_crop75x53.png").convert("RGB"))
    return img[:21, :35].copy()  # odd sizes, tiny: decodes in milliseconds


@cache
def tiny_codec(arch: str = "hyperprior") -> ImageCodec:
    torch.manual_seed(0)
    if arch == "hyperprior":
        m = ScaleHyperprior(HyperpriorConfig(N=8, M=12, lmbdas=(0.01, 0.05))).eval()
    else:
        m = MLICModel(MLICConfig(N=16, M=20, slices=4, hidden=16, lmbdas=(0.01, 0.05))).eval()
    m.build_z_tables()
    return ImageCodec(m, f"tiny-{arch}", "0" * 16)


@cache
def tiny_file(arch: str = "hyperprior") -> bytes:
    return tiny_codec(arch).encode(crop(), 1)


def header_of(data: bytes) -> dict:
    c = Container.from_bytes(data)
    return c.header()


def rewrite(data: bytes, version: int = 2, **changes) -> bytes:
    """``data`` with header fields (``meta_<key>`` for meta keys; ``sections``) replaced, CRCs
    recomputed, no validation."""
    c = Container.from_bytes(data)
    h = c.header()
    sections = changes.pop("sections", c.sections)
    for k, v in changes.items():
        if k.startswith("meta_"):
            h["meta"] = {**h["meta"], k[5:]: v}
        else:
            h[k] = v
    if version == 1:
        h.pop("medium", None)
    return raw_container(h, sections, version)


def decode(data: bytes, codec: ImageCodec | None = None, limits: DecodeLimits | None = None):
    return (codec or tiny_codec()).decode(Container.from_bytes(data), limits)


def one_line_error(data: bytes, match: str, **kw) -> str:
    with pytest.raises(BitstreamError, match=match) as e:
        decode(data, **kw)
    assert "\n" not in str(e.value) and len(str(e.value)) < 200
    return str(e.value)


# ---------------------------------------------------------------------------- container


def test_v2_round_trip_every_medium_and_large_shapes():
    for medium in ("image", "video", "splat"):
        c = Container(codec="x", model="m", weights="ab" * 8, shape=[6_000_000, 59],
                      meta={"fps": 29.97, "tags": ["a", None, True]}, sections=[b"a", b""],
                      medium=medium)
        data = c.to_bytes()
        assert data[4] == 2
        assert Container.from_bytes(data) == c
    big = Container(codec="x", model="m", weights="", shape=[1 << 40], sections=[b""] * 65535)
    assert len(Container.from_bytes(big.to_bytes()).sections) == 65535
    with pytest.raises(ValueError, match="65535"):
        Container(codec="x", model="m", weights="", shape=[1], sections=[b""] * 65536).to_bytes()
    with pytest.raises(ValueError, match="medium"):
        Container(codec="x", model="m", weights="", shape=[1], medium="Audio!").to_bytes()


def test_v1_written_by_hand_reads_as_image():
    h = {"codec": "hyperprior", "model": "m", "weights": "0" * 16, "shape": [5, 7, 3],
         "meta": {"quality": 1}}
    c = Container.from_bytes(raw_container(h, [b"abc", b"de"], version=1))
    assert (c.medium, c.shape, c.sections) == ("image", [5, 7, 3], [b"abc", b"de"])
    with pytest.raises(BitstreamError, match="unknown"):  # v1 had no medium field
        Container.from_bytes(raw_container({**h, "medium": "image"}, [], version=1))
    with pytest.raises(BitstreamError, match="missing"):  # v2 requires it
        Container.from_bytes(raw_container(h, [], version=2))
    with pytest.raises(BitstreamError, match="absurd"):  # v1 had at most 256 sections
        Container.from_bytes(raw_container(h, [b""] * 257, version=1))


GOOD = {"medium": "image", "codec": "hyperprior", "model": "m", "weights": "0" * 16,
        "shape": [5, 7, 3], "meta": {"quality": 1}}


@pytest.mark.parametrize(("field", "value", "match"), [
    ("medium", "Audio!", "medium"), ("medium", 1, "medium"), ("medium", "", "medium"),
    ("codec", "c" * 129, "codec"), ("codec", None, "codec"), ("model", ["m"], "model"),
    ("weights", "XYZ", "weights"), ("weights", "0" * 65, "weights"),
    ("shape", [], "shape"), ("shape", [5, 0, 3], r"shape\[1\]"), ("shape", [-5, 7, 3], "shape"),
    ("shape", [(1 << 40) + 1], "shape"), ("shape", [True, 7, 3], "shape"),
    ("shape", [5.0, 7, 3], "shape"), ("shape", [1] * 9, "shape"), ("shape", "5x7", "shape"),
    ("meta", [], "meta"), ("meta", {"k": "v" * 1025}, "meta.k"), ("meta", {"": 1}, "key"),
    ("meta", {"n": 1 << 64}, "64 bits"), ("meta", {"d": [[[[[[[[[[1]]]]]]]]]]}, "deeper"),
])
def test_every_header_field_is_type_checked(field, value, match):
    with pytest.raises(BitstreamError, match=match):
        Container.from_bytes(raw_container({**GOOD, field: value}, []))


@pytest.mark.parametrize("head", [
    b'{"medium":"image","medium":"video","codec":"c","model":"m","weights":"","shape":[1],"meta":{}}',
    b'{"medium":"image","codec":"c","model":"m","weights":"","shape":[1],"meta":{"x":NaN}}',
    b"[" * 60000 + b"]" * 5000,
    '{"medium":"image"}'.encode("utf-16"),
    b"[1, 2]",
])
def test_header_json_is_strict(head):
    with pytest.raises(BitstreamError):
        Container.from_bytes(raw_container(head, []))


@pytest.mark.parametrize(("length", "match"), [
    (uleb128(1 << 40), "truncated.*needs 1099511627776"), (uleb128((1 << 40) + 1), "over"),
    (b"\x83\x80\x00", "minimally"), (b"\x80" * 6 + b"\x01", "longer than 6"),
    (b"\x80\x80", "cut short"),
])
def test_section_lengths_are_checked_before_reading(length, match):
    head = json.dumps(GOOD, sort_keys=True, separators=(",", ":")).encode()
    data = raw_container(GOOD, [])[:16 + len(head)] + length
    data = data[:6] + b"\x01\x00" + data[8:]  # one section
    with pytest.raises(BitstreamError, match=match):
        Container.from_bytes(data + (b"\0" * 8 if "cut" not in match else b""))


def test_section_lengths_are_uleb128():
    assert [uleb128(n) for n in (0, 127, 128, 16383, 16384)] == [
        b"\0", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01"]
    sizes = [0, 1, 127, 128, 300, 20_000]
    c = Container(codec="x", model="m", weights="", shape=[1], sections=[b"s" * n for n in sizes])
    data = c.to_bytes()
    assert Container.from_bytes(data) == c
    head = len(json.dumps(c.header(), sort_keys=True, separators=(",", ":")))
    assert len(data) == 16 + head + sum(sizes) + sum(4 + len(uleb128(n)) for n in sizes)


def test_limit_helpers_are_strict():
    assert check_int(3, "x", 0, 5) == 3
    for bad in (True, 3.0, "3", None, -1, 6):
        with pytest.raises(BitstreamError, match="x"):
            check_int(bad, "x", 0, 5)
    with pytest.raises(BitstreamError, match="2 integers"):
        check_int_list([1, 2, 3], "s", 2, 1, 9)
    with pytest.raises(BitstreamError, match="one of"):
        check_str("z", "m", 4, ("a", "b"))
    with pytest.raises(BitstreamError) as e:
        check_int("x" * 10_000, "x", 0, 1)
    assert len(str(e.value)) < 120  # a crafted value does not blow up the message
    for bad in (0, -1, True, 2.0, (1 << 40) + 1):
        with pytest.raises(InputError, match="--max-frames"):
            DecodeLimits(max_frames=bad)


# ---------------------------------------------------------------------------- image decode


def test_v1_files_of_the_shipped_models_still_decode():
    src = np.asarray(Image.open(DATA / "kodim19_crop75x53.png").convert("RGB")).astype(float)
    for name, psnr_then in V1_PSNR.items():
        data = (DATA / name).read_bytes()
        assert data[4] == 1
        c = Container.from_bytes(data)
        img = load_codec(c.model).decode(c)
        psnr = 10 * np.log10(255**2 / np.mean((img.astype(float) - src) ** 2))
        assert abs(psnr - psnr_then) < 0.05, (name, psnr)


@pytest.mark.parametrize("arch", ["hyperprior", "mlic"])
def test_stream_symbol_counts_match_the_encoder(arch):
    codec = tiny_codec(arch)
    c = Container.from_bytes(tiny_file(arch))
    want = codec.model.stream_symbol_counts(tuple(c.meta["z_shape"]))
    assert [rans.parse_header(s)[2] for s in c.sections] == want
    assert decode(tiny_file(arch), codec).shape == crop().shape


@pytest.mark.parametrize(("changes", "match"), [
    ({"meta_quality": True}, "meta.quality"), ({"meta_quality": 1.0}, "meta.quality"),
    ({"meta_quality": "1"}, "meta.quality"), ({"meta_quality": -1}, "meta.quality"),
    ({"meta_quality": 2}, "meta.quality"), ({"meta_quality": None}, "meta.quality"),
    ({"shape": [21, 35]}, "image shape"), ({"shape": [21, 35, 4]}, "channel"),
    ({"shape": [21, True, 3]}, r"shape\[1\]"), ({"shape": [1 << 16, 35, 3]}, "image shape"),
    ({"shape": [65, 35, 3]}, "z_shape"), ({"meta_z_shape": [1, 3]}, "z_shape"),
    ({"meta_z_shape": [True, 1]}, "z_shape"), ({"meta_z_shape": [1, 2, 1]}, "z_shape"),
    ({"medium": "video"}, "holds a video"), ({"model": "other"}, "not hyperprior"),
    ({"weights": "1" * 16}, "weights"),
])
def test_inconsistent_headers_give_one_line_errors(changes, match):
    one_line_error(rewrite(tiny_file(), **changes), match)


def test_section_count_and_stream_symbol_counts_are_checked():
    z, y = Container.from_bytes(tiny_file()).sections
    one_line_error(rewrite(tiny_file(), sections=[z]), "1 sections")
    one_line_error(rewrite(tiny_file(), sections=[z, y, y]), "3 sections")
    n = rans.parse_header(y)[2]
    more = y[:4] + (n + 1).to_bytes(4, "little") + y[8:]
    one_line_error(rewrite(tiny_file(), sections=[z, more]), f"section 1: .*{n + 1} symbols")
    prec = y[:1] + bytes([y[1] - 1]) + y[2:]
    one_line_error(rewrite(tiny_file(), sections=[z, prec]), "section 1: .*precision")
    one_line_error(rewrite(tiny_file(), sections=[z[:-2], y]), "section 0: .*bytes")


def test_pixel_cap_names_the_flag():
    msg = one_line_error(tiny_file(), "--max-pixels", limits=DecodeLimits(max_pixels=21 * 35 - 1))
    assert "734" in msg
    assert decode(tiny_file(), limits=DecodeLimits(max_pixels=21 * 35)).shape == crop().shape


def test_v1_header_with_bad_quality_is_refused():
    # the user's file: v1, ``quality: true`` once ended in an uncaught RuntimeError
    one_line_error(rewrite(tiny_file(), version=1, meta_quality=True), "meta.quality")


CHILD = """
import json, sys, time
from neurocodec.codecs.registry import load_codec
codec = load_codec("hyperprior-vr")
out = {}
if sys.argv[1] == "crafted":
    from neurocodec.codecs.container import Container, uleb128
    from neurocodec.codecs.limits import DecodeLimits
    from neurocodec.errors import BitstreamError
    from tests.bounds_files import crafted_huge_image
    data = crafted_huge_image(codec)
    out["file_bytes"] = len(data)
    for name, limits in (("default", None), ("raised", DecodeLimits(max_pixels=1 << 40))):
        t = time.perf_counter()
        try:
            codec.decode(Container.from_bytes(data), limits)
            out[name] = {"error": None}
        except BitstreamError as e:
            out[name] = {"error": str(e)}
        out[name]["seconds"] = time.perf_counter() - t
status = open("/proc/self/status").read()
out["hwm_kb"] = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps(out))
"""


def _child(mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (VmHWM)")
def test_crafted_32767_square_file_fails_fast_and_small():
    base = _child("baseline")
    got = _child("crafted")
    assert got["file_bytes"] > 1_400_000
    for name, match in (("default", "--max-pixels"), ("raised", "section 1: .*symbols")):
        err = got[name]["error"]
        assert err is not None and "\n" not in err, got
        assert __import__("re").search(match, err), err
        assert got[name]["seconds"] < 1.0, got
    increment_mb = (got["hwm_kb"] - base["hwm_kb"]) / 1024
    print(f"crafted file: {got}; peak RSS +{increment_mb:.1f} MB over loading the model")
    assert increment_mb < 300


# ---------------------------------------------------------------------------- fuzzing

OPS = st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]),
                         st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=4)


def mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, val in ops:
        i = pos % (len(b) + 1)
        if op == "flip" and i < len(b):
            b[i] ^= val
        elif op == "cut":
            del b[i:]
        elif op == "insert":
            b[i:i] = bytes([val]) * (1 + val % 3)
        elif op == "delete":
            del b[i : i + 1 + val % 8]
    return bytes(b)


FUZZ = settings(max_examples=150, deadline=1000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@cache
def v1_file() -> tuple[bytes, ImageCodec]:
    data = (DATA / "v1_hyperprior.ncb").read_bytes()
    return data, load_codec(Container.from_bytes(data).model)


@FUZZ
@given(ops=OPS, which=st.sampled_from(["v2-hyperprior", "v2-mlic", "v1-hyperprior-vr"]))
def test_fuzzed_files_give_bitstream_errors(ops, which):
    if which == "v1-hyperprior-vr":
        data, codec = v1_file()
    else:
        arch = which.split("-")[1]
        data, codec = tiny_file(arch), tiny_codec(arch)
    bad = mutate(data, ops)
    if bad == data:
        return
    with pytest.raises(BitstreamError):  # the CRCs catch every change to the bytes
        decode(bad, codec)


@FUZZ
@given(ops=OPS, section=st.integers(0, 8), arch=st.sampled_from(["hyperprior", "mlic"]))
def test_fuzzed_streams_behind_valid_checksums_never_crash(ops, section, arch):
    """A stream changed and re-checksummed reaches the rANS decoder and the networks: it
    must decode to some image or raise BitstreamError, nothing else."""
    c = Container.from_bytes(tiny_file(arch))
    i = section % len(c.sections)
    sections = list(c.sections)
    sections[i] = mutate(sections[i], ops)
    try:
        img = decode(raw_container(c.header(), sections), tiny_codec(arch))
    except BitstreamError:
        return
    assert img.shape == crop().shape and img.dtype == np.uint8


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(1 << 41), 1 << 41)
                    | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda x: st.lists(x, max_size=4) | st.dictionaries(st.text(max_size=4), x,
                                                                        max_size=3),
                    max_leaves=8)


@FUZZ
@given(field=st.sampled_from(["medium", "codec", "model", "weights", "shape", "meta",
                              "meta_quality", "meta_z_shape"]), value=JSON)
def test_fuzzed_header_values_never_crash(field, value):
    data = rewrite(tiny_file(), **{field: value})
    try:
        img = decode(data)
    except BitstreamError:
        return
    assert img.shape == crop().shape
