"""Running one fuzz case under guards: a deadline, a memory bound and the rule that a file is
either decoded or refused with its reader's documented exception and a one-line message.

Memory: before each case the process' peak RSS is reset (``echo 5 > /proc/self/clear_refs``,
Linux 4.0+), and after it the case's peak is ``VmHWM`` minus the RSS it started from — every
allocation counts (numpy, torch, Pillow, libwebp), not only Python's, and pages a decoder
reserved but never touched do not. Where the reset is unavailable the bound applies to
``ru_maxrss`` against the process' peak before the first case: coarser (a case is only
flagged if it lifts the process' all-time peak), never laxer.

Deadline: a case whose CPU time (this process' threads and the children it waited for, e.g.
ffmpeg) passes the deadline is a failure, and so is one whose wall time passes
:data:`WALL_FACTOR` times it: CPU time does not count the time another job on a shared
machine takes, wall time catches a case blocked without working. A ``SIGALRM`` timer at the
wall limit also interrupts a case stuck in Python code (a numba kernel or a C library
finishes its call first; the measured time still flags it).
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE = 400  # characters of an error message the CLI prints on one line
WALL_FACTOR = 10  # wall-clock limit of a case, in deadlines
OK = ("decoded", "rejected")


class Hang(BaseException):
    """Raised by the alarm; a BaseException, so no decoder's ``except Exception`` eats it."""


@dataclass
class Outcome:
    """``status``: ``decoded``, ``rejected`` (a documented error) or a failure: ``crash`` (any
    other exception), ``message`` (documented type, but not one short line), ``hang``,
    ``memory``, ``bad-output`` (decoded, but not what the reader promises)."""

    status: str
    error: str = ""  # exception type name
    message: str = ""
    seconds: float = 0.0  # CPU time (see the module notes)
    wall: float = 0.0
    peak_mb: float = 0.0
    trace: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in OK


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise KeyError(key)


class RssMeter:
    """Peak resident memory of one case, in MiB (see the module notes)."""

    def __init__(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            _status_kb("VmHWM:")
            self.per_case = True
        except OSError:
            self.per_case = False
        self.base = self._maxrss()

    @staticmethod
    def _maxrss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    def start(self) -> None:
        if self.per_case:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = _status_kb("VmRSS:")

    def peak_mb(self) -> float:
        now = _status_kb("VmHWM:") if self.per_case else self._maxrss()
        return max(0, now - self.base) / 1024.0


@contextmanager
def alarm(seconds: float):
    """Raise :class:`Hang` in this (main) thread after ``seconds``; a no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal,
                                                                                "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise Hang(f"no result after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _cpu() -> float:
    """CPU seconds of this process (ns resolution) and of the children it waited for
    (``os.times``: clock ticks; only ffmpeg runs there)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def short_trace(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)[-4:]
    where = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}"
                        for f in reversed(frames))
    return f"{type(e).__name__}: {str(e)[:200]} at {where}"


def run_case(run, x: Any, allowed: tuple[type[BaseException], ...], meter: RssMeter,
             deadline: float = 2.0, mem_mb: float = 512.0, check=None) -> Outcome:
    """Decode one fuzzed input ``x`` with ``run(x)`` under the guards. ``check(result)``
    returns None for an acceptable result, else what is wrong with it."""
    meter.start()
    t, cpu = time.perf_counter(), _cpu()
    out = Outcome("decoded")
    try:
        with warnings.catch_warnings(), alarm(WALL_FACTOR * deadline):
            warnings.simplefilter("ignore")
            result = run(x)
        if check is not None:
            why = check(result)
            if why:
                out = Outcome("bad-output", message=str(why)[:200])
        del result
    except Hang as e:
        out = Outcome("hang", "Hang", str(e))
    except allowed as e:
        msg = str(e)
        ok = msg and "\n" not in msg and "\r" not in msg and len(msg) <= MAX_MESSAGE
        out = Outcome("rejected" if ok else "message", type(e).__name__, msg[:MAX_MESSAGE],
                      trace="" if ok else short_trace(e))
    except Exception as e:  # noqa: BLE001 - anything else a decoder raises is the finding
        out = Outcome("crash", type(e).__name__, str(e)[:200], trace=short_trace(e))
    out.wall = time.perf_counter() - t
    out.seconds = _cpu() - cpu
    out.peak_mb = meter.peak_mb()
    if not out.failed and (out.seconds > deadline or out.wall > WALL_FACTOR * deadline):
        out.status = "hang"
        out.message = (f"took {out.seconds:.2f} s of CPU, {out.wall:.2f} s of wall time "
                       f"(deadline {deadline:g} s)")
    if not out.failed and out.peak_mb > mem_mb:
        out.status = "memory"
        out.message = f"peak RSS +{out.peak_mb:.0f} MiB (bound {mem_mb:g} MiB)"
    return out
