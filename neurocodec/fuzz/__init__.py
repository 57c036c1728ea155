"""Fuzzing every decoder and file reader (docs/fuzzing.md).

* :mod:`.targets` — the table: one :class:`~.targets.Target` per decoder or reader (``.ncb``
  of each codec, the container, rANS streams, array streams, every splat, video and image
  file reader), with its seeds, its case maker and the exceptions it documents;
* :mod:`.mutate` / :mod:`.formats` — format-blind and format-aware mutations (the latter
  repair checksums and lengths so a case reaches the code behind them);
* :mod:`.seeds` — tiny valid files, made once per process;
* :mod:`.guard` — one case under a deadline and a memory bound;
* :mod:`.campaign` / ``python -m neurocodec.fuzz`` — the long run (``make fuzz``).

``tests/test_fuzz.py`` runs the same targets under Hypothesis on every ``make test``.
"""

from neurocodec.fuzz.guard import Outcome, RssMeter, run_case
from neurocodec.fuzz.targets import TARGETS, Target

__all__ = ["TARGETS", "Outcome", "RssMeter", "Target", "run_case"]
