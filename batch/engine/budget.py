"""The error budget: how many rows may fail before a job gives up.

Rows that fail keep flowing with their ``prediction_status``; the job aborts
only when the failures pass ``max_failed_rows`` or the share passes
``max_error_rate`` (judged once ``min_rows`` rows are in, or at the end, so one
bad row early does not stop a large job).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from batch.errors import ErrorBudgetExceeded

_REASON = re.compile(r"column '(?P<col>.+?)' has (?P<value>.+?) \((?P<why>expected [^)]+)\)")
MIN_ROWS_FOR_RATE = 1_000
EXAMPLES = 3


@dataclass(slots=True)
class ErrorBudget:
    max_error_rate: float
    max_failed_rows: int | None = None
    min_rows: int = MIN_ROWS_FOR_RATE
    rows: int = 0
    failed: int = 0
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, start_row: int, rows: int, failures: pa.RecordBatch | None) -> None:
        """Count a chunk of ``rows`` starting at input row ``start_row`` (0-based).

        ``failures`` holds the failed rows' ``row`` (in the chunk) and ``status``.
        """
        self.rows += rows
        if failures is None:
            return
        self.failed += failures.num_rows
        for idx, status in zip(failures.column("row").to_pylist(),
                               failures.column("status").to_pylist(), strict=True):
            for m in _REASON.finditer(status or ""):
                key = (m.group("col"), m.group("why"))
                self.reasons[key] += 1
                shown = self.examples.setdefault(key, [])
                if len(shown) < EXAMPLES:
                    shown.append(f"row {start_row + idx + 1:,}: {m.group('value')}")

    def check(self, *, final: bool = False) -> None:
        """Raise :class:`ErrorBudgetExceeded` when the budget is spent."""
        if self.max_failed_rows is not None and self.failed > self.max_failed_rows:
            self._fail(f"{self.failed:,} rows failed (more than --max-failed-rows "
                       f"{self.max_failed_rows:,})")
        if (final or self.rows >= self.min_rows) and self.rows:
            rate = self.failed / self.rows
            if rate > self.max_error_rate:
                self._fail(f"{self.failed:,} of {self.rows:,} rows failed ({rate:.1%}, more "
                           f"than --max-error-rate {self.max_error_rate:.1%})")

    def summary(self) -> str:
        parts = []
        for (col, why), count in self.reasons.most_common(5):
            examples = "; ".join(self.examples[(col, why)])
            parts.append(f"column '{col}' {why}: {count:,} rows ({examples})")
        return " | ".join(parts)

    def _fail(self, what: str) -> None:
        detail = self.summary()
        raise ErrorBudgetExceeded(
            f"error budget exceeded: {what}; first failures: {detail or 'n/a'}; nothing was "
            "published (fix the input, or raise the budget and run again with --resume)"
        )
