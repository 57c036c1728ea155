"""Fuzzing every decoder and file reader (:mod:`neurocodec.fuzz`, docs/fuzzing.md).

About 2,000 Hypothesis cases per run, over every target of the table (its ``suite`` count
each), derandomized: a mutated, truncated or spliced valid file, or a crafted header, either
decodes or raises its reader's documented exception with a one-line message, within the
deadline and the memory bound. Then the CLI on a few such files, and the crashes the long run
(``make fuzz``) found, each as its minimized input.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from neurocodec.cli import main
from neurocodec.codecs.container import Container
from neurocodec.codecs.image.io import read_image
from neurocodec.codecs.splat.coder import SplatCoder
from neurocodec.codecs.splat.io import decode_sog, decode_sog_bundle
from neurocodec.codecs.video.codec import INRCodec
from neurocodec.errors import BitstreamError, InputError
from neurocodec.fuzz import formats as F
from neurocodec.fuzz import seeds as S
from neurocodec.fuzz.campaign import make_case
from neurocodec.fuzz.guard import RssMeter, run_case
from neurocodec.fuzz.targets import TARGETS, warm

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 2.0  # seconds a case may take (they take milliseconds)
MEM_MB = 512.0  # peak RSS a case may add
RAN: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Cases are tiny and the suite shares the machine; the rest of the suite keeps its
    thread counts."""
    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    numba.set_num_threads(before[1])


@pytest.fixture(scope="module")
def meter() -> RssMeter:
    return RssMeter()


def test_suite_size():
    assert 1900 <= sum(t.suite for t in TARGETS.values()) <= 2500


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz(name, meter):
    t = TARGETS[name]
    warm(t)
    RAN[name] = 0

    @settings(max_examples=t.suite, derandomize=True, deadline=None, database=None,
              phases=[Phase.generate, Phase.shrink], print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(rng=st.randoms(use_true_random=False))
    def case(rng):
        x = t.make(rng, t.seeds())
        o = run_case(t.run, x, t.allowed, meter, DEADLINE, MEM_MB, t.check)
        RAN[name] += 1
        assert not o.failed, f"{name}: {o.status} {o.error}: {o.trace or o.message}"

    case()
    assert RAN[name] >= t.suite


def test_cases_reproduce_from_their_seed():
    """The long run's case i is a function of (seed, target, i) alone."""
    for name in ("container", "ply", "image-file"):
        t = TARGETS[name]
        assert make_case(t, 3, 17) == make_case(t, 3, 17)
        assert make_case(t, 3, 17) != make_case(t, 3, 18)


def test_guard_flags_crashes_hangs_and_memory(meter):
    def crash(_):
        raise IndexError("x")

    def hang(_):
        time.sleep(5)

    def spin(_):
        t = time.process_time()
        while time.process_time() - t < 0.4:
            pass

    def hog(_):
        a = np.ones(96 << 20, np.uint8)  # touched: resident
        return int(a[::4096].sum())

    def two_lines(_):
        raise InputError("a\nb")

    assert run_case(crash, b"", (InputError,), meter).status == "crash"
    o = run_case(hang, b"", (InputError,), meter, deadline=0.1)  # blocked: the wall limit
    assert o.status == "hang" and o.error == "Hang" and o.wall < 2
    o = run_case(spin, b"", (InputError,), meter, deadline=0.2)  # working: the CPU limit
    assert o.status == "hang" and o.seconds >= 0.2
    o = run_case(hog, b"", (InputError,), meter, mem_mb=64)
    if meter.per_case:
        assert o.status == "memory" and o.peak_mb >= 90
    assert run_case(two_lines, b"", (InputError,), meter).status == "message"
    assert run_case(lambda _: 1, b"", (InputError,), meter).status == "decoded"


# ---------------------------------------------------------------------------- the CLI

def _rejected(name: str, count: int) -> list:
    """The first ``count`` fuzz cases of ``name`` its decoder refuses, with distinct messages
    (image files: only those read without options, as the CLI reads them)."""
    t, out, seen = TARGETS[name], [], set()
    for i in range(500):
        x = make_case(t, 0, i)
        if name == "image-file" and len(x) > 2:
            continue
        try:
            t.run(x)
        except t.allowed as e:
            why = str(e).split(": ", 1)[-1][:30]  # without the file's name
            if why not in seen:
                seen.add(why)
                out.append(x)
        if len(out) == count:
            return out
    raise AssertionError(f"{name}: too few rejected cases")


def _one_line(capsys, args: list[str]) -> str:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert rc == 1, (args, out, err)
    assert err.startswith("neurocodec: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("name,outfile", [
    ("image-hyperprior", "x.png"), ("video-nerv", "x.y4m"), ("video-hnerv", "x/"),
    ("splat-gsc", "x.ply"), ("container", "x.png")])
def test_cli_decode_of_fuzzed_files(tmp_path, capsys, name, outfile):
    for k, data in enumerate(_rejected(name, 3)):
        src = tmp_path / f"bad{k}.ncb"
        src.write_bytes(data)
        out = tmp_path / f"{k}{outfile}"
        _one_line(capsys, ["decode", src, "-o", out])
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("name,ext", [("ply", ".ply"), ("spz", ".spz"), ("sog", ".sog"),
                                      ("image-file", None), ("y4m", ".y4m")])
def test_cli_encode_of_fuzzed_inputs(tmp_path, capsys, name, ext):
    for k, x in enumerate(_rejected(name, 2)):
        if ext is None:
            src, data = tmp_path / f"bad{k}{x[0]}", x[1]
        else:
            src, data = tmp_path / f"bad{k}{ext}", x
        src.write_bytes(data)
        _one_line(capsys, ["encode", src, "-o", tmp_path / f"{k}.ncb"])
        assert not (tmp_path / f"{k}.ncb").exists()


def test_cli_render_of_a_fuzzed_scene(tmp_path, capsys):
    src = tmp_path / "bad.spz"
    src.write_bytes(_rejected("spz", 1)[0])
    _one_line(capsys, ["render", src, "-o", tmp_path / "views"])
    assert not (tmp_path / "views").exists()


def test_cli_subprocess_gives_one_line(tmp_path):
    """The real entry point, once: exit status 1, one stderr line, no traceback, no output."""
    src = tmp_path / "bad.ncb"
    src.write_bytes(_rejected("image-hyperprior", 1)[0])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH",
                                                                                   "")])}
    r = subprocess.run([sys.executable, "-m", "neurocodec.cli", "decode", str(src), "-o",
                        str(tmp_path / "x.png")], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("neurocodec: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------------- regressions
# Each crash the fuzzer found, as the smallest input that showed it.


def _png(size=(2, 2)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 120, 30)).save(buf, "PNG")
    return buf.getvalue()


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def _refused(tmp_path, name: str, data: bytes, match: str, **kw) -> float:
    p = tmp_path / name
    p.write_bytes(data)
    t = time.perf_counter()
    with pytest.raises(InputError, match=match) as e:
        read_image(p, **kw)
    assert "\n" not in str(e.value)
    return time.perf_counter() - t


def test_pillow_internal_errors_are_input_errors(tmp_path):
    # a GIF whose second image descriptor is cut short: IndexError in Pillow's n_frames
    buf = io.BytesIO()
    Image.new("P", (2, 2)).save(buf, "GIF")
    gif = buf.getvalue()[:-1] + b"," + struct.pack("<HHHHB", 0, 0, 2, 2, 0)
    _refused(tmp_path, "a.gif", gif, "IndexError")
    # a PNG with an iCCP chunk after its image data that ends at the name's NUL: IndexError
    png = _png()
    _refused(tmp_path, "a.png", png[:-12] + _chunk(b"iCCP", b"icc\0") + png[-12:], "IndexError")


def test_images_over_the_pixel_cap_are_refused_before_decoding(tmp_path):
    # 16383 x 16383 = 268,402,689 pixels: over MAX_PIXELS but under twice it, where Pillow only
    # warns; a 124-byte WebP made libwebp allocate 1 GB before failing
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "WEBP", lossless=True)
    b = bytearray(buf.getvalue())
    bits = int.from_bytes(b[21:25], "little") & ~0xFFFFFFF | 16382 | (16382 << 14)
    b[21:25] = bits.to_bytes(4, "little")
    assert _refused(tmp_path, "a.webp", bytes(b), "over the 134,217,728-pixel limit") < 0.5


def test_a_tiny_file_cannot_declare_a_huge_image(tmp_path):
    # a 600-byte JPEG whose frame header said 874x54060: libjpeg padded it to 47 Mpixel
    # (1.2 GB, 1.6 s); the same for PNG's IHDR
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, "JPEG")
    b = bytearray(buf.getvalue())
    i = b.index(b"\xff\xc0")
    b[i + 5: i + 9] = struct.pack(">HH", 54060, 874)
    assert _refused(tmp_path, "a.jpg", bytes(b), "874x54060 pixels in only") < 0.5
    png = _png()
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 4000, 4000, 8, 2, 0, 0, 0))
    _refused(tmp_path, "b.png", png[:8] + ihdr + png[33:], "4000x4000 pixels in only")
    # up to FREE_PIXELS any size is decoded (or refused by the decoder) as before
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 2000, 2000, 8, 2, 0, 0, 0))
    _refused(tmp_path, "c.png", png[:8] + ihdr + png[33:], "cannot decode image")


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000])
def test_sog_meta_json_nesting(text):
    with pytest.raises(InputError, match="nested too deeply"):
        decode_sog(text.encode(), lambda name: b"")
    bundle = F.make_zip([("meta.json", text.encode())])
    with pytest.raises(InputError, match="nested too deeply"):
        decode_sog_bundle(bundle)


def _hwm_mib() -> float:
    with open("/proc/self/status") as f:
        return int(next(ln for ln in f if ln.startswith("VmHWM:")).split()[1]) / 1024


def _fast_and_small(decode, data: bytes, match: str) -> None:
    """``decode`` refuses ``data`` within 0.2 s and 50 MiB of new peak memory."""
    meter = RssMeter()
    meter.start()
    t = time.perf_counter()
    with pytest.raises(BitstreamError, match=match):
        decode(Container.from_bytes(data))
    assert time.perf_counter() - t < 0.2
    if meter.per_case:
        assert meter.peak_mb() < 50


def _with(data: bytes, edit) -> bytes:
    c = Container.from_bytes(data)
    h = json.loads(json.dumps(c.header()))
    edit(h)
    return F.build_container(json.dumps(h), c.sections)


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_video_sections_are_checked_before_the_model_is_built(kind):
    # width 830: 60M parameters, under MAX_STORED; the 5 kB file's steps were checked only
    # after 240 MB of model were allocated and initialised (1 s)
    bad = _with(S.video_ncb(kind)[0], lambda h: h["meta"]["inr"].update(width=830))
    _fast_and_small(INRCodec(kind).decode, bad, "step section is")


def test_a_nerv_file_cannot_declare_an_endless_clip():
    def edit(h):
        h["shape"][0] = h["meta"]["inr"]["frames"] = 100_000
        h["shape"][1] = h["meta"]["inr"]["height"] = 4096
        h["shape"][2] = h["meta"]["inr"]["width_px"] = 4096

    bad = _with(S.video_ncb("nerv")[0], edit)
    _fast_and_small(INRCodec("nerv").decode, bad, "GiB decoded")


def test_splat_streams_are_checked_before_allocating_for_n():
    # 2^24 Gaussians declared, 48 coded: 192 MB and 1 s of context arrays came first
    bad = _with(S.gsc_ncb()[0], lambda h: h["shape"].__setitem__(0, 1 << 24))
    _fast_and_small(SplatCoder().decode, bad, "scales: stream holds 144 symbols")


def test_container_meta_floats_are_finite():
    good = Container.from_bytes(S.gsc_ncb()[0])
    head = json.dumps(good.header()).replace('"base": ', '"base": 1e400, "b2": ', 1)
    with pytest.raises(BitstreamError, match="not a finite number"):
        Container.from_bytes(F.build_container(head, good.sections))


def test_libtiff_messages_join_the_one_line_error(tmp_path, capfd):
    # libtiff wrote its diagnostics straight to fd 2, above the CLI's error line
    src = tmp_path / "a.tif"
    src.write_bytes(_tiff_with(279, "<H", 2))  # StripByteCounts typed as ASCII
    assert main(["encode", str(src), "-o", str(tmp_path / "a.ncb")]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "libtiff: TIFFFetchStripThing" in err, err


def test_cli_warnings_are_one_line(tmp_path):
    from neurocodec.codecs.splat.io import write_ply

    scene = S.synthetic(4, 0)
    scene = scene.subset(np.arange(4))  # a copy: the seed stays as it is
    scene.means[1, 0] = np.nan
    write_ply(tmp_path / "nan.ply", scene)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH",
                                                                                   "")])}
    r = subprocess.run([sys.executable, "-m", "neurocodec.cli", "encode", "nan.ply", "-o",
                        "a.ncb"], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("neurocodec: warning: nan.ply: dropped 1 of 4 Gaussians with NaN/Inf "
                        "attributes\n"), r.stderr


@pytest.mark.parametrize("field", ["codec", "model"])
def test_header_names_are_printable(field):
    # "file was made by x.webp\n/hnerv, ..." split the CLI's error over two lines
    c = Container.from_bytes(S.video_ncb("nerv")[0])
    head = json.dumps({**c.header(), field: "nerv\nb"})
    with pytest.raises(BitstreamError, match="printable") as e:
        Container.from_bytes(F.build_container(head, c.sections))
    assert "\n" not in str(e.value)


def test_sog_names_and_zip_versions():
    files = S.sog_folders()[0]
    meta = json.loads(files["meta.json"])
    meta["quats"]["files"] = ["x.webp\n"]
    with pytest.raises(InputError, match="bad name 'x.webp\\\\n'"):
        decode_sog(json.dumps(meta).encode(), files.__getitem__)
    # a central directory asking for zip version 8.4: zipfile's NotImplementedError
    z = bytearray(F.make_zip(list(files.items())))
    i = z.index(b"PK\x01\x02")
    z[i + 6] = 84
    with pytest.raises(InputError, match="cannot open it as a zip"):
        decode_sog_bundle(bytes(z))


def _tiff_with(tag: int, fmt: str, *values: int) -> bytes:
    """A small LZW TIFF with one IFD entry's type/count/value fields (from its byte 2)
    overwritten with ``struct.pack(fmt, *values)``."""
    buf = io.BytesIO()
    Image.fromarray(np.arange(144, dtype=np.uint8).reshape(4, 12, 3)).save(
        buf, "TIFF", compression="tiff_lzw")
    b = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", b, 4)[0]
    for k in range(struct.unpack_from("<H", b, ifd)[0]):
        e = ifd + 2 + 12 * k
        if struct.unpack_from("<H", b, e)[0] == tag:
            struct.pack_into(fmt, b, e + 2, *values)
    return bytes(b)


def test_pillow_log_lines_stay_off_stderr(tmp_path, capfd):
    # Pillow logs "More samples per pixel than can be decoded: 32768" at error level, and
    # Python's last-resort handler printed it above the CLI's one line
    src = tmp_path / "a.tif"
    src.write_bytes(_tiff_with(277, "<HII", 4, 1, 32768))  # SamplesPerPixel: one LONG
    assert main(["encode", str(src), "-o", str(tmp_path / "a.ncb")]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "More samples" not in err, err


def test_y4m_header_tokens_are_quoted_and_cut(tmp_path):
    # the header's newline deleted: the C token ran 1,000 bytes into the frame data
    from neurocodec.codecs.video.io import read_video

    data = S.y4m(16, 16, 1)
    head, _, body = data.partition(b"\n")
    src = tmp_path / "a.y4m"
    src.write_bytes(head + bytes(range(128, 256)) * 3 + b"\n" + body)  # no whitespace in it
    with pytest.raises(InputError, match="colour space 'C420jpeg") as e:
        read_video(src)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < len(str(src)) + 120
