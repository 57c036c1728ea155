"""Batch mode: every file of a folder coded into a mirror folder, and back
(``neurocodec encode DIR -o OUTDIR`` / ``neurocodec decode DIR -o OUTDIR``; docs/batch.md).

    from neurocodec.batch import encode_folder, decode_folder
    r = encode_folder("photos", "ncb", quality=3, jobs=2)      # -> BatchResult
    print(r.summary())                                         # encoded 118 of 120 files (...)
    decode_folder("ncb", "decoded")

* **What is taken.** Encode: every file below ``src`` (recursively, hidden files and folders
  left out, symbolic links to folders not followed) whose extension a medium reads — the same
  medium detection as a single-file encode; with ``codec``, only that codec's medium. Decode:
  every ``*.ncb``. An output folder inside ``src`` is not walked.
* **Names.** Encode keeps the whole name: ``src/sub/a.png`` -> ``out/sub/a.png.ncb`` (so
  ``a.png`` and ``a.jpg`` never collide). Decode drops ``.ncb``; a name that then ends in an
  extension the file's medium writes is kept (``a.png.ncb`` -> ``a.png``, ``s.spz.ncb`` ->
  ``s.spz``), any other gets the medium's default in place of a readable extension
  (``a.jpg.ncb`` -> ``a.png``, ``clip.mkv.ncb`` -> ``clip.mp4``, ``x.ncb`` -> ``x.png``);
  ``fmt`` (e.g. ``".webp"``) is used instead for every file whose medium writes it. Where
  that would give two files one name (``a.png.ncb`` and ``a.jpg.ncb``), those whose extension
  was replaced keep it instead (``a.jpg.png``); files that still share a name are all refused
  (reported), never one written over the other.
* **Reruns.** An existing output is skipped (counted, not redone): outputs are written
  atomically, so one that exists is complete, and rerunning an interrupted batch finishes the
  rest. ``force=True`` codes every file again, each output replaced atomically once its new
  content is complete. Temporary files a killed run left beside this run's outputs
  (``.NAME.XXXXXXXX.tmp``) are removed first.
* **Failures.** A file that cannot be read, coded or written is a :class:`Failed` (with a
  one-line reason) and the others go on. A worker process that dies (killed, out of memory)
  fails only the file it held; a fresh worker takes the rest.
* **Jobs.** ``jobs=1`` codes in this process; ``jobs=N`` runs N spawned worker processes, each
  with ``cores // N`` torch (and numba) threads, each loading a model once and keeping it for
  every file it codes. Files are handed out one at a time, so a slow file does not hold up
  the others.
* **Interruption.** Ctrl-C (KeyboardInterrupt) stops the batch at once: workers ignore the
  terminal's SIGINT and are stopped by SIGTERM, which unwinds the file in hand (its temporary
  output removed); :class:`BatchInterrupted` carries the result so far.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocodec.errors import InputError, NeurocodecError

NCB = ".ncb"
PROGRESS = ("auto", "on", "off")
STOP_WAIT_S = 30.0  # how long stopped workers get to unwind before they are killed

PathLike = str | Path


@dataclass(frozen=True)
class Task:
    """One file to code and where its output goes."""

    source: Path
    output: Path


@dataclass(frozen=True)
class Done:
    source: Path
    output: Path
    bytes_in: int
    bytes_out: int
    seconds: float


@dataclass(frozen=True)
class Failed:
    source: Path
    reason: str  # one line

    def __str__(self) -> str:
        return f"FAILED {self.source}: {self.reason}"


@dataclass
class BatchResult:
    """What a batch did: ``done`` (coded now), ``failed``, ``skipped`` (the output was there),
    and, when interrupted, the rest not started. Bytes count the files coded now."""

    action: str  # "encode" or "decode"
    total: int  # files found
    done: list[Done] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    skipped: list[Task] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def bytes_in(self) -> int:
        return sum(d.bytes_in for d in self.done)

    @property
    def bytes_out(self) -> int:
        return sum(d.bytes_out for d in self.done)

    @property
    def not_done(self) -> int:
        """Files neither coded, failed nor skipped (an interrupted batch's rest)."""
        return self.total - len(self.done) - len(self.failed) - len(self.skipped)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    def summary(self) -> str:
        verb = "encoded" if self.action == "encode" else "decoded"
        rest = f", {self.not_done} not done: interrupted" if self.interrupted else ""
        return (f"{verb} {len(self.done)} of {self.total} files ({len(self.failed)} failed, "
                f"{len(self.skipped)} skipped{rest}) {_size(self.bytes_in)} -> "
                f"{_size(self.bytes_out)} in {self.seconds:.1f} s")


class BatchInterrupted(KeyboardInterrupt):
    """A batch stopped by Ctrl-C; ``result`` is what it did until then."""

    def __init__(self, result: BatchResult):
        super().__init__("batch interrupted")
        self.result = result


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# --- planning ----------------------------------------------------------------------------

def _walk(src: Path, keep: Callable[[Path], bool], out: Path) -> tuple[list[Path], list[Failed]]:
    """Files below ``src`` that ``keep`` accepts, sorted, without hidden entries and without
    ``out`` when it lies inside ``src``; a folder that cannot be listed is a failure."""
    errors: list[Failed] = []
    skip = out.resolve() if out.resolve() != src.resolve() else None

    def unlisted(e: OSError) -> None:
        errors.append(Failed(Path(e.filename or src), f"cannot list folder ({e.strerror})"))

    files = []
    for d, dirs, names in os.walk(src, onerror=unlisted):
        dirs[:] = sorted(x for x in dirs if not x.startswith(".")
                         and (skip is None or Path(d, x).resolve() != skip))
        files += [Path(d, f) for f in sorted(names) if not f.startswith(".") and keep(Path(d, f))]
    return files, errors


def _check_folders(src: PathLike, out: PathLike) -> tuple[Path, Path]:
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: a folder's outputs go into a folder, and this is a file")
    return src, out


def _unique(tasks: list[Task]) -> tuple[list[Task], list[Failed]]:
    """Tasks whose output no other task shares; those that share one are all refused."""
    by: dict[str, list[Task]] = {}
    for t in tasks:
        by.setdefault(os.path.normcase(t.output), []).append(t)
    ok, bad = [], []
    for t in tasks:
        group = by[os.path.normcase(t.output)]
        if len(group) == 1:
            ok.append(t)
        else:
            others = ", ".join(str(o.source) for o in group if o is not t)
            bad.append(Failed(t.source, f"{t.output} would also be the output of {others} "
                                        f"(code it on its own with -o)"))
    return ok, bad


def plan_encode(src: PathLike, out: PathLike, codec: str | None = None
                ) -> tuple[list[Task], list[Failed]]:
    """The files of ``src`` to encode into ``out`` (``NAME.EXT`` -> ``NAME.EXT.ncb``), and
    those refused before any work."""
    from neurocodec.codecs import registry

    src, out = _check_folders(src, out)
    media = list(registry.media().values())
    if codec is not None:
        want = registry.get_entry(codec).medium  # an unknown codec: refused here
        media = [m for m in media if m.name == want]
    files, errors = _walk(src, lambda p: any(m.handles(p) for m in media), out)
    tasks = [Task(f, out / f.relative_to(src).parent / (f.name + NCB)) for f in files]
    tasks, clash = _unique(tasks)
    return tasks, errors + clash


def decoded_name(name: str, medium, fmt: str | None = None, whole: bool = False) -> str:
    """The output name of ``NAME.ncb`` (``name`` without ``.ncb``) holding a ``medium`` item
    (see the module's docstring); ``whole``: append the extension, never replace one."""
    p = Path(name)
    suffix = p.suffix.lower()
    writable = suffix in medium.write_exts and (medium.output_error is None
                                                or medium.output_error(p) is None)
    if fmt is not None and fmt in medium.write_exts:
        ext = fmt
    elif writable:
        return name
    else:
        ext = medium.default_output_ext
    known = suffix in medium.read_exts or suffix in medium.write_exts
    return (p.stem if known and not whole else name) + ext


def _format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    from neurocodec.codecs import registry

    ext = "." + fmt.lower().lstrip(".")
    exts = sorted({e for m in registry.media().values() for e in m.write_exts
                   if e.startswith(".")})
    if ext not in exts:
        raise InputError(f"--format {fmt!r}: not an output format (one of "
                         f"{', '.join(e[1:] for e in exts)})")
    return ext


def plan_decode(src: PathLike, out: PathLike, fmt: str | None = None
                ) -> tuple[list[Task], list[Failed]]:
    """The ``.ncb`` files of ``src`` to decode into ``out``, each named from its header's
    medium (only the header is read here), and those refused before any work."""
    from neurocodec.codecs import registry
    from neurocodec.codecs.container import read_header

    src, out = _check_folders(src, out)
    ext = _format(fmt)
    files, errors = _walk(src, lambda p: p.suffix.lower() == NCB, out)
    media = registry.media()
    tasks, whole = [], {}
    for f in files:
        try:
            h = read_header(f)
        except NeurocodecError as e:
            errors.append(Failed(f, _reason(e, f)))
            continue
        m = media.get(h["medium"])
        if m is None:
            errors.append(Failed(f, f"holds medium {h['medium']!r}, which this build cannot "
                                    f"decode (it has: {', '.join(sorted(media))})"))
            continue
        folder, name = out / f.relative_to(src).parent, f.name[: -len(NCB)]
        tasks.append(Task(f, folder / decoded_name(name, m, ext)))
        whole[f] = folder / decoded_name(name, m, ext, whole=True)
    count: dict[str, int] = {}
    for t in tasks:
        count[os.path.normcase(t.output)] = count.get(os.path.normcase(t.output), 0) + 1
    tasks = [t if count[os.path.normcase(t.output)] == 1 else Task(t.source, whole[t.source])
             for t in tasks]
    tasks, clash = _unique(tasks)
    return tasks, errors + clash


# --- one file ----------------------------------------------------------------------------

def _reason(e: BaseException, source: Path) -> str:
    msg = str(e) if isinstance(e, NeurocodecError) else f"{e.__class__.__name__}: {e}"
    msg = msg.removeprefix(f"{source}: ")
    return " ".join(msg.split()) or e.__class__.__name__


def _disk_size(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def run_one(action: str, task: Task, options: dict, force: bool, cache: dict) -> Done | Failed:
    """Code one file; any error becomes a :class:`Failed` (an interruption is not one)."""
    from neurocodec import api

    t = time.perf_counter()
    try:
        task.output.parent.mkdir(parents=True, exist_ok=True)
        if action == "encode":
            n = len(api.encode_item(task.source, output=task.output, force=force, cache=cache,
                                    **options).data)
        else:
            api.decode_item(task.source, output=task.output, force=force, cache=cache, **options)
            n = _disk_size(task.output)
        return Done(task.source, task.output, task.source.stat().st_size, n,
                    time.perf_counter() - t)
    except Exception as e:  # a bug or a library's error on one odd file ends that file only
        return Failed(task.source, _reason(e, task.source))


# --- worker processes --------------------------------------------------------------------

def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _unwind(signum, frame) -> None:
    raise SystemExit(128 + signum)  # the file in hand unwinds: write_atomic removes its temp


def _worker(conn, action: str, options: dict, force: bool, threads: int) -> None:
    """One worker process: tasks in over ``conn`` one at a time, results out; ``None`` ends.
    It leaves through ``os._exit``: every output is complete (renamed into place) or removed
    by then, and the interpreter's teardown with torch loaded takes seconds."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the parent's
    signal.signal(signal.SIGTERM, _unwind)
    try:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)  # before numba loads
        import torch

        torch.set_num_threads(threads)
        cache: dict = {}
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                break
            if task is None:
                break
            result = run_one(action, task, options, force, cache)
            try:
                conn.send(result)
            except OSError:
                break
    except SystemExit as e:  # SIGTERM: the file in hand has unwound
        os._exit(e.code if isinstance(e.code, int) else 1)
    os._exit(0)


@contextmanager
def _no_sigint() -> Iterator[None]:
    """Children started inside inherit an ignored SIGINT (Python keeps it ignored), so a
    Ctrl-C while a worker starts up cannot print its traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@dataclass
class _Worker:
    proc: Any
    conn: Any
    index: int | None = None  # the task it holds


def _died(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _pool(todo: list[Task], jobs: int, action: str, options: dict, force: bool,
          record: Callable[[Task, Done | Failed], None]) -> None:
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")  # not fork: torch's threads and a forked parent don't mix
    threads = max(1, _cores() // jobs)
    queue = deque(range(len(todo)))
    workers: list[_Worker] = []

    def feed(w: _Worker) -> None:
        w.index = queue.popleft() if queue else None
        try:
            w.conn.send(None if w.index is None else todo[w.index])
        except OSError:  # it died; its sentinel says so
            pass

    def start() -> None:
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child, action, options, force, threads),
                        name="neurocodec-batch", daemon=True)
        with _no_sigint():
            p.start()
        child.close()
        w = _Worker(p, parent)
        workers.append(w)
        feed(w)

    def finish(w: _Worker) -> None:
        w.proc.join()
        if w.index is not None:
            record(todo[w.index], Failed(todo[w.index].source, f"the worker coding it died "
                                                               f"({_died(w.proc.exitcode)})"))
        w.conn.close()
        workers.remove(w)
        if queue:
            start()

    try:
        for _ in range(min(jobs, len(todo))):
            start()
        while workers:
            ready = set(wait([w.conn for w in workers] + [w.proc.sentinel for w in workers]))
            for w in list(workers):
                if w.conn in ready:
                    try:
                        result = w.conn.recv()
                    except (EOFError, OSError):
                        finish(w)
                        continue
                    record(todo[w.index], result)
                    feed(w)
                elif w.proc.sentinel in ready:
                    finish(w)
    except BaseException:
        _stop(workers, todo, record)
        raise


def _stop(workers: list[_Worker], todo: list[Task],
          record: Callable[[Task, Done | Failed], None]) -> None:
    """SIGTERM every worker (the file in hand unwinds), wait, kill what is left; a result a
    worker sent before it stopped still counts."""
    for w in workers:
        if w.proc.is_alive():
            w.proc.terminate()
    deadline = time.monotonic() + STOP_WAIT_S
    for w in workers:
        w.proc.join(max(0.0, deadline - time.monotonic()))
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join()
        try:
            if w.index is not None and w.conn.poll():
                result = w.conn.recv()
                if isinstance(result, (Done, Failed)):
                    record(todo[w.index], result)
        except Exception:  # a message cut short by the stop
            pass
        w.conn.close()


# --- a batch -----------------------------------------------------------------------------

def _sweep(tasks: list[Task]) -> None:
    from neurocodec.codecs.container import stale_temporaries

    folders: dict[Path, set[str]] = {}
    for t in tasks:
        folders.setdefault(t.output.parent, set()).add(t.output.name)
    for d, names in folders.items():
        for tmp in stale_temporaries(d, names):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def _check_run(jobs: int, progress: str) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"--jobs must be a whole number of at least 1, not {jobs!r}")
    if progress not in PROGRESS:
        raise InputError(f"--progress must be auto, on or off, not {progress!r}")


def run(action: str, tasks: list[Task], refused: list[Failed], options: dict, *,
        force: bool = False, jobs: int = 1, progress: str = "auto",
        on_failure: Callable[[Failed], None] | None = None) -> BatchResult:
    """Code planned ``tasks`` (``refused``: the plan's failures, reported first)."""
    from tqdm import tqdm

    _check_run(jobs, progress)
    start = time.perf_counter()
    result = BatchResult(action, total=len(tasks) + len(refused))
    report = on_failure or (lambda f: None)
    for f in refused:
        result.failed.append(f)
        report(f)
    _sweep(tasks)
    todo = []
    for t in tasks:
        if not force and (t.output.exists() or t.output.is_symlink()):
            result.skipped.append(t)
        else:
            todo.append(t)
    disable = {"on": False, "off": True, "auto": not sys.stderr.isatty()}[progress]
    bar = tqdm(total=len(todo), unit="file", desc=action, disable=disable, file=sys.stderr,
               dynamic_ncols=True)

    def record(task: Task, r: Done | Failed) -> None:
        if isinstance(r, Done):
            result.done.append(r)
        else:
            result.failed.append(r)
            report(r)
            bar.set_postfix_str(f"{len(result.failed)} failed", refresh=False)
        bar.update()

    try:
        if jobs == 1 or len(todo) <= 1:
            cache: dict = {}
            for t in todo:
                record(t, run_one(action, t, options, force, cache))
        else:
            _pool(todo, jobs, action, options, force, record)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        bar.close()
        result.seconds = time.perf_counter() - start
    if result.interrupted:
        raise BatchInterrupted(result)
    return result


def _check_quality(tasks: list[Task], codec: str | None, quality: int | None) -> None:
    """A quality no codec of the batch has is refused once, before any work (not per file)."""
    if quality is None:
        return
    from neurocodec.codecs import registry

    names = {codec} if codec else {registry.default_codec(registry.medium_for_path(t.source)
                                                          .name) for t in tasks}
    for name in sorted(names):
        q = registry.get_entry(name).qualities
        if isinstance(quality, bool) or quality not in q:
            hint = "" if codec else "; give --codec to code one medium"
            raise InputError(f"quality {quality!r} not available for {name} (valid: "
                             f"{q[0]}..{q[-1]}){hint}")


def encode_folder(src: PathLike, out: PathLike, codec: str | None = None,
                  quality: int | None = None, *, force: bool = False, jobs: int = 1,
                  progress: str = "auto", on_failure: Callable[[Failed], None] | None = None,
                  **options: Any) -> BatchResult:
    """Encode every file of ``src`` whose medium is known (``codec``: only its medium's) into
    ``out``, mirroring its folders; ``quality`` and ``options`` as for
    :func:`neurocodec.api.encode_item`, applied to every file. ``on_failure`` is called with
    each :class:`Failed` as it happens. Raises :class:`BatchInterrupted` on Ctrl-C."""
    _check_run(jobs, progress)
    tasks, refused = plan_encode(src, out, codec)
    if not tasks and not refused:
        raise InputError(f"{src}: no files to encode (none with an extension a medium reads"
                         f"{'' if codec is None else f' for {codec}'})")
    _check_quality(tasks, codec, quality)
    Path(out).mkdir(parents=True, exist_ok=True)
    return run("encode", tasks, refused, {"codec": codec, "quality": quality, **options},
               force=force, jobs=jobs, progress=progress, on_failure=on_failure)


def decode_folder(src: PathLike, out: PathLike, *, fmt: str | None = None, force: bool = False,
                  limits=None, jobs: int = 1, progress: str = "auto",
                  on_failure: Callable[[Failed], None] | None = None) -> BatchResult:
    """Decode every ``.ncb`` file of ``src`` into ``out``, mirroring its folders (names: see
    the module's docstring; ``fmt``: e.g. ``".webp"`` for every medium that writes it);
    ``limits``: a :class:`~neurocodec.codecs.limits.DecodeLimits` for every file."""
    _check_run(jobs, progress)
    tasks, refused = plan_decode(src, out, fmt)
    if not tasks and not refused:
        raise InputError(f"{src}: no .ncb files to decode")
    Path(out).mkdir(parents=True, exist_ok=True)
    return run("decode", tasks, refused, {"limits": limits}, force=force, jobs=jobs,
               progress=progress, on_failure=on_failure)
