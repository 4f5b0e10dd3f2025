"""A progress line on stderr: rows, rows/s, and percent and ETA when the size is known."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from batch.engine.report import JobReport
from connectors import Progress


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Redraws one line on a terminal; elsewhere prints a line every ``log_interval`` s."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval: float = 0.2,
        log_interval: float = 10.0,
    ) -> None:
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval if self._tty else log_interval
        self._started = time.monotonic()
        self._last = 0.0 if self._tty else self._started
        self._drawn = False

    def render(self, progress: Progress, report: JobReport) -> str:
        elapsed = max(1e-9, time.monotonic() - self._started)
        rate = report.rows_scored / elapsed
        parts = [f"{report.rows_scored:,} rows", f"{rate:,.0f} rows/s"]
        if report.rows_failed:
            parts.append(f"{report.rows_failed:,} failed")
        fraction = progress.fraction
        if fraction is not None:
            parts.append(f"{fraction:6.1%}")
            if fraction > 0:
                parts.append(f"ETA {format_duration(elapsed * (1 - fraction) / fraction)}")
            width = 24
            filled = int(width * fraction)
            parts.insert(0, "[" + "#" * filled + "." * (width - filled) + "]")
        return " | ".join(parts)

    def update(self, progress: Progress, report: JobReport) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        line = self.render(progress, report)
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
            self._drawn = True
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._drawn = False


def summary_line(report: JobReport) -> str:
    """The one line printed when a job ends."""
    return (
        f"scored {report.rows_scored:,} rows ({report.rows_failed:,} failed) in "
        f"{report.seconds:.1f} s, {report.rows_per_second:,.0f} rows/s -> {report.output}"
    )
