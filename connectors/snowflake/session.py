"""One Snowflake connection: login with bounded retries, errors translated once.

Everything the connector raises crosses into ``connectors.errors`` here:

- login refused (wrong password, key, token) -> :class:`AuthenticationError`,
  naming account and user, never the secret;
- connection settings the connector itself rejects (an unknown ``connection_name``,
  a bad ``connections.toml``, a missing extra) -> :class:`ConnectorConfigError`;
- endpoint unreachable after ``connect_retries`` more attempts, each bounded by
  ``login_timeout`` -> :class:`ConnectionFailedError`;
- a statement the server rejects -> the session's ``rejected`` class
  (:class:`QueryError` for intake, :class:`OutputError` for output), echoing
  the statement's first line; a missing object -> :class:`SourceNotFoundError`;
- the connection lost mid-statement -> the session's ``lost`` class.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import snowflake.connector
from snowflake.connector.cursor import SnowflakeCursor
from snowflake.connector.errors import (
    ConfigManagerError,
    ConfigSourceError,
    DatabaseError,
    Error,
    MissingDependencyError,
    OperationalError,
    ProgrammingError,
)

from connectors.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectorConfigError,
    ConnectorError,
    QueryError,
    SourceNotFoundError,
)
from connectors.snowflake.options import ConnectionOptions, SnowflakeSettings, read_settings
from connectors.snowflake.uri import Location

log = logging.getLogger(__name__)

_DOES_NOT_EXIST = 2003  # "Object does not exist or not authorized"
_LOGIN_ERRORS = 390  # 390xxx: the login service refused the session
# the connector's errors for settings it cannot use (read before any request is sent)
_SETTINGS_ERRORS = (ConfigSourceError, ConfigManagerError, MissingDependencyError)


def connect_kwargs(
    location: Location, options: ConnectionOptions, settings: SnowflakeSettings
) -> dict[str, Any]:
    """Keyword arguments for ``snowflake.connector.connect``.

    Precedence: the URI (account, database, schema, warehouse, role), then the
    options, then ``SNOWFLAKE_*`` variables, which are not read at all when a
    ``connection_name`` is given (the connector reads that entry itself).
    """
    env = SnowflakeSettings.model_construct() if options.connection_name else settings
    kwargs: dict[str, Any] = {
        "account": location.account,
        "database": location.database.param,
        "schema": location.schema.param,
        "login_timeout": options.login_timeout,
        "arrow_number_to_decimal": True,  # NUMBER(p,s) stays exact in Arrow
    }
    plain = {
        "connection_name": options.connection_name,
        "user": options.user or location.user or env.user,
        "authenticator": options.authenticator or env.authenticator,
        "warehouse": location.warehouse or options.warehouse or env.warehouse,
        "role": location.role or options.role or env.role,
        "host": options.host or env.host,
        "port": options.port or env.port,
        "protocol": options.protocol or env.protocol,
        "network_timeout": options.network_timeout,
        "private_key_file": env.private_key_file,
        "token_file_path": env.token_file_path,
    }
    kwargs.update({k: v for k, v in plain.items() if v is not None})
    secrets = {"password": env.password, "private_key_file_pwd": env.private_key_file_pwd,
               "token": env.token}
    kwargs.update({k: v.get_secret_value() for k, v in secrets.items() if v is not None})
    if options.connections_file:
        kwargs["connections_file_path"] = Path(options.connections_file).expanduser()
    return kwargs


def _who(location: Location, kwargs: dict[str, Any]) -> str:
    user = kwargs.get("user")
    if user is None and "connection_name" in kwargs:
        user = f"<from connection '{kwargs['connection_name']}'>"
    return f"account '{location.account}' user '{user}'"


def _endpoint(location: Location, kwargs: dict[str, Any]) -> str:
    host = kwargs.get("host") or f"{location.account}.snowflakecomputing.com"
    port = kwargs.get("port") or 443
    return f"{kwargs.get('protocol', 'https')}://{host}:{port}"


def _message(exc: Error) -> str:
    """The connector's message on one line (Snowflake's span several)."""
    text = exc.msg if isinstance(exc.msg, str) and exc.msg else str(exc)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:500]


def _refused(exc: Error) -> bool:
    return isinstance(exc.errno, int) and exc.errno // 1000 == _LOGIN_ERRORS


def open_connection(
    location: Location, options: ConnectionOptions, settings: SnowflakeSettings | None = None
) -> Any:
    """Log in, retrying an unreachable endpoint ``options.connect_retries`` more times.

    Raises:
        AuthenticationError: the login was refused (names account and user).
        ConnectionFailedError: every attempt failed to reach the endpoint, or the
            login service failed in another way (its HTTP errors).
        ConnectorConfigError: the connector rejects the connection settings (an
            unknown ``connection_name``, a bad ``connections.toml``).
    """
    kwargs = connect_kwargs(location, options, settings or read_settings())
    who, attempts = _who(location, kwargs), options.connect_retries + 1
    last: Error | None = None
    for attempt in range(1, attempts + 1):
        try:
            # through the module attribute, so fakesnow's patch mode can stand in
            return snowflake.connector.connect(**kwargs)
        except OperationalError as exc:
            if _refused(exc):
                raise _login_error(exc, who) from exc
            last = exc
            log.warning("snowflake %s: attempt %d/%d failed: %s", who, attempt, attempts,
                        _message(exc))
            if attempt < attempts:
                time.sleep(min(0.5 * attempt, 2.0))
        except Error as exc:
            raise _login_error(exc, who) from exc
    assert last is not None
    raise ConnectionFailedError(
        f"snowflake {who}: cannot reach {_endpoint(location, kwargs)} after {attempts} "
        f"attempt(s) of up to {options.login_timeout}s ({_message(last)}); check the account, "
        "host/port and network, or raise login_timeout / connect_retries"
    ) from last


def _login_error(exc: Error, who: str) -> ConnectorError:
    """The error for a failed login that is not an unreachable endpoint (see above)."""
    if isinstance(exc, DatabaseError):
        return AuthenticationError(
            f"snowflake {who}: login refused: {_message(exc)}; check the credentials "
            "(SNOWFLAKE_USER, SNOWFLAKE_PASSWORD, SNOWFLAKE_AUTHENTICATOR, "
            "SNOWFLAKE_PRIVATE_KEY_FILE, or the connections.toml entry)"
        )
    message = f"snowflake {who}: cannot connect: {_message(exc)}"
    # the connector raises its base Error for an unknown connection_name
    if isinstance(exc, _SETTINGS_ERRORS) or type(exc) is Error:
        return ConnectorConfigError(f"{message}; check connection_name, connections_file and "
                                    "the connection options")
    return ConnectionFailedError(message)  # the login service's HTTP errors: may pass


class Session:
    """A connection whose statements raise ``connectors.errors`` only.

    Args:
        location: where to connect (account, database, schema).
        options: validated connection options.
        rejected: raised when the server rejects a statement.
        lost: raised when the connection fails mid-statement.
    """

    def __init__(self, location: Location, options: ConnectionOptions, *,
                 rejected: type[ConnectorError] = QueryError,
                 lost: type[ConnectorError] = ConnectionFailedError) -> None:
        self.location = location
        self._rejected, self._lost = rejected, lost
        self.conn = open_connection(location, options)
        self.execute(f"USE SCHEMA {location.schema_sql}")

    def execute(self, sql: str, params: Any = None) -> SnowflakeCursor:
        """Run one statement; its cursor holds the result."""
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, params)
        except Error as exc:
            raise self.translate(exc, sql) from exc
        return cursor

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement and fetch its (small) result."""
        cursor = self.execute(sql, params)
        try:
            return list(cursor.fetchall())
        except Error as exc:
            raise self.translate(exc, sql) from exc
        finally:
            cursor.close()

    def translate(self, exc: Error, sql: str) -> ConnectorError:
        """The ``connectors.errors`` exception for ``exc`` raised by ``sql``."""
        first = next((line.strip() for line in sql.splitlines() if line.strip()), "")[:200]
        where, msg = self.location.uri, _message(exc)
        if isinstance(exc, ProgrammingError) and exc.errno == _DOES_NOT_EXIST:
            return SourceNotFoundError(f"{where}: {msg} (in query '{first}')")
        if (isinstance(exc, OperationalError) or not isinstance(exc, DatabaseError)
                or _refused(exc)):  # 390xxx mid-session: the session itself is gone
            return self._lost(f"{where}: lost the connection to Snowflake while running "
                              f"'{first}': {msg}")
        return self._rejected(f"{where}: Snowflake rejected the query '{first}': {msg}")

    def close(self) -> None:
        """Close the connection; closing a dead one is not an error (nor retried)."""
        with contextlib.suppress(Error, OSError):
            self.conn.close(retry=False)
