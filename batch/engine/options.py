"""A job's option defaults and its chunk-size rules, in plain Python.

The command line decides from these whether to start its worker processes
before pydantic and the engine load (:mod:`batch.engine.pool.startup`);
:class:`batch.spec.JobSpec` validates with the same rules, and the engine
starts its workers by them.
"""

from __future__ import annotations

import re

DEFAULT_CHUNK_SIZE = "8MB"
DEFAULT_MAX_ERROR_RATE = 0.05
DEFAULT_PREFLIGHT_ROWS = 2_000
MIN_CHUNK_BYTES = 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 1024, "m": 1e6, "mb": 1e6,
          "mib": 1 << 20, "g": 1e9, "gb": 1e9, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """``"8MB"`` -> 8_000_000; ``"8MiB"`` -> 8_388_608.

    Raises:
        ValueError: not a size.
    """
    m = _SIZE.match(text)
    unit = (m.group(2) or "").lower() if m else ""
    if not m or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 8MB, 512KiB, 1GB)")
    return int(float(m.group(1)) * _UNITS[unit])


def several_chunks(chunk_size: str, input_bytes: int | None) -> bool:
    """Whether ``input_bytes`` of input make more than one chunk of ``chunk_size``.

    Raises:
        ValueError: ``chunk_size`` is not a size.
    """
    return (input_bytes or 0) > 2 * parse_size(chunk_size)
