"""Errors raised by connectors.

``connectors`` knows nothing of models or the engine, so its errors have their
own root; each also inherits the matching built-in::

    ConnectorError
    ├── InputFormatError(ValueError)     unreadable input: bad CSV, bad encoding, empty file
    ├── SourceNotFoundError(FileNotFoundError)   no object/file at the given URI
    ├── OutputError(OSError)             output cannot be written or published
    ├── UnknownSchemeError(ValueError)   no connector for a URI scheme (with install hint)
    ├── AuthenticationError(PermissionError)     a database refused the credentials
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
