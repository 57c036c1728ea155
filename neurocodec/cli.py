"""The ``neurocodec`` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from neurocodec.errors import InputError, NeurocodecError


def _limits(a):
    from neurocodec.codecs.limits import DecodeLimits

    given = {k: getattr(a, k) for k in ("max_pixels", "max_frames", "max_gaussians")
             if getattr(a, k, None) is not None}
    return DecodeLimits(**given)


def _encode(a) -> int | None:
    from neurocodec.api import encode_item

    options = {}
    if a.refine is not None:
        from neurocodec.codecs.image.refine import RefineConfig

        lr = {} if a.refine_lr is None else {"lr": a.refine_lr}
        options["refine"] = RefineConfig(steps=a.refine, **lr)  # checks the values (InputError)
    elif a.refine_lr is not None:
        raise InputError("--refine-lr needs --refine STEPS")
    # Video: the reader's options (a raw clip's size, a frame range) and the fit's.
    options.update(video_size=a.video_size, frames=a.frames, params=a.params,
                   epochs=a.epochs, prune=a.prune, run_dir=a.run_dir, precision=a.precision)
    options.update(drop_alpha=a.drop_alpha or None, frame=a.frame)  # image reader
    options.update(hidden=a.prune_hidden)  # splat coder
    if Path(a.input).is_dir():
        if a.run_dir is not None:
            raise InputError("--run-dir keeps one clip's fit; a folder's clips are fitted "
                             "without it")
        from neurocodec.batch import encode_folder

        return _batch(encode_folder, a, codec=a.codec, quality=a.quality, **options)
    _file_only(a, "jobs", "progress")
    t = time.perf_counter()
    enc = encode_item(a.input, a.codec, a.quality, output=a.output, force=a.force, **options)
    dt = time.perf_counter() - t
    print(f"{a.input} -> {a.output}: {len(enc.data)} bytes, {enc.rate:.4f} {enc.medium.rate}, "
          f"{enc.codec.name} q={enc.quality}, {dt:.2f} s")


def _file_only(a, *names: str) -> None:
    """Batch flags are refused with a file input (default None: not given)."""
    given = [f"--{n}" for n in names if getattr(a, n, None) is not None]
    if given:
        raise InputError(f"{', '.join(given)}: for a folder input (DIR -o OUTDIR), and "
                         f"{a.input} is a file")


def _print_failure(f) -> None:
    from tqdm import tqdm

    tqdm.write(str(f), file=sys.stderr)  # above the progress bar, if one is drawn


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _batch(fn, a, **kwargs) -> int:
    """A folder encode/decode: FAILED lines on stderr, the summary on stdout; exit 0 if every
    file was coded or already there, 1 if any failed, 130 if interrupted (Ctrl-C or SIGTERM:
    the outputs written so far stay, a rerun finishes the rest)."""
    import threading

    from neurocodec.batch import BatchInterrupted

    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        r = fn(a.input, a.output, force=a.force, jobs=1 if a.jobs is None else a.jobs,
               progress=a.progress or "auto", on_failure=_print_failure, **kwargs)
    except BatchInterrupted as e:
        r = e.result
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old)
    print(r.summary())
    if r.interrupted:
        print("neurocodec: interrupted; rerun the same command to finish the rest",
              file=sys.stderr)
        return 130
    return 1 if r.failed else 0


def _decode(a) -> int | None:
    from neurocodec.api import decode_item

    if Path(a.input).is_dir():
        from neurocodec.batch import decode_folder

        return _batch(decode_folder, a, fmt=a.format, limits=_limits(a))
    _file_only(a, "jobs", "progress", "format")
    t = time.perf_counter()
    d = decode_item(a.input, output=a.output, force=a.force, limits=_limits(a))
    print(f"{a.input} -> {a.output}: {d.medium.describe(d.item)}, {d.codec.name}, "
          f"{time.perf_counter() - t:.2f} s")


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


def _render(a) -> None:
    from neurocodec.codecs.image.io import write_image
    from neurocodec.codecs.splat import render as R
    from neurocodec.codecs.splat.io import read_scene

    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: renders go into a folder, and this is a file")
    if a.views is not None and a.views < 1:
        raise InputError(f"--views must be at least 1, not {a.views}")
    scene = read_scene(a.input)
    t = time.perf_counter()
    if a.cameras:
        cams = R.cameras_from_json(Path(a.cameras))
    else:
        w, h = a.size
        cams = R.orbit_cameras(scene, a.views or 8, w, h, a.fov, up=a.up)
    views = R.render_views(scene, cams)
    out.mkdir(parents=True, exist_ok=True)
    for i, v in enumerate(views):
        write_image(out / f"view_{i:03d}.png", v, force=a.force)
    R.cameras_to_json(cams, out / "cameras.json")
    dt = time.perf_counter() - t
    print(f"{a.input}: {scene.n:,} Gaussians, {len(views)} views -> {out}/ "
          f"({dt / len(views):.2f} s/view; cameras in {out / 'cameras.json'})")


def _up(text: str) -> tuple[float, float, float]:
    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 3 or not any(v):
        raise argparse.ArgumentTypeError(f"--up must be x,y,z (not all zero), got {text!r}")
    return v


def _zoo(a) -> None:
    from neurocodec.codecs.registry import list_codecs

    rows = [c.to_json() for c in list_codecs(a.medium)]
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    for m in rows:
        star = "*" if m["default"] else " "
        print(f"{star}{m['name']:20s} {m['medium']:6s} {m['codec']:12s} q={m['qualities'][0]}.."
              f"{m['qualities'][-1]}  {m['description']}")


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


def _size_wh(text: str) -> tuple[int, int]:
    """``WxH`` -> ``(W, H)``."""
    h, w = _size(text)
    return w, h


def _frame_range(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame range must be A:B, got {text!r}") from None
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"frame range {text!r}: need 0 <= A < B")
    return a, b


def _codec_options(text: str) -> dict:
    try:
        v = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--codec-options: not JSON ({e})") from None
    if not isinstance(v, dict) or not all(isinstance(o, dict) for o in v.values()):
        raise argparse.ArgumentTypeError('--codec-options: expected {"codec": {"option": '
                                         'value, ...}, ...}')
    return v


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
                      title=a.title or "", codec_options=a.codec_options or {})
    run = run_bench(cfg)
    paths = write_bench_report(run)
    for name, why in run.unavailable.items():
        print(f"{name}: unavailable ({why})")
    for item, why in run.skipped.items():
        print(f"{item}: skipped ({why})")
    if cfg.anchor and cfg.anchor not in run.results:
        print(f"anchor {cfg.anchor!r} was not measured: BD-rates only against --extra curves")
    print(f"{run.points} points ({run.cached} cached) in {run.seconds:.0f} s; report: "
          f"{paths['markdown']} and {paths['html']}")


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="rate–distortion benchmark reports (BD-rate, plots, HTML)")
    bsub = b.add_subparsers(dest="medium", required=True)
    defaults = {"image": "hyperprior,jpeg,webp,jpeg2000,jpegxl,avif,heic,vvc,hevc",
                "video": "x264,x265,av1,vvc", "splat": "gsc,spz,sog"}
    anchors = {"splat": "sog"}
    for medium, codecs in defaults.items():
        m = bsub.add_parser(medium, help=f"benchmark {medium} codecs on a folder")
        m.add_argument("--data", required=True, help="folder (or, for video, a clip; for "
                                                      "splat, a scene)")
        m.add_argument("--codecs", default=codecs, help=f"comma-separated (default {codecs})")
        m.add_argument("--anchor", default=anchors.get(medium, "vvc"),
                       help="BD-rate reference among --codecs")
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
        m.add_argument("--codec-options", type=_codec_options, metavar="JSON",
                       help='encode options of registered codecs, e.g. \'{"hnerv": {"epochs": '
                            '60, "qualities": [0, 1, 2]}}\'')
        if medium == "video":
            m.add_argument("--frames", type=int, default=0, help="first N frames (0 = all)")
            m.add_argument("--size", type=_size, help="centre crop WxH")
        m.set_defaults(fn=_bench)


def _add_batch_flags(p) -> None:
    b = p.add_argument_group("folders (INPUT a folder, -o the output folder; docs/batch.md)")
    b.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="worker processes (default 1), each with cores/N threads")
    b.add_argument("--progress", choices=["auto", "on", "off"],
                   help="progress bar on stderr (default auto: when it is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurocodec", description="Learned compression codecs")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode", help="compress a file (the medium follows its extension) to "
                                      ".ncb, or every such file of a folder")
    e.add_argument("input", help="a file, or a folder: every file below it whose extension a "
                                 "medium reads, to OUTPUT/<same path>.ncb (existing outputs "
                                 "skipped unless --force)")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--codec", help="codec name (see `neurocodec zoo list`; default: the "
                                   "medium's default codec)")
    e.add_argument("-q", "--quality", type=int,
                   help="quality index of the codec (default: its middle quality)")
    e.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    e.add_argument("--refine", type=int, metavar="STEPS",
                   help="refine this image's latents by STEPS gradient steps on its rate–"
                        "distortion cost before coding (slower encode; same decoder)")
    e.add_argument("--refine-lr", type=float, metavar="LR",
                   help="learning rate of --refine (default: RefineConfig's)")
    e.add_argument("--drop-alpha", action="store_true",
                   help="code an image with transparency by discarding its alpha plane (the "
                        "stored colours are kept; without it such an image is refused)")
    e.add_argument("--frame", type=int, metavar="N",
                   help="code frame N (from 0) of an animated GIF/WebP/PNG (without it an "
                        "animation is refused: encode the clip with a video codec)")
    v = e.add_argument_group("video (hnerv, nerv: encoding fits a network to the clip)")
    v.add_argument("--video-size", type=_size_wh, metavar="WxH", help="frame size of a raw .yuv")
    v.add_argument("--frames", type=_frame_range, metavar="A:B", help="encode frames A..B-1")
    v.add_argument("--params", help="parameter budget, e.g. 300k or 0.3M (default: from -q)")
    v.add_argument("--epochs", type=int, help="fitting epochs (default: FitConfig's)")
    v.add_argument("--prune", type=float, metavar="F",
                   help="zero the fraction F of smallest weights during the fit (a splat "
                        "coder: drop the Gaussians whose opacity is below F)")
    v.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="arithmetic of the fit (default auto: bf16 autocast where the CPU has "
                        "bf16 arithmetic, AMX or AVX-512-BF16; fp32 elsewhere)")
    v.add_argument("--run-dir", metavar="DIR", help="keep the fit's checkpoint and logs here; "
                   "an interrupted fit resumes from it")
    g = e.add_argument_group("splat (gsc)")
    g.add_argument("--prune-hidden", type=float, metavar="F",
                   help="drop the least visible Gaussians that together make the fraction F "
                        "of 16 renders from all around the scene (e.g. 1e-4; slower encode)")
    _add_batch_flags(e)
    e.set_defaults(fn=_encode)
    d = sub.add_parser("decode", help="decompress a .ncb file (codec and medium from its "
                                      "header), or every .ncb file of a folder")
    d.add_argument("input", help="a .ncb file, or a folder: every .ncb below it, to OUTPUT/"
                                 "<same path> less .ncb (a.png.ncb -> a.png; a.jpg.ncb -> "
                                 "a.png; existing outputs skipped unless --force)")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("-f", "--force", action="store_true")
    _add_batch_flags(d)
    d.add_argument("--format", metavar="EXT",
                   help="folder decode: write this format (png, webp, ppm, ... mp4, y4m, ply, "
                        "spz, ...) for every file whose medium writes it")
    from neurocodec.codecs.limits import DecodeLimits

    caps = DecodeLimits()
    for flag, what, default in (("--max-pixels", "pixels per image or frame", caps.max_pixels),
                                ("--max-frames", "frames of a clip", caps.max_frames),
                                ("--max-gaussians", "Gaussians of a scene", caps.max_gaussians)):
        d.add_argument(flag, type=int, metavar="N",
                       help=f"refuse files declaring more {what} (default {default:,})")
    d.set_defaults(fn=_decode)
    i = sub.add_parser("info", help="print a .ncb file's header")
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=_info)
    z = sub.add_parser("zoo", help="registered codecs (shipped models and standalone codecs)")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True)
    zl = zsub.add_parser("list", help="one line per codec; * marks a medium's default")
    zl.add_argument("--json", action="store_true")
    zl.add_argument("--medium", help="only this medium's codecs")
    zl.set_defaults(fn=_zoo)
    r = sub.add_parser("render", help="render a 3DGS scene (PLY, SPZ, SOG, .splat) to PNG views")
    r.add_argument("input")
    r.add_argument("-o", "--output", required=True, help="folder for view_NNN.png + cameras.json")
    r.add_argument("--views", type=int, help="orbit cameras around the scene (default 8)")
    r.add_argument("--size", type=_size_wh, default=(256, 256), metavar="WxH")
    r.add_argument("--fov", type=float, default=50.0, help="horizontal field of view, degrees")
    r.add_argument("--up", type=_up, default=(0.0, -1.0, 0.0),
                   help="the scene's up axis (default 0,-1,0: COLMAP/3DGS; 0,0,1 for z-up)")
    r.add_argument("--cameras", help="render these cameras (JSON, as written to cameras.json)")
    r.add_argument("-f", "--force", action="store_true", help="overwrite existing views")
    r.set_defaults(fn=_render)
    _add_bench(sub)
    t = sub.add_parser("train", help="train a codec (options: neurocodec train image --help)",
                       add_help=False)
    t.add_argument("medium", choices=["image"])
    t.set_defaults(fn=_train)
    return p


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line, like the errors (not Python's two, file and source line)."""
    return "neurocodec: warning: " + " ".join(str(message).split()) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = build_parser()
    a, rest = p.parse_known_args(argv)
    if rest and a.cmd != "train":
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    plain = warnings.formatwarning
    warnings.formatwarning = _format_warning  # printing only: recorded warnings are unchanged
    try:
        if a.cmd == "train":
            a.fn(a, rest)
        else:
            rc = a.fn(a)
            if rc:
                return rc
    except NeurocodecError as e:
        print(f"neurocodec: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neurocodec: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = plain
    return 0


if __name__ == "__main__":
    sys.exit(main())
