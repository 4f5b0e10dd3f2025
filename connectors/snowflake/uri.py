"""``snowflake://`` URIs and Snowflake identifiers.

A URI names a place, never a secret::

    snowflake://[<user>@]<account>/<database>/<schema>[/<table>][?warehouse=...&role=...]

Each path segment is an identifier, read the way Snowflake reads SQL: a plain
name (``my_table``) is case-insensitive and stored upper-case (``MY_TABLE``);
a name in double quotes (``%22my table%22`` in the URI) or with characters a
plain name cannot hold (``my-table``) is taken exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from connectors.errors import ConnectorConfigError, CredentialsInUriError

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_QUERY_KEYS = ("role", "warehouse")


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier, matched exactly (case and all)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class Name:
    """A Snowflake object name, held the way Snowflake stores it."""

    text: str

    @classmethod
    def from_uri(cls, segment: str) -> Name:
        """Read a URI path segment: plain names fold to upper case, others stay exact."""
        text = unquote(segment)
        if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
            return cls(text[1:-1].replace('""', '"'))
        return cls(text.upper() if _PLAIN.match(text) else text)

    @property
    def sql(self) -> str:
        """Quoted, so it matches exactly (for an upper-case name the same as unquoted)."""
        return quote(self.text)

    @property
    def param(self) -> str:
        """As a connection parameter: bare when that reads the same, else quoted."""
        plain = _PLAIN.match(self.text) and self.text == self.text.upper()
        return self.text if plain else self.sql

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Location:
    """What a ``snowflake://`` URI names: account, schema and maybe a table."""

    uri: str
    account: str
    database: Name
    schema: Name
    table: Name | None = None
    warehouse: str | None = None
    role: str | None = None
    user: str | None = None

    @property
    def table_sql(self) -> str:
        """``"DB"."SCHEMA"."TABLE"``.

        Raises:
            ConnectorConfigError: the URI names no table.
        """
        if self.table is None:
            raise ConnectorConfigError(f"{self.uri}: no table in the URI "
                                       "(expected snowflake://account/database/schema/table)")
        return f"{self.database.sql}.{self.schema.sql}.{self.table.sql}"

    @property
    def schema_sql(self) -> str:
        return f"{self.database.sql}.{self.schema.sql}"


def parse_uri(uri: str) -> Location:
    """Split a ``snowflake://`` URI.

    Raises:
        CredentialsInUriError: a password in it (never echoed).
        ConnectorConfigError: not a snowflake URI, too few or too many path segments,
            or an unknown query parameter.
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() != "snowflake":
        raise ConnectorConfigError(f"{uri}: not a snowflake:// URI")
    if parts.password is not None:
        raise CredentialsInUriError(
            f"snowflake://{parts.hostname}/...: the URI holds a password; never put secrets "
            "in a URI: set SNOWFLAKE_PASSWORD or use a connections.toml entry (connection_name)"
        )
    account = parts.hostname or ""
    segments = [s for s in parts.path.split("/") if s]
    if not account or len(segments) not in (2, 3):
        raise ConnectorConfigError(
            f"{uri}: expected snowflake://<account>/<database>/<schema>[/<table>]"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - set(_QUERY_KEYS))
    if unknown:
        raise ConnectorConfigError(f"{uri}: unknown URI parameter '{unknown[0]}' "
                                   f"(known: {', '.join(_QUERY_KEYS)})")
    names = [Name.from_uri(s) for s in segments]
    return Location(
        uri=uri, account=account, database=names[0], schema=names[1],
        table=names[2] if len(names) == 3 else None,
        warehouse=query.get("warehouse") or None, role=query.get("role") or None,
        user=unquote(parts.username) if parts.username else None,
    )
