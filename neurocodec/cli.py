"""The ``neurocodec`` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from neurocodec.errors import InputError, NeurocodecError


def _encode(a) -> None:
    from neurocodec.codecs.container import write_atomic
    from neurocodec.codecs.image.io import read_image
    from neurocodec.codecs.registry import DEFAULT_IMAGE_MODEL, load_codec

    out = Path(a.output)
    if out.exists() and not a.force:
        raise NeurocodecError(f"{out}: output exists (use --force to overwrite)")
    refine = None
    if a.refine is not None:
        from neurocodec.codecs.image.refine import RefineConfig

        lr = {} if a.refine_lr is None else {"lr": a.refine_lr}
        refine = RefineConfig(steps=a.refine, **lr)  # checks the values (InputError)
    elif a.refine_lr is not None:
        raise InputError("--refine-lr needs --refine STEPS")
    img, mode = read_image(a.input)
    codec = load_codec(a.codec or DEFAULT_IMAGE_MODEL)
    t = time.perf_counter()
    data = codec.encode(img, a.quality, meta={"input_mode": mode}, refine=refine)
    dt = time.perf_counter() - t
    write_atomic(out, data, force=a.force)
    h, w, _ = img.shape
    print(f"{a.input} -> {out}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, "
          f"{codec.name} q={a.quality}, {dt:.2f} s")


def _decode(a) -> None:
    from neurocodec.codecs.container import Container, read_file
    from neurocodec.codecs.image.io import WRITE_FORMATS, write_image
    from neurocodec.codecs.registry import load_codec

    out = Path(a.output)
    if out.suffix.lower() not in WRITE_FORMATS:
        raise NeurocodecError(f"{out}: unsupported output extension {out.suffix or '(none)'!r}")
    if out.exists() and not a.force:
        raise NeurocodecError(f"{out}: output exists (use --force to overwrite)")
    c = Container.from_bytes(read_file(a.input))
    codec = load_codec(c.model)
    t = time.perf_counter()
    img = codec.decode(c)
    dt = time.perf_counter() - t
    write_image(out, img, force=a.force)
    print(f"{a.input} -> {out}: {img.shape[1]}x{img.shape[0]}, {dt:.2f} s")


def _info(a) -> None:
    from neurocodec.codecs.container import Container, read_file

    data = read_file(a.input)
    c = Container.from_bytes(data)
    fields = {**c.header(), "file_bytes": len(data),
              "sections": [len(s) for s in c.sections]}
    if a.json:
        print(json.dumps(fields))
        return
    for k, v in fields.items():
        print(f"{k:10s} {v}")


def _zoo(a) -> None:
    from neurocodec.codecs.registry import list_models

    models = [m.to_json() for m in list_models()]
    if a.json:
        print(json.dumps(models, indent=2))
        return
    for m in models:
        print(f"{m['name']:20s} {m['medium']:6s} {m['codec']:12s} q={m['qualities'][0]}.."
              f"{m['qualities'][-1]}  {m['params'] / 1e6:.2f}M params  "
              f"{m['training_hours']:.1f} h training")


def _train_parser() -> argparse.ArgumentParser:
    """``neurocodec train image`` flags: one per TrainConfig field, each overriding --config."""
    from neurocodec.train.config import TrainConfig, config_fields

    p = argparse.ArgumentParser(
        prog="neurocodec train image", argument_default=argparse.SUPPRESS,
        description="Train an image codec (under torchrun: one process per device, DDP)")
    p.add_argument("--config", help="JSON file of TrainConfig fields; flags override it")
    p.add_argument("--lmbda", type=float, help="single-rate model at this λ (same as --lmbdas λ)")
    r = p.add_mutually_exclusive_group()
    r.add_argument("--resume", action="store_true",
                   help="continue the run in --out (an error if it has no checkpoint)")
    r.add_argument("--no-resume", action="store_true", help="start over even if --out has a "
                   "checkpoint (default: continue from it when there is one)")
    for name, default in config_fields().items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction)
        elif isinstance(default, tuple):
            p.add_argument(flag, nargs="+", type=float if "float" in TrainConfig.__annotations__[name] else int)
        elif isinstance(default, dict):
            p.add_argument(flag, type=json.loads, metavar="JSON")
        else:
            p.add_argument(flag, type=str if default is None else type(default))
    return p


def _train(a, rest: list[str]) -> None:
    from neurocodec.train.config import TrainConfig, read_config_file
    from neurocodec.train.trainer import train

    flags = vars(_train_parser().parse_args(rest))
    values = read_config_file(flags.pop("config")) if "config" in flags else {}
    resume, fresh = flags.pop("resume", False), flags.pop("no_resume", False)
    if "lmbda" in flags:
        if "lmbdas" in flags:
            raise InputError("give --lmbda or --lmbdas, not both")
        flags["lmbdas"] = (flags.pop("lmbda"),)
    values.update(flags)
    missing = [f"--{k}" for k in ("data", "out") if k not in values]
    if missing:
        raise InputError(f"{' and '.join(missing)} required (as flags or in --config)")
    cfg = TrainConfig(**values)
    ckpt = Path(cfg.out) / "checkpoint.pt"
    if resume and not ckpt.exists():
        raise InputError(f"{ckpt}: no checkpoint to resume from")
    train(cfg, resume=not fresh)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, got {text!r}") from None
    return h, w


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _bench(a) -> None:
    from neurocodec.eval.bench import BenchConfig, run_bench, write_bench_report

    for kind in ("vtm", "hm"):  # the reference encoders are found through the environment
        if getattr(a, f"{kind}_dir", None):
            os.environ[f"NEUROCODEC_{kind.upper()}_DIR"] = str(Path(getattr(a, f"{kind}_dir")))
    cfg = BenchConfig(data=a.data, codecs=tuple(c for c in a.codecs.split(",") if c),
                      out=a.out, medium=a.medium, anchor=a.anchor, extra=tuple(a.extra),
                      workers=a.workers, limit=a.limit, target_bpp=a.target_bpp or (),
                      bd_method=a.method, frames=getattr(a, "frames", 0),
                      size=getattr(a, "size", None), progress=not a.no_progress,
                      title=a.title or "")
    run = run_bench(cfg)
    paths = write_bench_report(run)
    for name, why in run.unavailable.items():
        print(f"{name}: unavailable ({why})")
    if cfg.anchor and cfg.anchor not in run.results:
        print(f"anchor {cfg.anchor!r} was not measured: BD-rates only against --extra curves")
    print(f"{run.points} points ({run.cached} cached) in {run.seconds:.0f} s; report: "
          f"{paths['markdown']} and {paths['html']}")


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="rate–distortion benchmark reports (BD-rate, plots, HTML)")
    bsub = b.add_subparsers(dest="medium", required=True)
    defaults = {"image": "hyperprior,jpeg,webp,jpeg2000,jpegxl,avif,heic,vvc,hevc",
                "video": "x264,x265,av1,vvc"}
    for medium, codecs in defaults.items():
        m = bsub.add_parser(medium, help=f"benchmark {medium} codecs on a folder")
        m.add_argument("--data", required=True, help="folder (or, for video, a clip)")
        m.add_argument("--codecs", default=codecs, help=f"comma-separated (default {codecs})")
        m.add_argument("--anchor", default="vvc", help="BD-rate reference among --codecs")
        m.add_argument("--extra", nargs="*", default=[], help="published CompressAI-schema JSONs")
        m.add_argument("--out", required=True, help="report folder (also the resume cache)")
        m.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        m.add_argument("--limit", type=int, default=0, help="only the first N items")
        m.add_argument("--target-bpp", type=_floats, help="bisect baselines' knobs to these bpp")
        m.add_argument("--method", choices=["pchip", "cubic", "akima"], default="pchip")
        m.add_argument("--vtm-dir", help="VTM build (or NEUROCODEC_VTM_DIR)")
        m.add_argument("--hm-dir", help="HM build (or NEUROCODEC_HM_DIR)")
        m.add_argument("--title")
        m.add_argument("--no-progress", action="store_true")
        if medium == "video":
            m.add_argument("--frames", type=int, default=0, help="first N frames (0 = all)")
            m.add_argument("--size", type=_size, help="centre crop WxH")
        m.set_defaults(fn=_bench)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurocodec", description="Learned compression codecs")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode", help="compress an image file to .ncb")
    e.add_argument("input")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--codec", help="model name (see `neurocodec zoo list`)")
    e.add_argument("-q", "--quality", type=int, default=3)
    e.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    e.add_argument("--refine", type=int, metavar="STEPS",
                   help="refine this image's latents by STEPS gradient steps on its rate–"
                        "distortion cost before coding (slower encode; same decoder)")
    e.add_argument("--refine-lr", type=float, metavar="LR",
                   help="learning rate of --refine (default: RefineConfig's)")
    e.set_defaults(fn=_encode)
    d = sub.add_parser("decode", help="decompress a .ncb file")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("-f", "--force", action="store_true")
    d.set_defaults(fn=_decode)
    i = sub.add_parser("info", help="print a .ncb file's header")
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=_info)
    z = sub.add_parser("zoo", help="shipped models")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True)
    zl = zsub.add_parser("list")
    zl.add_argument("--json", action="store_true")
    zl.set_defaults(fn=_zoo)
    _add_bench(sub)
    t = sub.add_parser("train", help="train a codec (options: neurocodec train image --help)",
                       add_help=False)
    t.add_argument("medium", choices=["image"])
    t.set_defaults(fn=_train)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = build_parser()
    a, rest = p.parse_known_args(argv)
    if rest and a.cmd != "train":
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if a.cmd == "train":
            a.fn(a, rest)
        else:
            a.fn(a)
    except NeurocodecError as e:
        print(f"neurocodec: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neurocodec: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
