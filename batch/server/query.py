"""The query arguments of a prediction request.

``passthroughColumns`` (repeatable) and ``passthroughColumnsSet=all`` choose
the input columns copied to the output; ``decimalsNumber`` rounds the
predicted values. Any other argument (``maxExplanations``, ...) is ignored, as
the Portable Prediction Server ignores what it does not implement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batch.scoring.columns import ScoringOptions
from batch.server.errors import QueryArgumentError

MAX_DECIMALS = 15


@dataclass(frozen=True, slots=True)
class PredictionQuery:
    passthrough: tuple[str, ...] = ()
    passthrough_all: bool = False
    decimals: int | None = None

    @classmethod
    def parse(cls, columns: Sequence[str], column_set: str | None,
              decimals: str | None) -> PredictionQuery:
        """Raises :class:`QueryArgumentError` naming the argument."""
        if column_set is not None and column_set.lower() != "all":
            raise QueryArgumentError(
                f"passthroughColumnsSet must be 'all', got {column_set!r}")
        if column_set is not None and columns:
            raise QueryArgumentError(
                "give passthroughColumns or passthroughColumnsSet=all, not both")
        return cls(tuple(columns), column_set is not None, _decimals(decimals))

    @property
    def scoring_options(self) -> ScoringOptions:
        return ScoringOptions(passthrough=self.passthrough, passthrough_all=self.passthrough_all)


def _decimals(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_DECIMALS:
        raise QueryArgumentError(
            f"decimalsNumber must be a whole number from 0 to {MAX_DECIMALS}, got {value!r}")
    return number
