"""Progress for long loops that are not `model.fit`: style-transfer steps, DeepDream octaves, counting.

    with Progress(400, "style transfer") as bar:
        for step in range(400):
            loss = train_step()
            bar.update(loss=float(loss))

    for octave in track(octaves, desc="octaves"):
        ...

On a terminal it is one live line drawn by `rich` (installed with Keras), redrawn at most 10 times
a second so a fast loop does not spend its time printing: bar, count, percentage, elapsed time,
ETA and the latest metrics. Anywhere else (a log file, a pipe, CI, a notebook's captured stderr)
it writes a plain line about every 10% of the way or every 10 s, and a final line with the total
time: that part is ours, because neither library does it (Keras's Progbar writes to stdout, which
would mix with a command's --json output, and prints only at the end when it has no terminal;
rich's live display, too, shows nothing in a log until it stops). Always on stderr.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, TextIO, TypeVar

T = TypeVar("T")

REDRAW_INTERVAL = 0.1  # s between redraws of the live line
LOG_INTERVAL = 10.0  # s between plain lines when `every` is not given
BAR_WIDTH = 20  # characters of the live bar


def format_duration(seconds: float) -> str:
    """12 -> "12s", 125 -> "2m05s", 3725 -> "1h02m"."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class Progress:
    """A progress reporter: a live bar on a terminal, periodic plain lines elsewhere.

    Args:
        total: the number of steps expected; None when unknown (no percentage, bar or ETA).
        desc: a label at the start of the line.
        stream: where to write; default sys.stderr (looked up when the Progress is made).
        every: for a non-terminal stream, a line every `every` steps; default about every 10% of
            `total` or every 10 s, whichever comes first. Ignored on a terminal.
        unit: what a step is called in the rate ("step/s", "octave/s").
        disable: write nothing at all.
        clock: seconds, monotonic; injectable so tests need not sleep.
    """

    def __init__(self, total: Optional[int], desc: str = "", *, stream: Optional[TextIO] = None,
                 every: Optional[int] = None, unit: str = "step", disable: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        if total is not None and int(total) < 0:
            raise ValueError(f"total must be a non-negative integer or None. Received: total={total}")
        if every is not None and int(every) < 1:
            raise ValueError(f"every must be a positive integer. Received: every={every}")
        self.total = None if total is None else int(total)
        self.desc = desc
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.disable = disable
        self.clock = clock
        self.n = 0
        self.metrics: Dict[str, Any] = {}
        self.closed = False
        self.live = not disable and _is_tty(self.stream)
        self._by_time = every is None  # a chosen `every` means by step count only
        if every is not None:
            self.every = int(every)
        elif self.total:
            self.every = max(1, math.ceil(self.total / 10))
        else:
            self.every = None  # unknown total: by time only
        self.start = self._last_write = clock()
        self._last_n = 0  # count at the last plain line
        self._live = self._start_live() if self.live else None

    # -- numbers ---------------------------------------------------------------------------------

    def elapsed(self, now: Optional[float] = None) -> float:
        return (self.clock() if now is None else now) - self.start

    def rate(self, now: Optional[float] = None) -> float:
        """Steps per second, averaged since the start (nan before any time has passed)."""
        elapsed = self.elapsed(now)
        return self.n / elapsed if elapsed > 0 else math.nan

    def eta(self, now: Optional[float] = None) -> float:
        """Seconds left at the average rate so far: (total - n) * elapsed / n; nan when unknown."""
        if self.total is None or self.n <= 0:
            return math.nan
        return max(self.total - self.n, 0) * self.elapsed(now) / self.n

    # -- updates ---------------------------------------------------------------------------------

    def update(self, n: int = 1, **metrics: Any) -> None:
        """Count `n` more steps done; `metrics` (loss=0.12) are shown with the line until replaced."""
        if self.closed:
            return
        self.n += n
        self.metrics.update(metrics)
        if self.disable:
            return
        now = self.clock()
        if self.live:
            if now - self._last_write >= REDRAW_INTERVAL:
                self._draw(now)
        elif self.total is None or self.n < self.total:  # the last step is left to close()'s line
            by_steps = self.every is not None and self.n - self._last_n >= self.every
            by_time = self._by_time and now - self._last_write >= LOG_INTERVAL
            if by_steps or by_time:
                self._line(self.format(now))
                self._last_n, self._last_write = self.n, now

    def close(self) -> None:
        """Write the final state (with the total time) and end the line. Called again, does nothing."""
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        now = self.clock()
        if self.live:
            self._draw(now)
            self._live[0].stop()  # ends the line
        else:
            self._line(self.format(now, final=True))

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- output ----------------------------------------------------------------------------------

    def format(self, now: Optional[float] = None, final: bool = False) -> str:
        """The plain status line: "desc: 30/100 (30%) 12s, 2.50 step/s, ETA 28s, loss=0.1234"."""
        now = self.clock() if now is None else now
        parts = [f"{self.desc}: " if self.desc else ""]
        if self.total:
            parts.append(f"{self.n}/{self.total} ({self.n / self.total:.0%})")
        else:
            parts.append(f"{self.n} {self.unit}{'s' if self.n != 1 else ''}")
        timing = [format_duration(self.elapsed(now)) + (" in all" if final else "")]
        rate = self.rate(now)
        if math.isfinite(rate) and self.n > 0:
            # Slow steps (an octave, a long optimisation step) read better as seconds per step.
            timing.append(f"{rate:.2f} {self.unit}/s" if rate >= 1 else f"{1 / rate:.2f} s/{self.unit}")
        if not final and self.total:
            timing.append(f"ETA {format_duration(self.eta(now))}")
        parts.append(" " + ", ".join(timing))
        if self.metrics:
            parts.append(", " + self._metrics_text())
        return "".join(parts)

    def _metrics_text(self) -> str:
        return ", ".join(f"{k}={_format_value(v)}" for k, v in self.metrics.items())

    def _start_live(self):
        """rich's progress line on `self.stream`, refreshed only when `_draw` asks (our clock
        throttles it, and tests drive it without sleeping)."""
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TaskProgressColumn,
                                   TextColumn, TimeElapsedColumn, TimeRemainingColumn)

        columns = [TextColumn("{task.description}"), BarColumn(bar_width=BAR_WIDTH)]
        columns += [MofNCompleteColumn(), TaskProgressColumn()] if self.total else \
            [TextColumn("{task.completed} " + self.unit + "s")]
        columns += [TimeElapsedColumn()] + ([TimeRemainingColumn()] if self.total else [])
        columns.append(TextColumn("{task.fields[metrics]}"))
        bar = RichProgress(*columns, console=Console(file=self.stream, force_terminal=True),
                           auto_refresh=False, get_time=self.clock)
        bar.start()
        return bar, bar.add_task(self.desc, total=self.total, metrics="")

    def _draw(self, now: float) -> None:
        bar, task = self._live
        bar.update(task, completed=self.n, metrics=self._metrics_text())
        bar.refresh()
        self._last_write = now

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def track(iterable: Iterable[T], total: Optional[int] = None, desc: str = "", **kwargs: Any) -> Iterator[T]:
    """Yield from `iterable`, counting each item as done when the next is asked for.

    `total` defaults to len(iterable) when it has one; other arguments as for `Progress`.
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:  # a generator: no total, no ETA
            total = None
    with Progress(total, desc, **kwargs) as progress:
        for item in iterable:
            yield item
            progress.update()


__all__ = ["BAR_WIDTH", "LOG_INTERVAL", "Progress", "REDRAW_INTERVAL", "format_duration", "track"]
