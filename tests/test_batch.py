"""Batch mode (``neurocodec encode DIR -o OUTDIR`` / ``decode DIR -o OUTDIR``): a folder of small
images with a corrupt one and a nested subfolder, coded with --jobs 2 and back; reruns, --force,
interruption, a killed worker."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import neurocodec
from neurocodec.batch import BatchInterrupted, decoded_name, encode_folder
from neurocodec.codecs import registry
from neurocodec.codecs.container import Container
from tests.conftest import DATA
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--codec", "tiny-test", "-q", 1, "--progress", "off"]
SUMMARY = re.compile(r"^(en|de)coded (\d+) of (\d+) files \((\d+) failed, (\d+) skipped"
                     r"(, (\d+) not done: interrupted)?\) [\d.]+ (B|kB|MB) -> [\d.]+ (B|kB|MB) "
                     r"in [\d.]+ s$")


def _summary(out: str) -> tuple[int, ...]:
    """(done, total, failed, skipped) from a run's stdout, which is that one line."""
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    m = SUMMARY.match(lines[0])
    assert m, lines[0]
    return tuple(int(m.group(i)) for i in (2, 3, 4, 5))


def _photos(root: Path, n: int = 12) -> list[Path]:
    """``n`` small images (PNG, JPEG, PPM, WebP; odd sizes; some in sub/ and sub/deeper/), a
    corrupt ``bad.png``, a text file and a hidden image (neither taken)."""
    base = np.asarray(Image.open(DATA / "kodim19_crop128x96.png").convert("RGB"))
    exts = [".png", ".jpg", ".ppm", ".webp"]
    folders = [root, root / "sub", root / "sub" / "deeper"]
    made = []
    for i in range(n):
        d = folders[i % 3]
        d.mkdir(parents=True, exist_ok=True)
        h, w = 24 + 8 * (i % 4), 40 + 4 * i
        p = d / f"img{i:02d}{exts[i % 4]}"
        Image.fromarray(base[i : i + h, 2 * i : 2 * i + w].copy()).save(
            p, **({"lossless": True} if p.suffix == ".webp" else {}))
        made.append(p)
    (root / "bad.png").write_bytes(b"not an image at all")
    (root / "notes.txt").write_text("not a medium")
    Image.fromarray(base[:16, :16].copy()).save(root / ".hidden.png")
    return made


def _rel(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _no_temporaries(root: Path) -> None:
    assert [p for p in root.rglob(".*")] == [], "a temporary file was left"


def test_folder_round_trip_with_jobs_2(tiny_env, tmp_path, capsys):
    src, out, dec = tmp_path / "photos", tmp_path / "ncb", tmp_path / "decoded"
    made = _photos(src)
    rc, stdout, err = run(capsys, "encode", src, "-o", out, *TINY, "--jobs", 2)
    assert rc == 1  # one file failed
    assert _summary(stdout) == (12, 13, 1, 0) and stdout.startswith("encoded 12 of 13 files")
    assert err == f"FAILED {src / 'bad.png'}: cannot decode image (not an image format Pillow " \
                  f"reads)\n"
    assert _rel(out) == {p.relative_to(src).as_posix() + ".ncb" for p in made}
    _no_temporaries(out)

    rc, stdout, err = run(capsys, "decode", out, "-o", dec, "--progress", "off")
    assert rc == 0 and err == ""
    assert _summary(stdout) == (12, 12, 0, 0)
    # a.png.ncb -> a.png (also .ppm, .webp: formats the image medium writes); a.jpg.ncb -> a.png
    named = {p: p.relative_to(src) if p.suffix != ".jpg" else p.relative_to(src).with_suffix(".png")
             for p in made}
    assert _rel(dec) == {n.as_posix() for n in named.values()}
    for p in made:
        ncb = out / p.relative_to(src).parent / (p.name + ".ncb")
        got = np.asarray(Image.open(dec / named[p]).convert("RGB"))
        single = neurocodec.decode(ncb)  # what single-file mode gives for the same file
        assert np.array_equal(got, single), p
        assert got.shape == np.asarray(Image.open(p)).shape[:2] + (3,)


def test_batch_bytes_and_pixels_are_single_file_modes(tiny_env, tmp_path, capsys):
    src, out, dec = tmp_path / "in", tmp_path / "out", tmp_path / "dec"
    made = _photos(src, 4)
    (src / "bad.png").unlink()
    assert run(capsys, "encode", src, "-o", out, *TINY)[0] == 0
    assert run(capsys, "decode", out, "-o", dec)[0] == 0
    for p in made:
        rel = p.relative_to(src)
        data = (out / rel.parent / (p.name + ".ncb")).read_bytes()
        assert data == neurocodec.encode(p, codec="tiny-test", quality=1)
        name = decoded_name(p.name, registry.get_medium("image"))
        assert np.array_equal(np.asarray(Image.open(dec / rel.parent / name).convert("RGB")),
                              neurocodec.decode(data))


def test_rerun_skips_done_files_and_force_recodes(tiny_env, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 6)
    rc, stdout, _ = run(capsys, "encode", src, "-o", out, *TINY)
    assert rc == 1 and _summary(stdout) == (6, 7, 1, 0)
    first = {p: (p.stat().st_ino, p.read_bytes()) for p in out.rglob("*.ncb")}
    precious = out / "sub" / "img01.jpg.ncb"
    precious.write_bytes(b"someone else's file")  # an existing output is never destroyed ...
    rc, stdout, err = run(capsys, "encode", src, "-o", out, *TINY)
    assert rc == 1 and _summary(stdout) == (0, 7, 1, 6)
    assert err.count("\n") == 1 and "bad.png" in err
    assert precious.read_bytes() == b"someone else's file"
    for p, (ino, _) in first.items():
        assert p.stat().st_ino == ino
    rc, stdout, _ = run(capsys, "encode", src, "-o", out, *TINY, "--force")
    assert rc == 1 and _summary(stdout) == (6, 7, 1, 0)  # ... except by --force's replace
    for p, (ino, data) in first.items():
        assert p.read_bytes() == data and p.stat().st_ino != ino  # replaced, atomically
    _no_temporaries(out)
    (src / "bad.png").unlink()
    rc, stdout, _ = run(capsys, "encode", src, "-o", out, *TINY)
    assert rc == 0 and _summary(stdout) == (0, 6, 0, 6)


def test_decode_names_and_bad_ncb_files(tiny_env, tmp_path, capsys):
    src, dec = tmp_path / "ncb", tmp_path / "dec"
    (src / "s").mkdir(parents=True)
    good = neurocodec.encode(DATA / "kodim19_crop75x53.png", codec="tiny-test", quality=0)
    for name in ("a.png.ncb", "a.jpg.ncb", "b.jpg.ncb", "c.ncb", "s/d.tif.ncb"):
        (src / name).write_bytes(good)
    (src / "trunc.ncb").write_bytes(good[: len(good) // 2])
    (src / "flip.ncb").write_bytes(good[:-5] + bytes([good[-5] ^ 1]) + good[-4:])
    (src / "junk.ncb").write_bytes(b"junk")
    rc, stdout, err = run(capsys, "decode", src, "-o", dec, "--progress", "off")
    assert rc == 1 and _summary(stdout) == (5, 8, 3, 0)
    assert _rel(dec) == {"a.png", "a.jpg.png", "b.png", "c.png", "s/d.tif"}
    fails = err.splitlines()
    assert len(fails) == 3 and all(f.startswith("FAILED ") for f in fails)
    assert {f.split(":")[0].split("/")[-1] for f in fails} == {"trunc.ncb", "flip.ncb",
                                                               "junk.ncb"}
    rc, stdout, _ = run(capsys, "decode", src, "-o", tmp_path / "webp", "--format", "webp",
                        "--progress", "off")
    assert _rel(tmp_path / "webp") == {"a.png.webp", "a.jpg.webp", "b.webp", "c.webp",
                                       "s/d.webp"}
    ref = neurocodec.decode(good)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "webp" / "b.webp")), ref)


def test_decoded_names_of_every_medium():
    image, video, splat = (registry.get_medium(m) for m in ("image", "video", "splat"))
    assert decoded_name("clip.y4m", video) == "clip.y4m"
    assert decoded_name("clip.mkv", video) == "clip.mp4"
    assert decoded_name("clip", video) == "clip.mp4"
    assert decoded_name("clip.mp4", video, ".y4m") == "clip.y4m"
    assert decoded_name("scene.spz", splat) == "scene.spz"
    assert decoded_name("scene", splat) == "scene.ply"
    assert decoded_name("a.b", image) == "a.b.png"
    assert decoded_name("a.pgm", image) == "a.png"
    assert decoded_name("a.png", image, ".ply") == "a.png"  # not an image format: ignored


def test_folder_misuse_is_refused_before_any_work(tiny_env, tmp_path, capsys):
    src = tmp_path / "in"
    _photos(src, 3)
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    cases = [
        (("encode", src, "-o", out, *TINY, "--jobs", 0), "--jobs"),
        (("encode", src, "-o", out, "--codec", "tiny-test", "-q", 9), "quality 9"),
        (("encode", src, "-o", out, "-q", 9), "give --codec"),
        (("encode", src, "-o", out, "--codec", "no-such"), "unknown codec"),
        (("encode", src, "-o", out, "--run-dir", tmp_path / "r"), "--run-dir"),
        (("encode", src, "-o", tmp_path / "afile"), "this is a file"),
        (("encode", tmp_path / "empty", "-o", out), "no files to encode"),
        (("encode", src / "img00.png", "-o", tmp_path / "x.ncb", "--jobs", 2), "--jobs"),
        (("decode", tmp_path / "empty", "-o", out), "no .ncb files"),
        (("decode", src, "-o", out, "--format", "jpg"), "not an output format"),
        (("decode", DATA / "v1_mlic.ncb", "-o", tmp_path / "x.png", "--format", "png"),
         "--format"),
    ]
    for args, why in cases:
        rc, stdout, err = run(capsys, *args)
        assert rc == 1 and stdout == "", args
        assert err.startswith("neurocodec: error:") and err.count("\n") == 1, err
        assert why in err, (why, err)
    assert not out.exists() and not (tmp_path / "x.ncb").exists()


def test_output_folder_inside_the_input_is_not_walked(tiny_env, tmp_path, capsys):
    src = tmp_path / "in"
    _photos(src, 3)
    (src / "bad.png").unlink()
    out = src / "out"
    out.mkdir()
    Image.open(DATA / "kodim19_crop75x53.png").save(out / "stray.png")  # inside OUTDIR: left
    rc, stdout, _ = run(capsys, "encode", src, "-o", out, *TINY)
    assert rc == 0 and _summary(stdout) == (3, 3, 0, 0)
    rc, stdout, _ = run(capsys, "decode", src, "-o", src, "--progress", "off")  # beside them
    assert rc == 0 and _summary(stdout) == (3, 3, 0, 0)
    assert (src / "out" / "img00.png").exists()


def test_stale_temporaries_of_a_killed_run_are_removed(tiny_env, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 3)
    out.mkdir()
    stale = out / ".img00.png.ncb.k3j9x_2a.tmp"  # what a SIGKILLed write_atomic leaves
    stale.write_bytes(b"half")
    (out / ".img00.png.ncb.k3j9x_2a.old").mkdir()  # a folder replace's previous output: kept
    (out / ".other.ncb.k3j9x_2a.tmp").write_bytes(b"not this run's")
    run(capsys, "encode", src, "-o", out, *TINY)
    assert not stale.exists()
    assert (out / ".img00.png.ncb.k3j9x_2a.old").is_dir()
    assert (out / ".other.ncb.k3j9x_2a.tmp").exists()


def test_api_result(tiny_env, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    made = _photos(src, 4)
    failures = []
    r = encode_folder(src, out, "tiny-test", 0, progress="off", on_failure=failures.append)
    assert [d.source for d in sorted(r.done, key=lambda d: d.source)] == sorted(made)
    assert [f.source.name for f in r.failed] == ["bad.png"] and failures == r.failed
    assert r.bytes_in == sum(p.stat().st_size for p in made)
    assert r.bytes_out == sum(p.stat().st_size for p in out.rglob("*.ncb"))
    assert not r.ok and r.total == 5 and r.not_done == 0 and r.seconds > 0
    assert str(r.failed[0]).startswith(f"FAILED {src / 'bad.png'}: cannot decode image")


def test_a_killed_worker_fails_only_its_file(tiny_env, tmp_path):
    """SIGKILL one worker mid-batch (as the OOM killer would): the file it held fails with a
    reason, a fresh worker codes the rest, and a rerun completes the folder."""
    src, out = tmp_path / "in", tmp_path / "out"
    made = _photos(src, 24)  # enough that a worker killed after the first output held a file
    (src / "bad.png").unlink()
    killed = []

    def workers() -> list[int]:  # this process's spawned children (not through mp: no reaping)
        pids = []
        for d in Path("/proc").iterdir():
            try:
                stat = (d / "stat").read_text()
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"spawn_main" in cmd:
                pids.append(int(d.name))
        return pids

    def kill_one():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if out.exists() and any(out.rglob("*.ncb")):
                pids = workers()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            time.sleep(0.005)

    t = threading.Thread(target=kill_one)
    t.start()
    r = encode_folder(src, out, "tiny-test", 1, jobs=2, progress="off")
    t.join()
    assert killed
    assert len(r.failed) == 1 and len(r.done) + len(r.failed) == len(made)
    for f in r.failed:
        assert "worker coding it died (killed by SIGKILL)" in f.reason
    r = encode_folder(src, out, "tiny-test", 1, jobs=2, progress="off")
    assert r.ok and len(r.done) + len(r.skipped) == 24 and len(r.skipped) >= 23
    _no_temporaries(out)
    for p in out.rglob("*.ncb"):
        Container.from_bytes(p.read_bytes())  # every output complete


def test_ctrl_c_leaves_no_partial_outputs_and_a_rerun_finishes(tmp_path, capsys):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once the first output
    of a --jobs 2 run exists: exit 130 with the summary so far, only complete outputs, no
    temporary files; the same command then codes the rest. The shipped default model, so that
    files take long enough to interrupt. The child starts with SIGINT at its default, as a
    terminal's foreground job does: a test runner started in the background (a non-interactive
    shell's ``&``) passes on an ignored SIGINT, which Python, and so the CLI, keeps ignored."""
    src, out = tmp_path / "in", tmp_path / "out"
    base = Image.open(DATA / "kodim19_crop128x96.png").convert("RGB")
    src.mkdir()
    n = 96  # enough that an idle machine cannot finish before the signal lands
    for i in range(n):
        base.rotate(i * 3.75).save(src / f"r{i:02d}.png")
    args = ["encode", str(src), "-o", str(out), "-q", "0", "--jobs", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NEUROCODEC_WEIGHTS", None)
    p = subprocess.Popen([sys.executable, "-m", "neurocodec.cli", *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (out.is_dir() and any(out.glob("*.ncb"))):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and stderr.endswith(
        "neurocodec: interrupted; rerun the same command to finish the rest\n"), stderr
    done, total, failed, skipped = _summary(stdout)
    assert total == n and failed == skipped == 0 and done < n
    assert f"{n - done} not done: interrupted" in stdout
    _no_temporaries(out)
    present = sorted(out.iterdir())
    # a file finished as the signal came may be on disk but not counted: the rerun skips it
    assert done <= len(present) <= done + 2 and len(present) < n
    for f in present:
        Container.from_bytes(f.read_bytes())  # complete files only
    rc, stdout, err = run(capsys, *args[:-2])  # the same command (in this process: quicker)
    assert rc == 0, err
    assert _summary(stdout) == (n - len(present), n, 0, len(present))
    assert len(list(out.iterdir())) == n
    _no_temporaries(out)


def test_interrupt_in_process_raises_with_the_result(tiny_env, tmp_path, monkeypatch):
    from neurocodec import batch

    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 6)
    calls = []
    real = batch.run_one

    def interrupting(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(batch, "run_one", interrupting)
    with pytest.raises(BatchInterrupted) as e:
        encode_folder(src, out, "tiny-test", 0, progress="off")
    r = e.value.result
    assert r.interrupted and len(r.done) + len(r.failed) == 2 and r.not_done == 5
    assert "interrupted" in r.summary()


def test_sigterm_stops_a_cli_batch_like_ctrl_c(tiny_env, tmp_path, capsys, monkeypatch):
    """The CLI turns SIGTERM into the same orderly stop (exit 130, summary) for the batch's
    duration, then puts the old handler back."""
    from neurocodec import batch

    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 4)
    real, calls = batch.run_one, []

    def terminated(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        return real(*a, **k)

    monkeypatch.setattr(batch, "run_one", terminated)
    before = signal.getsignal(signal.SIGTERM)
    rc, stdout, err = run(capsys, "encode", src, "-o", out, *TINY)
    assert rc == 130 and err.endswith("rerun the same command to finish the rest\n")
    done, total, failed, _ = _summary(stdout)  # bad.png (failed) came first
    assert (done, total, failed) == (0, 5, 1) and "4 not done: interrupted" in stdout
    assert signal.getsignal(signal.SIGTERM) is before
    _no_temporaries(out)
