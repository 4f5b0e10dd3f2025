"""What looks like a secret among options and settings, and how it is masked when written.

Options never should carry secrets (they come from the environment, a profile or
``connections.toml``), but a record that is kept (a job record, a deployment's
history) must not keep one given by mistake: a value under a secret-like key
becomes ``***``, and so does the password of any URL in a value
(``http://user:***@host``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"pass(word|phrase)?|secret|token|credential|private_key|api_?key|"
                         r"access_?key|authenticator_?token", re.IGNORECASE)
_USERINFO = re.compile(r"(://[^/@:]*):[^/@]*@")


def is_secret_key(key: str) -> bool:
    """Whether a value under ``key`` is taken for a secret (``password``, ``api_key``...)."""
    return bool(_SECRET_KEY.search(key))


def masked_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(rf"\1:{MASK}@", text)


def masked_options(options: Mapping[str, str]) -> dict[str, str]:
    """``options`` with the values of secret-like keys and URL passwords masked."""
    return {k: MASK if is_secret_key(k) else masked_text(v) for k, v in options.items()}


def masked_value(value: Any, key: str = "") -> Any:
    """A JSON-like ``value`` (found under ``key``) with every secret in it masked: any
    value under a secret-like key, at any depth, and URL passwords in strings."""
    if key and is_secret_key(key) and value not in (None, "", {}, []):
        return MASK
    if isinstance(value, str):
        return masked_text(value)
    if isinstance(value, Mapping):
        return {k: masked_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked_value(v) for v in value]
    return value
