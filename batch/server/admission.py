"""How many prediction requests a server process takes at once; past that, a 503.

Requests score one at a time (the scorer is serialized), so a request past the
limit would only wait in line. Answering it at once with ``503`` and
``Retry-After`` lets a client or load balancer go elsewhere or back off,
instead of piling up latency for everyone. The count is kept on the event
loop's thread (a request enters before it reads its body and leaves when its
answer is ready), so it needs no lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from batch.server.errors import SaturatedError

DEFAULT_MAX_REQUESTS = 64  # requests in this process at once: scoring plus waiting
RETRY_AFTER = 1  # seconds, in the 503's Retry-After


class Admission:
    """Admits up to ``limit`` requests at once."""

    def __init__(self, limit: int = DEFAULT_MAX_REQUESTS) -> None:
        self.limit = limit
        self.inside = 0

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold a place while the block runs.

        Raises:
            SaturatedError: ``limit`` requests are in already.
        """
        if self.inside >= self.limit:
            raise SaturatedError(f"the server is busy ({self.limit} requests in progress); "
                                 f"retry in {RETRY_AFTER} s", retry_after=RETRY_AFTER)
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1
