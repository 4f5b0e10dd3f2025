"""Errors raised by the engine.

Every error the engine raises on purpose derives from :class:`BatchPredError`
and from the built-in it most resembles, so callers can catch either::

    BatchPredError
    ├── ConfigError(ValueError)          a bad option or setting
    ├── PackageError(ValueError)         a model package that cannot be read or loaded
    ├── SchemaError(ValueError)          input that does not fit the feature schema
    ├── ModelOutputError(RuntimeError)   a model whose output breaks the contract
    ├── UserCodeError(RuntimeError)      an exception raised inside user model code
    ├── DeploymentError(LookupError)     an unknown or invalid deployment
    │   └── IncompatibleModelError(ValueError)  a model that cannot stand in for the champion
    └── JobError(RuntimeError)           a scoring job that failed (worker died, ...)
        ├── ErrorBudgetExceeded          too many rows failed; nothing was published
        └── IncompleteInputError(ValueError)  fewer rows than the input holds were scored

Errors from the storage layer are :class:`connectors.errors.ConnectorError`;
they are not re-wrapped, the CLI renders both the same way.
:func:`validation_message` is the one way a pydantic ``ValidationError`` (a job
spec, a manifest, a record) becomes the text of one of these errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic loads with what it validates, not with this module
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails


class BatchPredError(Exception):
    """Root of the errors the engine raises on purpose."""


class ConfigError(BatchPredError, ValueError):
    """An option or setting is invalid; the message names it."""


class PackageError(BatchPredError, ValueError):
    """A model package is invalid: bad ``model.yaml``, missing or corrupt artifact."""


class SchemaError(BatchPredError, ValueError):
    """Input data does not fit the model's feature schema."""


class ModelOutputError(BatchPredError, RuntimeError):
    """A model returned output that breaks the scoring contract."""


class UserCodeError(BatchPredError, RuntimeError):
    """User model code (``custom.py``, a pickled estimator) raised an exception."""


class DeploymentError(BatchPredError, LookupError):
    """A deployment is unknown or invalid."""


class IncompatibleModelError(DeploymentError, ValueError):
    """A challenger or new champion that predicts another target than the champion (name,
    type, classes, positive class), or needs features it does not, without ``--force``.
    Nothing was changed."""


class JobError(BatchPredError, RuntimeError):
    """A scoring job failed as a whole."""


class ErrorBudgetExceeded(JobError):
    """Too many rows failed; the message summarises the first failures.

    Another attempt on the same input fails the same way: flows do not retry it.
    """


class IncompleteInputError(JobError, ValueError):
    """The job's chunks held fewer rows or chunks than the input was seen to hold.

    Nothing is published; another attempt reads the input the same way.
    """


def yaml_message(exc: BaseException) -> str:
    """One line for a YAML parse error: ``line 3, column 7: could not find expected ':'``.

    PyYAML's own text spans several lines (and repeats the offending line); the
    position and the problem are what a reader needs.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def validation_message(exc: ValidationError, *, field: Callable[[str], str] | None = None,
                       first: bool = False) -> str:
    """One line for a pydantic ``ValidationError``: each problem as ``field 'a.b': why``.

    ``field`` renders a field's dotted location (default ``field 'a.b'``; the command
    line gives its option instead, ``--chunk-size``); a problem of the whole object
    is its message alone. ``first``: only the first problem. Our own validators name
    the value in their message; pydantic's own messages get ``(got ...)`` when the
    value is a plain scalar.
    """
    name = field or (lambda where: f"field {where!r}")
    errors = exc.errors()[:1] if first else exc.errors()
    return "; ".join(f"{name(where)}: {_why(e)}" if (where := _where(e)) else _why(e)
                     for e in errors)


def _where(error: ErrorDetails) -> str:
    """The field's dotted location; empty for a problem of the whole (a model validator)."""
    return ".".join(str(part) for part in error["loc"])


def _why(error: ErrorDetails) -> str:
    msg = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] not in ("value_error", "missing") and isinstance(value, str | int | float):
        msg = f"{msg} (got {value!r})"
    return msg
