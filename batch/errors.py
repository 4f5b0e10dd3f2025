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
    └── JobError(RuntimeError)           a scoring job that failed (worker died, ...)
        └── ErrorBudgetExceeded          too many rows failed; nothing was published

Errors from the storage layer are :class:`connectors.errors.ConnectorError`;
they are not re-wrapped, the CLI renders both the same way.
"""

from __future__ import annotations


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


class JobError(BatchPredError, RuntimeError):
    """A scoring job failed as a whole."""


class ErrorBudgetExceeded(JobError):
    """Too many rows failed; the message summarises the first failures.

    Another attempt on the same input fails the same way: flows do not retry it.
    """
