"""Options (``--input-option`` / ``--output-option KEY=VALUE``) and credentials.

Options say where and how to connect; they never carry a secret. Secrets come
from ``SNOWFLAKE_*`` environment variables (:class:`SnowflakeSettings`) or from
the connector's own ``connections.toml`` entry named by ``connection_name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.errors import config_error

WriteMode = Literal["insert", "create", "update", "upsert"]


class ConnectionOptions(BaseModel):
    """How to reach Snowflake; shared by intake and output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection_name: str | None = Field(
        default=None, description="Entry of the connector's connections.toml to start from; "
        "SNOWFLAKE_* variables are then not read.")
    connections_file: str | None = Field(
        default=None, description="Path of that connections.toml, if not the default one "
        "(the connector then reads connections from it for the rest of the process).")
    user: str | None = Field(default=None, description="Login name (else SNOWFLAKE_USER).")
    authenticator: str | None = Field(
        default=None, description="snowflake (password), SNOWFLAKE_JWT (key pair), "
        "externalbrowser, oauth, ... (else SNOWFLAKE_AUTHENTICATOR).")
    warehouse: str | None = Field(default=None, description="Warehouse (the URI's wins).")
    role: str | None = Field(default=None, description="Role (the URI's wins).")
    host: str | None = Field(default=None, description="Endpoint host, e.g. a local stand-in.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Endpoint port.")
    protocol: Literal["http", "https"] | None = Field(default=None, description="http or https.")
    login_timeout: int = Field(default=10, ge=1, description="Seconds one login may take.")
    network_timeout: int | None = Field(
        default=None, ge=1, description="Seconds a request may take before it fails.")
    connect_retries: int = Field(
        default=2, ge=0, le=10, description="Further attempts when the endpoint is unreachable.")


class IntakeOptions(ConnectionOptions):
    """Intake options: a query instead of a table."""

    query: str | None = Field(
        default=None, description="SQL to read instead of the URI's table (--input-query).")


class OutputOptions(ConnectionOptions):
    """Output options: how the rows meet the target table."""

    mode: WriteMode = Field(
        default="insert", description="insert (append), create (new table), update or "
        "upsert (MERGE on key_columns).")
    replace: bool = Field(default=False, description="create: replace an existing table.")
    key_columns: tuple[str, ...] = Field(
        default=(), description="update/upsert: comma-separated key columns.")

    @field_validator("key_columns", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value


class SnowflakeSettings(BaseSettings):
    """Credentials and defaults from ``SNOWFLAKE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SNOWFLAKE_", extra="ignore", frozen=True)

    user: str | None = None
    password: SecretStr | None = None
    authenticator: str | None = None
    private_key_file: str | None = None
    private_key_file_pwd: SecretStr | None = None
    token: SecretStr | None = None
    token_file_path: str | None = None
    role: str | None = None
    warehouse: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None


def read_settings() -> SnowflakeSettings:
    """``SNOWFLAKE_*`` variables, read now.

    Raises:
        ConnectorConfigError: naming the bad variable (never its value, which may be secret).
    """
    try:
        return SnowflakeSettings()
    except ValidationError as exc:
        # from None: pydantic's error keeps the value, which may be a secret
        raise config_error(exc, "environment variable SNOWFLAKE_{FIELD}") from None


M = TypeVar("M", bound=BaseModel)
_HINTS = {"password": "never pass a password as an option: set SNOWFLAKE_PASSWORD or use "
                      "connection_name"}


def parse_options(model: type[M], options: Mapping[str, str], *, side: str) -> M:
    """Validate ``KEY=VALUE`` options.

    Raises:
        ConnectorConfigError: naming the first bad key (``side``: input or output) and
            listing the known ones; a password given as an option says where it belongs.
    """
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        # from None: pydantic's error keeps the value, which may be a secret
        raise config_error(exc, f"snowflake {side} option '{{field}}'",
                           known_options=sorted(model.model_fields), hints=_HINTS) from None
