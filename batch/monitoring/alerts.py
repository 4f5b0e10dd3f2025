"""Alerts on a change of a stage's colour: once per change, not once per run.

The last colour a stage reported for a deployment is kept in the monitoring
store, one state per stage (``state/drift.json``, ``state/accuracy.json``,
``state/challengers.json``, ``state/health.json``). :func:`colour_change`
compares a new document's colour with its stage's: a change (or a first status
that is yellow or red) is an :class:`Alert`. The caller delivers it (a log line
always; a webhook, a Prefect notification) and then calls :func:`remember`, so
an alert that could not be delivered is tried again by the next run instead of
being lost. The stage is the document's ``kind`` unless the caller names it.

:func:`post_webhook` POSTs the alert as JSON, retried a bounded number of times
with backoff; the URL is never logged beyond its scheme and host (it may carry
a token).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from batch.errors import ConfigError
from batch.monitoring.store import MonitoringStore


@dataclass(frozen=True, slots=True)
class Alert:
    deployment: str
    stage: str
    previous: str | None
    colour: str
    rule: str
    value: Any
    threshold: Any
    window: Mapping[str, Any]
    features: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        data["kind"] = "batchpred.alert"
        return data

    @property
    def line(self) -> str:
        was = self.previous or "none"
        detail = f": {', '.join(self.features)}" if self.features else ""
        figures = f": {self.value}" if self.value is not None else ""
        if self.threshold is not None:
            figures += f", threshold {self.threshold}"
        return (f"{self.stage} status of {self.deployment} changed {was} -> {self.colour} "
                f"({self.rule}{figures}){detail}")


def colour_change(store: MonitoringStore, doc: Mapping[str, Any], stage: str | None = None
                  ) -> Alert | None:
    """The alert ``doc`` raises, if its colour differs from the last one remembered for
    its stage (``stage``, else the document's ``kind``)."""
    stage = stage or str(doc.get("kind", "drift"))
    status = doc["status"]
    before = store.state(doc["deployment"], stage)
    previous = before.get("colour") if before else None
    colour = status["colour"]
    if colour == previous or (previous is None and colour in ("green", "grey")):
        return None
    return Alert(doc["deployment"], stage, previous, colour, status["rule"],
                 status.get("value"), status.get("threshold"), doc["window"],
                 tuple(status.get("features", ())))


def remember(store: MonitoringStore, doc: Mapping[str, Any], stage: str | None = None
             ) -> None:
    """Keep ``doc``'s colour as the one the next run compares with for its stage."""
    stage = stage or str(doc.get("kind", "drift"))
    status = doc["status"]
    store.save_state(doc["deployment"], stage, {
        "colour": status["colour"], "rule": status["rule"], "window": doc["window"],
        "at": datetime.now(UTC).isoformat()})


@dataclass(frozen=True, slots=True)
class Delivery:
    delivered: bool
    attempts: int
    error: str | None = None


def post_webhook(url: str, body: Mapping[str, Any], *, attempts: int = 3,
                 timeout: float = 5.0, backoff: float = 0.5) -> Delivery:
    """POST ``body`` as JSON to ``url``: up to ``attempts`` tries, each bounded by
    ``timeout`` seconds, waiting ``backoff``, then twice that, between them. A 2xx
    answer is delivered; 4xx other than 408/429 is not retried."""
    data = json.dumps(body, sort_keys=True, default=str).encode()
    error = None
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "batchpred-alerts"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
            return Delivery(True, attempt)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code} from {where(url)}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                return Delivery(False, attempt, error)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = f"{where(url)} did not answer ({reason})"
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, attempts, error)


def webhook_url(setting: str) -> str:
    """The URL a webhook setting names: the URL itself, or ``env:NAME`` for the one in
    environment variable NAME (a URL that carries a token is a secret: keep it there).

    Raises:
        ConfigError: ``env:NAME`` with NAME unset.
    """
    if not setting.startswith("env:"):
        return setting
    name = setting[4:]
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"alert webhook: environment variable {name} is not set")
    return value


def where(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what may be logged of it."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
