"""Peak memory of coding real-size images: the CLI (entropy tiles, banded transforms) beside
the whole-image path it replaced, in the same run.

For each size (default 4000x3000 and 8000x8000: a photo resized with Lanczos, so the content
is a photo's) and each shipped image model:

* ``cli``: ``neurocodec encode`` and ``neurocodec decode`` under ``/usr/bin/time -v`` (peak
  RSS of the whole process: interpreter, torch, the model and the image files);
* ``whole``: the same model's untiled ``compress`` / ``decompress`` in a child process that
  reports its own peak RSS (``ru_maxrss``), at the sizes in ``--whole-sizes`` only (the
  whole-image path needs ~15 GB and minutes at 8000x8000).

Clips and scenes: ``--clip`` and ``--scene`` run the CLI on them (a clip with ``--epochs 1``:
fitting memory does not depend on the epoch count). Prints a table with the ratios and
writes JSON (``--json``, default docs/results/memory.json).

    python benchmarks/memory.py --source ../shared/data/images/train/wikipedia/006.png \\
        --clip ../shared/data/video/bigbuckbunny.mp4 --scene ../shared/data/splats/ply/biker_sh0.ply
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neurocodec.eval.environment import cpu_model

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["hyperprior-vr", "hyperprior-vr2", "hyperprior-vr3", "hyperprior-vr4", "mlic-vr"]
CLI = [sys.executable, "-m", "neurocodec.cli"]


def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` under /usr/bin/time -v: peak RSS (MB) and wall seconds."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip().splitlines()[-1]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = wall.groups()
    return {"peak_mb": round(rss / 1024), "seconds": round(int(h or 0) * 3600 + int(m) * 60
                                                             + float(s), 1)}


def child(mode: str, model: str, path: str, out: str) -> None:
    """The whole-image path in this process; prints peak RSS (MB) and seconds as JSON."""
    import torch

    from neurocodec.codecs.image.io import read_image, to_tensor
    from neurocodec.codecs.registry import load_codec

    m = load_codec(model).model
    t0 = time.perf_counter()
    with torch.no_grad():
        if mode == "encode":
            img, _ = read_image(path)
            streams, zs = m.compress(to_tensor(img), 3)
            Path(out).write_bytes(pickle.dumps({"streams": streams, "zs": zs,
                                                "hw": img.shape[:2]}))
        else:
            d = pickle.loads(Path(path).read_bytes())
            m.decompress(d["streams"], d["zs"], 3, d["hw"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"peak_mb": peak, "seconds": round(time.perf_counter() - t0, 1)}))


def whole(mode: str, model: str, path: Path, out: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", mode, model, str(path), str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"whole-image {mode} failed: {r.stderr.strip().splitlines()[-1]}")
    return json.loads(r.stdout.strip().splitlines()[-1])




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, required=True, help="photo resized to each size")
    ap.add_argument("--sizes", default="4000x3000,8000x8000")
    ap.add_argument("--whole-sizes", default="4000x3000")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--clip", type=Path)
    ap.add_argument("--scene", type=Path)
    ap.add_argument("--json", type=Path, default=ROOT / "docs/results/memory.json")
    ap.add_argument("--append", action="store_true",
                    help="keep the other rows of an existing --json (a row measured again "
                         "replaces its old one)")
    a = ap.parse_args()
    kept = json.loads(a.json.read_text())["results"] if a.append and a.json.exists() else []
    from PIL import Image

    rows, tmp = [], Path(tempfile.mkdtemp(prefix="nc-memory-"))
    src = Image.open(a.source).convert("RGB")
    for size in filter(None, a.sizes.split(",")):
        w, h = map(int, size.split("x"))
        img = tmp / f"photo_{size}.png"
        src.resize((w, h), Image.LANCZOS).save(img)
        for model in a.models.split(","):
            ncb, dec = tmp / f"{model}_{size}.ncb", tmp / f"{model}_{size}.png"
            r = {"medium": "image", "item": f"{a.source.name} resized to {size}", "model": model,
                 "encode": timed([*CLI, "encode", str(img), "-o", str(ncb), "--codec", model,
                                  "-q", "3", "--force"]),
                 "decode": timed([*CLI, "decode", str(ncb), "-o", str(dec), "--force"]),
                 "bytes": ncb.stat().st_size}
            if size in a.whole_sizes.split(","):
                pt = tmp / f"{model}_{size}.pt"
                r["whole_encode"] = whole("encode", model, img, pt)
                r["whole_decode"] = whole("decode", model, pt, pt)
                for k in ("encode", "decode"):
                    r[f"{k}_ratio"] = round(r[k]["peak_mb"] / r[f"whole_{k}"]["peak_mb"], 3)
            rows.append(r)
            print(json.dumps(r), flush=True)
            for f in (ncb, dec):
                f.unlink()
    if a.clip:
        ncb = tmp / "clip.ncb"
        rows.append({"medium": "video", "item": a.clip.name, "model": "hnerv (default -q, 1 epoch)",
                     "encode": timed([*CLI, "encode", str(a.clip), "-o", str(ncb), "--epochs",
                                      "1", "--force"]),
                     "decode": timed([*CLI, "decode", str(ncb), "-o", str(tmp / "clip.y4m"),
                                      "--force"]), "bytes": ncb.stat().st_size})
        print(json.dumps(rows[-1]), flush=True)
    if a.scene:
        ncb = tmp / "scene.ncb"
        rows.append({"medium": "splat", "item": a.scene.name, "model": "gsc (default -q)",
                     "encode": timed([*CLI, "encode", str(a.scene), "-o", str(ncb), "--force"]),
                     "decode": timed([*CLI, "decode", str(ncb), "-o", str(tmp / "scene.ply"),
                                      "--force"]), "bytes": ncb.stat().st_size})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'item':38s} {'model':16s} {'enc MB':>7s} {'dec MB':>7s} {'whole enc':>9s} "
          f"{'whole dec':>9s} {'ratio e/d':>11s}")
    for r in rows:
        we, wd = r.get("whole_encode", {}).get("peak_mb", ""), r.get("whole_decode", {}).get(
            "peak_mb", "")
        ratio = f"{r['encode_ratio']:.2f}/{r['decode_ratio']:.2f}" if "encode_ratio" in r else ""
        print(f"{r['item'][:38]:38s} {r['model'][:16]:16s} {r['encode']['peak_mb']:7d} "
              f"{r['decode']['peak_mb']:7d} {we!s:>9s} {wd!s:>9s} {ratio:>11s}")
    key = lambda r: (r["medium"], r["item"], r["model"])  # noqa: E731
    rows = [r for r in kept if key(r) not in {key(n) for n in rows}] + rows
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({
        "cpu": cpu_model(), "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/memory.py " + " ".join(sys.argv[1:]),
        "note": "peak RSS of the whole process (MB); machine shared with other jobs, so the "
                "seconds are loaded-machine figures",
        "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        main()
