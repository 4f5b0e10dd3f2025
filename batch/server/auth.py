"""API tokens: who may score and read, and who may also change what is served.

A token file (``--tokens FILE`` or ``BATCHPRED_API_TOKENS``) maps each token to
the consumer it names and its role, YAML or JSON::

    tokens:
      - token: "4f9c...e1"        # any string of 16 characters or more
        consumer: loan-app
        role: consumer            # score and read
      - token: "c0ffee...42"
        consumer: ml-team
        role: editor              # also upload, delete, change settings

With a token file, every request but ``GET /ping`` needs one, sent the ways
DataRobot's clients send it: ``Authorization: Bearer <token>``, ``Authorization:
Token <token>`` or HTTP Basic (the token as the password). Tokens are compared
in constant time, against every known token, and never logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batch.errors import ConfigError, yaml_message
from batch.server.errors import ForbiddenError, UnauthorizedError

Role = Literal["consumer", "editor"]
TOKENS_VARIABLE = "BATCHPRED_API_TOKENS"


class _Token(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    token: str = Field(min_length=16, description="The secret a client sends.")
    consumer: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Role = "consumer"


class _TokenFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    tokens: tuple[_Token, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from."""

    consumer: str
    role: Role


class Tokens:
    """The known tokens; :meth:`caller` checks a request's."""

    def __init__(self, tokens: tuple[_Token, ...]) -> None:
        self._tokens = [(t.token.encode(), Caller(t.consumer, t.role)) for t in tokens]

    def caller(self, authorization: str | None, *, role: Role = "consumer") -> Caller:
        """The caller of a request with this ``Authorization`` header.

        Raises:
            UnauthorizedError: no token, or not a known one (401).
            ForbiddenError: a known token whose role is below ``role`` (403).
        """
        given = _token_of(authorization)
        if given is None:
            raise UnauthorizedError("this server needs an API token: send "
                                    "'Authorization: Bearer <token>'")
        found = None
        for token, caller in self._tokens:  # every one: the time does not tell which
            if hmac.compare_digest(token, given):
                found = caller
        if found is None:
            raise UnauthorizedError("the API token is not one this server knows")
        if role == "editor" and found.role != "editor":
            raise ForbiddenError(f"consumer {found.consumer!r} may score and read, not "
                                 "change what is served (an editor token may)")
        return found


def _token_of(header: str | None) -> bytes | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() in ("bearer", "token") and value:
        return value.encode()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2].encode() or None
    return None


def load_tokens(path: str | None) -> Tokens | None:
    """The tokens of ``path``, else of ``BATCHPRED_API_TOKENS`` (a file path); None: none.

    Raises:
        ConfigError: the file cannot be read, is not YAML/JSON, or a token is bad (the
            message names the entry, never a token).
    """
    source = path or os.environ.get(TOKENS_VARIABLE)
    if not source:
        return None
    file = Path(source)
    where = f"--tokens {file}" if path else f"{TOKENS_VARIABLE}={file}"
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {yaml_message(exc)}") from None
    try:
        parsed = _TokenFile.model_validate(data)
    except ValidationError as exc:  # named by place and rule only: never the value
        error = exc.errors(include_input=False)[0]
        place = ".".join(str(p) for p in error["loc"]) or "the file"
        raise ConfigError(f"{where}: {place}: {error['msg']}") from None
    if len({t.token for t in parsed.tokens}) != len(parsed.tokens):
        raise ConfigError(f"{where}: a token is listed twice")
    return Tokens(parsed.tokens)
