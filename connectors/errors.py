"""Errors raised by connectors.

``connectors`` knows nothing of models or the engine, so its errors have their
own root; each also inherits the matching built-in, so a caller can decide by
type alone (retry, exit code, HTTP status), never by the message::

    ConnectorError
    ├── ConnectorConfigError(ValueError)   a bad option, URI or setting: fix it, do not retry
    │   ├── CredentialsInUriError          a URI carries credentials (never echoed)
    │   └── UnknownSchemeError             no connector for a URI scheme (with install hint)
    ├── InputFormatError(ValueError)     unreadable input: bad CSV, bad encoding, empty file
    ├── QueryError(ValueError)           a database rejected a query (syntax, unknown column)
    ├── SourceNotFoundError(FileNotFoundError)   no object/file at the given URI
    ├── BucketNotFoundError(FileNotFoundError)   the bucket/container a URI names does not exist
    ├── AuthenticationError(PermissionError)     a database or store refused the credentials
    ├── AccessDeniedError(PermissionError)       a store refused an operation on a bucket/key
    ├── ConnectionFailedError(ConnectionError)   an endpoint could not be reached (after retries)
    ├── ReadError(OSError)               the store failed a read (server error, past retries)
    └── OutputError(OSError)             output cannot be written or published
        └── OutputExistsError(FileExistsError)   the output exists; no overwrite/replace given

Every ``ValueError`` here is permanent (the same job fails the same way);
``ConnectionFailedError``, ``ReadError`` and ``OutputError`` may pass on retry,
except ``OutputExistsError``, which stays until the job asks to overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ConnectorError(Exception):
    """Root of the errors connectors raise."""


class ConnectorConfigError(ConnectorError, ValueError):
    """A mistake in options, URIs or settings; the message names the option and its source.

    Retrying cannot fix it: the job must change.
    """


class InputFormatError(ConnectorError, ValueError):
    """Input that cannot be parsed; the message names the file and what to do."""


class SourceNotFoundError(ConnectorError, FileNotFoundError):
    """The input named by a URI does not exist."""


class OutputError(ConnectorError, OSError):
    """The output cannot be written, committed or published."""


class OutputExistsError(OutputError, FileExistsError):
    """The output already exists and the job did not ask to overwrite or replace it."""


class UnknownSchemeError(ConnectorConfigError):
    """No connector handles a URI scheme."""


class AuthenticationError(ConnectorError, PermissionError):
    """The credentials were refused; the message names account and user, never the secret."""


class ConnectionFailedError(ConnectorError, ConnectionError):
    """The endpoint could not be reached, or the connection dropped, after bounded retries."""


class QueryError(ConnectorError, ValueError):
    """The database rejected a query; the message echoes the query's first line."""


class BucketNotFoundError(ConnectorError, FileNotFoundError):
    """The bucket (or container) a URI names does not exist; the message names it."""


class CredentialsInUriError(ConnectorConfigError):
    """A URI carries credentials; they must come from the environment or a profile.

    The message shows the URI with the credentials masked, never the secret.
    """


class AccessDeniedError(ConnectorError, PermissionError):
    """The store refused an operation; the message names the operation, bucket and key."""


class ReadError(ConnectorError, OSError):
    """The store failed to serve the input (a server error or a dropped read, past retries)."""


# pydantic's wording for an error type, where the default reads badly after a field name
_MESSAGES = {"extra_forbidden": "not a known option"}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def config_error(
    exc: ValidationError,
    where: str,
    *,
    known_options: Iterable[str] = (),
    hints: Mapping[str, str] | None = None,
) -> ConnectorConfigError:
    """The :class:`ConnectorConfigError` for options or settings that failed validation.

    The message names the first bad field as the user wrote it and where its value
    came from, never the value (an option or variable may hold a secret by mistake),
    e.g. ``input option 'delimiter': String should have at most 1 character (known
    options: format, delimiter, ...)``.

    Args:
        exc: pydantic's error.
        where: the value's source, with ``{field}`` where the field's name goes, or
            ``{FIELD}`` for it upper-cased: ``"input option '{field}'"``,
            ``"environment variable SNOWFLAKE_{FIELD}"``.
        known_options: the valid names, listed at the end (for an unknown option).
        hints: what to do next, by field name.

    The caller raises it ``from exc``, or ``from None`` when the model keeps its input
    in its errors (pydantic's error would carry a secret given by mistake).
    """
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    message = _MESSAGES.get(error["type"], error["msg"])
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    source = where.replace("{field}", field).replace("{FIELD}", field.upper())
    hint = (hints or {}).get(field)
    known = ", ".join(known_options)
    more = len(exc.errors()) - 1
    return ConnectorConfigError(
        f"{source}: {message}" + (f"; {hint}" if hint else "")
        + (f" (and {more} more)" if more else "")
        + (f" (known options: {known})" if known else ""))
