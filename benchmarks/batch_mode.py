"""Batch mode over 100+ files: ``neurocodec encode DIR -o OUT`` (and ``decode``) with --jobs 1,
with --jobs 2, and the loop of single-file commands a user would otherwise write.

``--files`` (default 120) crops of ``--crop`` x ``--crop`` pixels (default 256) are cut from the
images of ``--data`` (Kodak: 24 images x 5 crops, at different places of each image) and written
as PNGs to a temporary folder; then, each a separate ``python -m neurocodec.cli`` process as a
user would run it (wall time of the whole command, start-up included):

* ``encode SRC -o OUT --jobs 1``, ``encode SRC -o OUT --jobs 2``, a rerun of the latter (every
  output already there: the cost of skipping), and ``encode F -o OUT/F.ncb`` once per file;
* the same three for ``decode`` of the --jobs 1 outputs.

It checks every mode decoded to the same pixels, prints files/s and the ratios, and writes
``--json`` (default docs/results/batch_mode.json).

    python benchmarks/batch_mode.py --data ../shared/data/images/kodak
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neurocodec.eval.environment import cpu_model

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "neurocodec.cli"]


def make_crops(data: Path, out: Path, n: int, size: int) -> list[Path]:
    images = sorted(p for p in data.iterdir() if p.suffix.lower() == ".png")
    if not images:
        raise SystemExit(f"{data}: no PNG images")
    out.mkdir(parents=True)
    per = -(-n // len(images))
    made = []
    for k in range(n):
        img = np.asarray(Image.open(images[k % len(images)]).convert("RGB"))
        j = k // len(images)  # the j-th crop of this image: spread along its diagonal
        h, w = img.shape[:2]
        y = (h - size) * j // max(per - 1, 1)
        x = (w - size) * j // max(per - 1, 1)
        p = out / f"{images[k % len(images)].stem}_{j}.png"
        Image.fromarray(img[y : y + size, x : x + size].copy()).save(p)
        made.append(p)
    return made


def timed(cmd: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt


def size(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern))


def pixels(folder: Path) -> dict[str, bytes]:
    return {p.name: np.asarray(Image.open(p)).tobytes() for p in sorted(folder.glob("*.png"))}




def load() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder of PNG images (e.g. Kodak)")
    ap.add_argument("--files", type=int, default=120)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--codec", help="default: the image medium's default codec")
    ap.add_argument("-q", "--quality", type=int)
    ap.add_argument("--json", default=str(ROOT / "docs" / "results" / "batch_mode.json"))
    ap.add_argument("--note", default="", help="recorded as is (e.g. how loaded the machine was)")
    a = ap.parse_args()
    extra = ([] if a.codec is None else ["--codec", a.codec]) + \
            ([] if a.quality is None else ["-q", str(a.quality)])
    record: dict = {"command": shlex.join([Path(sys.executable).name, *sys.argv]),
                    "files": a.files, "crop": a.crop, "codec": a.codec, "quality": a.quality,
                    "cpu": cpu_model(), "cores": os.cpu_count(), "note": a.note,
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_before": load()}
    with tempfile.TemporaryDirectory(prefix="batch_mode.") as tmp:
        t = Path(tmp)
        files = make_crops(Path(a.data), t / "src", a.files, a.crop)
        bytes_in = size(t / "src", "*.png")
        enc, dec = {}, {}
        print(f"{len(files)} files of {a.crop}x{a.crop}, {bytes_in / 1e6:.1f} MB; "
              f"{os.cpu_count()} cores ({record['cpu']}), load {record['load_before']}")

        # encode
        for jobs in (1, 2):
            out = t / f"enc{jobs}"
            enc[f"jobs{jobs}"] = timed([*CLI, "encode", str(t / "src"), "-o", str(out), *extra,
                                        "--jobs", str(jobs), "--progress", "off"])
            print(f"encode --jobs {jobs}: {enc[f'jobs{jobs}']:.1f} s")
        enc["rerun_all_skipped"] = timed([*CLI, "encode", str(t / "src"), "-o", str(t / "enc2"),
                                          *extra, "--jobs", "2", "--progress", "off"])
        (t / "loop").mkdir()
        start = time.perf_counter()
        for f in files:
            timed([*CLI, "encode", str(f), "-o", str(t / "loop" / (f.name + ".ncb")), *extra])
        enc["loop"] = time.perf_counter() - start
        print(f"encode loop of single-file commands: {enc['loop']:.1f} s")
        bytes_out = size(t / "enc1", "*.ncb")
        same_bytes = {m: all((t / m / p.name).read_bytes() == p.read_bytes()
                             for p in (t / "enc1").glob("*.ncb")) for m in ("enc2", "loop")}

        # decode (the --jobs 1 outputs)
        for jobs in (1, 2):
            dec[f"jobs{jobs}"] = timed([*CLI, "decode", str(t / "enc1"), "-o",
                                        str(t / f"dec{jobs}"), "--jobs", str(jobs),
                                        "--progress", "off"])
            print(f"decode --jobs {jobs}: {dec[f'jobs{jobs}']:.1f} s")
        dec["rerun_all_skipped"] = timed([*CLI, "decode", str(t / "enc1"), "-o", str(t / "dec2"),
                                          "--jobs", "2", "--progress", "off"])
        (t / "decloop").mkdir()
        start = time.perf_counter()
        for f in sorted((t / "enc1").glob("*.ncb")):
            timed([*CLI, "decode", str(f), "-o", str(t / "decloop" / f.name[:-4])])
        dec["loop"] = time.perf_counter() - start
        print(f"decode loop of single-file commands: {dec['loop']:.1f} s")
        ref = pixels(t / "dec1")
        assert len(ref) == len(files)
        same_pixels = all(pixels(t / m) == ref for m in ("dec2", "decloop"))

    n = len(files)
    record["load_after"] = load()
    for name, secs in (("encode", enc), ("decode", dec)):
        record[name] = {
            "seconds": {k: round(v, 2) for k, v in secs.items()},
            "files_per_s": {k: round(n / v, 3) for k, v in secs.items()
                            if k != "rerun_all_skipped"},
            "ratios": {"jobs1_vs_loop": round(secs["loop"] / secs["jobs1"], 2),
                       "jobs2_vs_loop": round(secs["loop"] / secs["jobs2"], 2),
                       "jobs2_vs_jobs1": round(secs["jobs1"] / secs["jobs2"], 2)},
        }
        print(f"{name}: files/s " + ", ".join(f"{k} {v:.2f}" for k, v in
                                              record[name]["files_per_s"].items())
              + "; speed-up " + ", ".join(f"{k} {v:.2f}x" for k, v in
                                          record[name]["ratios"].items()))
    record["bytes_in"] = bytes_in  # PNG crops
    record["bytes_out"] = bytes_out  # .ncb files
    record["identical_ncb_bytes_vs_jobs1"] = same_bytes
    record["identical_decoded_pixels_all_modes"] = same_pixels
    print(f"{bytes_in / 1e6:.1f} MB of PNG -> {bytes_out / 1e6:.2f} MB of .ncb; same .ncb bytes "
          f"as --jobs 1: {same_bytes}; same decoded pixels in every mode: {same_pixels}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
