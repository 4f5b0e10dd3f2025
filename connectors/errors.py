"""Errors raised by connectors.

``connectors`` knows nothing of models or the engine, so its errors have their
own root; each also inherits the matching built-in::

    ConnectorError
    ├── InputFormatError(ValueError)     unreadable input: bad CSV, bad encoding, empty file
    ├── SourceNotFoundError(FileNotFoundError)   no object/file at the given URI
    ├── BucketNotFoundError(FileNotFoundError)   the bucket/container a URI names does not exist
    ├── ReadError(OSError)               the store failed a read (server error, past retries)
    ├── OutputError(OSError)             output cannot be written or published
    ├── UnknownSchemeError(ValueError)   no connector for a URI scheme (with install hint)
    ├── CredentialsInUriError(ValueError)   a URI carries credentials (never echoed)
    ├── AuthenticationError(PermissionError)     a database refused the credentials
    ├── AccessDeniedError(PermissionError)       a store refused an operation on a bucket/key
    ├── ConnectionFailedError(ConnectionError)   an endpoint could not be reached (after retries)
    └── QueryError(ValueError)           a database rejected a query (syntax, unknown column)
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of the errors connectors raise."""


class InputFormatError(ConnectorError, ValueError):
    """Input that cannot be parsed; the message names the file and what to do."""


class SourceNotFoundError(ConnectorError, FileNotFoundError):
    """The input named by a URI does not exist."""


class OutputError(ConnectorError, OSError):
    """The output cannot be written, committed or published."""


class UnknownSchemeError(ConnectorError, ValueError):
    """No connector handles a URI scheme."""


class AuthenticationError(ConnectorError, PermissionError):
    """The credentials were refused; the message names account and user, never the secret."""


class ConnectionFailedError(ConnectorError, ConnectionError):
    """The endpoint could not be reached, or the connection dropped, after bounded retries."""


class QueryError(ConnectorError, ValueError):
    """The database rejected a query; the message echoes the query's first line."""


class BucketNotFoundError(ConnectorError, FileNotFoundError):
    """The bucket (or container) a URI names does not exist; the message names it."""


class CredentialsInUriError(ConnectorError, ValueError):
    """A URI carries credentials; they must come from the environment or a profile.

    The message shows the URI with the credentials masked, never the secret.
    """


class AccessDeniedError(ConnectorError, PermissionError):
    """The store refused an operation; the message names the operation, bucket and key."""


class ReadError(ConnectorError, OSError):
    """The store failed to serve the input (a server error or a dropped read, past retries)."""
