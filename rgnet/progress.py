"""Progress of long work as plain lines, for logs: what is being done, the time elapsed, the time left.

On a terminal the training commands show a tqdm bar; piped or redirected, a bar prints nothing until it closes,
so they write these lines instead (one per unit of work, and within a long unit one every :data:`PACE` seconds),
each a whole line, flushed. The analysis commands report each stage as it starts through a ``log`` callable
(:class:`Stages`). One helper for every command, so that every log line reads the same.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

#: Seconds between two progress lines within one unit of work: often enough that a log never looks hung, rarely
#: enough that an hour of training is a screenful.
PACE = 30.0

Log = Callable[[str], None]


def to_stderr(text: str) -> None:
    """One line to stderr, flushed (a log shows it at once, whatever buffers stderr)."""
    print(text, file=sys.stderr, flush=True)


def on_terminal(stream=None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal, where a bar redraws in place."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def duration(seconds: float) -> str:
    """``seconds`` for a reader: ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def left(done: float, total: float, elapsed: float) -> str:
    """The time left at the pace so far (``~3 min 05 s``), ``?`` before anything is done."""
    if done <= 0:
        return "?"
    return "~" + duration(elapsed * max(total - done, 0) / done)


class Clock:
    """Seconds since the work started, and whether a paced line is due (``PACE`` seconds after the last line)."""

    def __init__(self, pace: float | None = None, now: Callable[[], float] = time.monotonic):
        self.now, self.pace = now, PACE if pace is None else pace
        self.start = self.last = now()

    @property
    def elapsed(self) -> float:
        return self.now() - self.start

    def due(self) -> bool:
        return self.now() - self.last >= self.pace

    def mark(self) -> None:
        self.last = self.now()


class Stages:
    """The lines of a computation in stages, each with the time elapsed since it began in front
    (``[1 min 05 s] text``), for ``log`` (None: silent). Call it with a line; :meth:`paced` writes a line of a
    long loop only when the last line is :data:`PACE` seconds old. :meth:`of` keeps one clock through nested
    calls: a function handed a :class:`Stages` as its ``log`` goes on with it.
    """

    def __init__(self, log: Log | None, clock: Clock | None = None):
        self.log, self.clock = log, clock or Clock()

    @classmethod
    def of(cls, log: Log | None) -> Stages:
        return log if isinstance(log, Stages) else cls(log)

    def __call__(self, text: str) -> None:
        if self.log is not None:
            self.log(f"[{duration(self.clock.elapsed)}] {text}")
        self.clock.mark()

    def paced(self, text: str) -> None:
        if self.clock.due():
            self(text)
