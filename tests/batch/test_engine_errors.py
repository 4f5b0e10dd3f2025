"""The engine's error tree and its one renderer of pydantic validation errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from batch.engine.spec import JobSpec
from batch.errors import (
    BatchPredError,
    ConfigError,
    ErrorBudgetExceeded,
    JobError,
    validation_message,
)


def _problem(**fields: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate({"model": "m", "input": "i", "output": "o", **fields})
    return caught.value


def test_every_problem_is_named_on_one_line() -> None:
    message = validation_message(_problem(chunk_size="10B", workers=-1))
    assert "\n" not in message
    assert message == ("field 'chunk_size': '10B' is below the 1KiB minimum; field 'workers': "
                       "Input should be greater than or equal to 0 (got -1)")


def test_the_command_line_names_its_option_and_the_first_problem() -> None:
    message = validation_message(_problem(workers=-1, max_error_rate=2), first=True,
                                 field=lambda f: "--" + f.replace("_", "-"))
    assert message == "--workers: Input should be greater than or equal to 0 (got -1)"


def test_an_exhausted_budget_is_a_job_error_of_the_engine() -> None:
    assert issubclass(ErrorBudgetExceeded, JobError)
    assert issubclass(ErrorBudgetExceeded, BatchPredError) and issubclass(ConfigError, ValueError)
