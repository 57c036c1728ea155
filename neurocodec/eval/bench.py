"""The benchmark runner: codec × quality × item, in parallel worker processes, resumable.

Each finished point (one codec, one quality or target bpp, one image or clip) is appended to
``<out>/cache/<codec>.jsonl`` at once, keyed on the item's path relative to ``--data`` and the
reading options (video: ``--frames``, ``--size``) and tagged with the codec's fingerprint (its
description, which names library versions and, for our models, the weights hash), so an
interrupted run picks up where it stopped and a changed codec is re-measured. An item that
cannot be read is skipped (and reported), not the end of the run. The per-codec results follow
CompressAI's schema (means over items per quality) plus per-item rows and the environment.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from neurocodec.errors import BaselineUnavailable, InputError, NeurocodecError
from neurocodec.eval.baselines import Baseline
from neurocodec.eval.environment import environment
from neurocodec.eval.tables import MetricTable, table_for


@dataclass(frozen=True)
class Medium:
    """What differs between ``bench image``, ``bench video`` (and, once it lands, ``bench
    splat``): how items are found and loaded, how a codec name resolves, the metrics of a
    decoded item against the original, the rate's denominator and the metric table."""

    name: str
    list_items: Callable[[str], list[Path]]
    load: Callable[[Path], object]  # → e.g. uint8 [H, W, 3] or [T, H, W, 3]
    resolve: Callable[[str], Baseline]
    metrics: Callable[[object, object], dict[str, float]]  # keys: table.metrics
    units: Callable[[object], int]  # pixels (x frames), Gaussians
    table: MetricTable
    reading: str = ""  # the options that change what ``load`` makes of an item (cache key)
    # Code one item untimed before a worker's first timed point of a codec, so that loading
    # compiled kernels (numba, seconds) is not booked to that point. Off where one encode is
    # itself minutes (video fits) and the load is lost in it.
    warm_up: bool = True


@dataclass
class BenchConfig:
    data: str
    codecs: tuple[str, ...]
    out: str
    medium: str = "image"
    anchor: str | None = None
    extra: tuple[str, ...] = ()
    workers: int = 2
    limit: int = 0
    target_bpp: tuple[float, ...] = ()
    bd_method: str = "pchip"
    frames: int = 0  # video: first N frames (0 = all)
    size: tuple[int, int] | None = None  # video: centre crop (H, W)
    progress: bool = True
    title: str = ""
    # codec name -> options of its encode, for registered codecs (e.g. {"hnerv": {"epochs":
    # 60, "qualities": [0, 1, 2]}}); they become part of the codec's cache fingerprint
    codec_options: dict = field(default_factory=dict)


@dataclass
class BenchRun:
    config: BenchConfig
    results: dict[str, dict] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)  # relative to the data folder
    skipped: dict[str, str] = field(default_factory=dict)  # unreadable item -> why
    points: int = 0
    cached: int = 0
    seconds: float = 0.0


# --- media -------------------------------------------------------------------------------

def _pixels(x: np.ndarray) -> int:
    """Pixels of ``[H, W, 3]`` or ``[T, H, W, 3]`` (every frame's): the rate's denominator."""
    return int(np.prod(x.shape[:-1]))


def _image_medium(cfg: BenchConfig) -> Medium:
    from neurocodec.codecs.image.io import read_image
    from neurocodec.datasets.images import list_images
    from neurocodec.eval.metrics import image_metrics
    from neurocodec.eval.models import resolve_image_codec

    return Medium("image", list_images, lambda p: read_image(p)[0],
                  partial(resolve_image_codec, options=cfg.codec_options),
                  image_metrics, _pixels, table_for("image"))


def _video_medium(cfg: BenchConfig) -> Medium:
    from neurocodec.datasets.video import list_clips, read_clip
    from neurocodec.eval.metrics import video_metrics
    from neurocodec.eval.models import resolve_video_codec

    size = "x".join(map(str, cfg.size[::-1])) if cfg.size else "full"
    return Medium("video", list_clips, partial(read_clip, frames=cfg.frames, size=cfg.size),
                  partial(resolve_video_codec, options=cfg.codec_options), video_metrics,
                  _pixels, table_for("video"), reading=f"frames={cfg.frames or 'all'},size={size}",
                  warm_up=False)


SPLAT_VIEWS = 8  # orbit views a decoded scene is rendered from (256 x 256)
SPLAT_SIZE = 256


def _list_scenes(data: str) -> list[Path]:
    from neurocodec.errors import InputError

    p = Path(data)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise InputError(f"{data}: no such file or folder")
    return sorted(f for f in p.iterdir() if f.is_file()
                  and f.suffix.lower() in (".ply", ".splat", ".spz", ".sog"))


def _splat_metrics(ref, rec, _views: dict = {}) -> dict[str, float]:  # noqa: B006 - a cache
    """Render PSNR / SSIM of ``rec`` against ``ref`` (rendered once per scene)."""
    from neurocodec.codecs.splat.render import orbit_cameras, render_quality, render_views

    key = id(ref)
    if key not in _views:
        cams = orbit_cameras(ref, SPLAT_VIEWS, SPLAT_SIZE, SPLAT_SIZE)
        _views.clear()
        _views[key] = (ref, cams, render_views(ref, cams))
    _, cams, views = _views[key]
    q = render_quality(ref, rec, cams, reference_views=views)
    return {"psnr-rgb": float(q["psnr"]), "ssim-rgb": float(q["ssim"])}


def _splat_medium(cfg: BenchConfig) -> Medium:
    from neurocodec.codecs.splat.io import read_scene
    from neurocodec.eval.models import resolve_splat_codec

    return Medium("splat", _list_scenes, read_scene,
                  partial(resolve_splat_codec, options=cfg.codec_options), _splat_metrics,
                  lambda s: int(s.n), table_for("splat"))


MEDIA: dict[str, Callable[[BenchConfig], Medium]] = {"image": _image_medium,
                                                      "video": _video_medium,
                                                      "splat": _splat_medium}


def bench_medium(cfg: BenchConfig) -> Medium:
    if cfg.medium not in MEDIA:
        raise InputError(f"cannot benchmark medium {cfg.medium!r} "
                         f"(known: {', '.join(sorted(MEDIA))})")
    return MEDIA[cfg.medium](cfg)


# --- one point, in a worker --------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(cfg: BenchConfig, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER["medium"] = bench_medium(cfg)
    _WORKER["data"] = cfg.data


def _cached(kind: str, key, make):
    d = _WORKER.setdefault(kind, {})
    if key not in d:
        d[key] = make()
    return d[key]


def run_point(codec: str, spec: tuple[str, float], item: str) -> dict:
    """Measure one point: ``spec`` is ``("q", quality)`` or ``("bpp", target)``."""
    from neurocodec.eval.targeting import find_knob

    medium: Medium = _WORKER["medium"]
    name = item_name(item, _WORKER["data"])
    b = _cached("codecs", codec, lambda: medium.resolve(codec))
    try:
        x = _cached("items", item, lambda: medium.load(Path(item)))
    except NeurocodecError as e:  # one unreadable item is skipped, not the end of the run
        return {"item": name, "skipped": str(e)}
    shape = x.shape[:-1] if isinstance(x, np.ndarray) else None
    warm = _WORKER.setdefault("warm", set())
    if medium.warm_up and codec not in warm:
        warm.add(codec)
        b.decode(b.encode(x, b.qualities[0]), shape)
    t0 = time.perf_counter()
    if spec[0] == "bpp":
        knob, data = find_knob(b, x, spec[1])
    else:
        knob, data = spec[1], b.encode(x, spec[1])
    t1 = time.perf_counter()
    rec = b.decode(data, shape)
    t2 = time.perf_counter()
    return {"item": name, "spec": list(spec), "knob": knob, "bytes": len(data),
            medium.table.rate: 8.0 * len(data) / medium.units(x), **medium.metrics(x, rec),
            "encoding_time": t1 - t0, "decoding_time": t2 - t1}


# --- the run -----------------------------------------------------------------------------

def _specs(b: Baseline, cfg: BenchConfig) -> list[tuple[str, float]]:
    if cfg.target_bpp and b.knob is not None:
        return [("bpp", float(t)) for t in cfg.target_bpp]
    return [("q", q) for q in b.qualities]


def item_name(item: str, data: str) -> str:
    """The item's path relative to the data folder (its name when ``data`` is the item)."""
    try:
        rel = Path(item).relative_to(data).as_posix()
    except ValueError:
        rel = "."
    return Path(item).name if rel == "." else rel


def _key(codec: str, spec, item: str, cfg: BenchConfig, medium: Medium) -> str:
    tag = f"|{medium.reading}" if medium.reading else ""
    return f"{codec}|{spec[0]}={spec[1]}|{item_name(item, cfg.data)}{tag}"


def _load_cache(path: Path, fingerprint: str) -> dict[str, dict]:
    rows = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interrupted run
                continue
            if r.get("fingerprint") == fingerprint:
                rows[r["key"]] = r["point"]
    return rows


def aggregate(name: str, b: Baseline, points: list[dict], table: MetricTable) -> dict:
    """CompressAI-schema results: per-quality means over items, sorted by rate."""
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        groups.setdefault(tuple(p["spec"]), []).append(p)
    cols: dict[str, list[float]] = {k: [] for k in table.columns}
    specs = sorted(groups, key=lambda s: np.mean([p[table.rate] for p in groups[s]]))
    for s in specs:
        for k in table.columns:
            cols[k].append(float(np.mean([p[k] for p in groups[s]])))
    return {"name": name, "description": b.description, "results": cols,
            "qualities": [s[1] if s[0] == "q" else f"{s[1]} bpp" for s in specs],
            "per_image": sorted(points, key=lambda p: (str(p["spec"]), p["item"])),
            "environment": environment()}


def run_bench(cfg: BenchConfig) -> BenchRun:
    """Run every (available) codec of ``cfg`` and write ``<out>/<codec>.json``."""
    from tqdm import tqdm

    start = time.perf_counter()
    medium = bench_medium(cfg)
    items = [str(p) for p in medium.list_items(cfg.data)][: cfg.limit or None]
    if not items:
        raise InputError(f"{cfg.data}: nothing to benchmark (no {cfg.medium} files)")
    out = Path(cfg.out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    run = BenchRun(cfg, items=[item_name(i, cfg.data) for i in items])

    codecs: dict[str, Baseline] = {}
    for name in cfg.codecs:
        try:
            codecs[name] = medium.resolve(name)
        except BaselineUnavailable as e:
            run.unavailable[name] = str(e)

    todo, done = [], {}
    for name, b in codecs.items():
        done[name] = _load_cache(out / "cache" / f"{name}.jsonl", b.description)
        for spec in _specs(b, cfg):
            for item in items:
                k = _key(name, spec, item, cfg, medium)
                if k in done[name]:
                    run.cached += 1  # of this run's points (the cache may hold others)
                else:
                    todo.append((name, spec, item))
    run.points = run.cached + len(todo)

    workers = max(1, min(cfg.workers, len(todo) or 1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    bar = tqdm(total=len(todo), disable=not cfg.progress, unit="pt", dynamic_ncols=True,
               desc=f"bench {cfg.medium}")

    def record(task, point):
        name, spec, item = task
        bar.update()
        if "skipped" in point:
            run.skipped[point["item"]] = point["skipped"]
            run.points -= 1
            return
        k = _key(name, spec, item, cfg, medium)
        done[name][k] = point
        with open(out / "cache" / f"{name}.jsonl", "a") as f:
            f.write(json.dumps({"key": k, "fingerprint": codecs[name].description,
                                "point": point}) + "\n")
        t = medium.table
        bar.set_postfix_str(f"{name} {spec[0]}={spec[1]}: {point[t.rate]:.3f} {t.rate} "
                            f"{point[t.primary.key]:.2f} {t.primary.key}")

    try:
        if workers == 1:
            _init_worker(cfg, threads)
            for task in todo:
                record(task, run_point(*task))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker, initargs=(cfg, threads)) as ex:
                futures = {ex.submit(run_point, *t): t for t in todo}
                for fut in as_completed(futures):
                    record(futures[fut], fut.result())
    finally:
        bar.close()

    if len(run.skipped) == len(items):
        first = next(iter(run.skipped.values()))
        raise InputError(f"{cfg.data}: no item could be read ({len(items)} skipped; {first})")
    readable = [i for i in items if item_name(i, cfg.data) not in run.skipped]
    for name, b in codecs.items():  # every codec's means over the same items
        keys = {_key(name, s, i, cfg, medium) for s in _specs(b, cfg) for i in readable}
        res = aggregate(name, b, [p for k, p in done[name].items() if k in keys], medium.table)
        (out / f"{name}.json").write_text(json.dumps(res, indent=1))
        run.results[name] = res
    run.seconds = time.perf_counter() - start
    with open(out / "cache" / "runs.jsonl", "a") as f:  # the report sums measuring time
        f.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": run.seconds,
                            "measured": len(todo), "cached": run.cached,
                            "workers": workers}) + "\n")
    return run



def _published(paths: tuple[str, ...]) -> dict[str, dict]:
    from neurocodec.eval.bdrate import load_results

    out = {}
    for p in paths:
        try:
            r = load_results(p)
            r["results"]["bpp"]  # noqa: B018 - a schema check with a clear error
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"{p}: not a CompressAI-schema results file ({e})") from None
        out[r.get("name") or Path(p).stem] = r
    return out


def write_bench_report(run: BenchRun) -> dict[str, Path]:
    """The report of ``run`` (plus every earlier run's measuring time) into its out dir."""
    from neurocodec.eval.report import ReportInput, write_report

    cfg, out = run.config, Path(run.config.out)
    runs = [json.loads(line) for line in (out / "cache" / "runs.jsonl").read_text().splitlines()
            if line.strip()]
    title = cfg.title or f"neurocodec {cfg.medium} benchmark: {Path(cfg.data).name}"
    inp = ReportInput(
        title=title, results=run.results, published=_published(cfg.extra),
        table=table_for(cfg.medium),
        anchor=cfg.anchor, method=cfg.bd_method, unavailable=run.unavailable,
        skipped=run.skipped,
        meta={"data": cfg.data, "items": len(run.items) - len(run.skipped),
              "points": run.points,
              "cached": run.cached, "seconds": sum(r["seconds"] for r in runs),
              "runs": len(runs),
              "workers": max([r["workers"] for r in runs if r["measured"]] or [cfg.workers]),
              "environment": environment(), "target_bpp": list(cfg.target_bpp)})
    return write_report(inp, out)
