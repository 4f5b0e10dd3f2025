"""``batchpred serve``: the real-time HTTP shim, in this process (one worker).

``--model PKG`` serves one package at ``/predictions``; without it, the home's
deployments (or the ``--deployment`` ones) are served at ``/deployments/{id}/...``.
FastAPI, uvicorn and the engine load inside the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from batch.errors import ConfigError

if TYPE_CHECKING:
    from batch.server import ServedModel


@click.command()
@click.option("--model", metavar="PKG", help="Serve this package alone (single-model mode).")
@click.option("--deployment", "deployments", multiple=True, metavar="NAME",
              help="Serve this deployment (repeatable; default: every deployment).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--onnx/--no-onnx", default=True, show_default=True,
              help="Score a scikit-learn model with the ONNX conversion a batch job checked "
              "for it (kept in the home), as batch jobs do.")
@click.option("--lazy", is_flag=True, help="Load each model on its first request instead of "
              "at start.")
@click.option("--max-payload-mb", type=click.FloatRange(min=0, min_open=True), default=50.0,
              show_default=True, help="Largest request body (after gzip), in MB.")
@click.option("--tokens", "tokens_file", metavar="FILE", help="API tokens (YAML: consumer and "
              "role per token); default: the file BATCHPRED_API_TOKENS names, else none.")
@click.option("--allow-uploads", is_flag=True, help="Take POST and DELETE "
              "/deployments/{id} (a package archive; editor tokens only, so --tokens too).")
@click.option("--monitoring/--no-monitoring", default=True, show_default=True,
              help="Publish the requests' monitoring records (counted off the request "
              "path) to each deployment's monitoring store.")
@click.option("--monitoring-store", metavar="URI", help="The store for every served model "
              "(default: each deployment's setting, else <home>/monitoring).")
@click.option("--flush-seconds", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, help="Publish the records at least this often.")
@click.option("--flush-rows", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="... or once this many rows were scored.")
def serve(**kw: Any) -> None:
    """Serve predictions over HTTP (Portable Prediction Server API)."""
    from batch.server import ServedModels, ServerConfig, create_app
    from batch.server.auth import load_tokens
    from batch.server.models import with_fast_path
    from batch.settings import home_dir

    if kw["model"] and kw["deployments"]:
        raise ConfigError("give --model PKG or --deployment NAME, not both")
    tokens = load_tokens(kw["tokens_file"])
    if kw["allow_uploads"] and (tokens is None or kw["model"]):
        raise ConfigError("--allow-uploads needs --tokens (uploads and deletes always need an "
                          "editor token) and the deployments' mode (not --model)")
    served = _single(kw["model"]) if kw["model"] else _deployments(
        kw["deployments"], none_ok=kw["allow_uploads"])
    if kw["onnx"]:  # the conversions batch jobs checked and kept in the home
        served = [with_fast_path(m, home_dir() / "onnx") for m in served]
    models = ServedModels(served, _cache(len(served)), lazy=kw["lazy"])
    config = ServerConfig(single=bool(kw["model"]), max_payload_mb=kw["max_payload_mb"],
                          tokens=tokens, uploads=kw["allow_uploads"])
    recorder = _recorder(served, kw) if kw["monitoring"] else None
    _run(create_app(models, config, recorder), kw["host"], kw["port"])


def _recorder(served: Sequence[ServedModel], kw: dict[str, Any]) -> Any:
    """The requests' recorder: each model's store and baseline (health only without one)."""
    from batch.server.app import watched
    from batch.server.recorder import RequestRecorder

    return RequestRecorder({m.name: watched(m, kw["monitoring_store"]) for m in served},
                           flush_rows=kw["flush_rows"], flush_seconds=kw["flush_seconds"])


def _single(path: str) -> list[ServedModel]:
    from batch.models.package import open_package
    from batch.server import ServedModel

    package = open_package(path)
    return [ServedModel(package.manifest.name, package)]


def _deployments(names: Sequence[str], *, none_ok: bool = False) -> list[ServedModel]:
    from batch.deployments import DeploymentRegistry
    from batch.server.models import deployed

    registry = DeploymentRegistry()
    chosen = list(dict.fromkeys(names)) or [d.name for d in registry.list()]
    if not chosen and not none_ok:
        raise ConfigError(f"no deployments in {registry.home}; create one with "
                          "`batchpred deploy create NAME --model PKG`, or pass --model PKG")
    return [deployed(registry, name) for name in chosen]


def _cache(models: int) -> Any:
    from batch.models.cache import DEFAULT_MAXSIZE, configure_process_cache

    # every served model stays loaded: none is evicted by another's request
    return configure_process_cache(max(DEFAULT_MAXSIZE, models))


def _run(app: Any, host: str, port: int) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                click.echo(f"serving on http://{host}:{bound}", err=True)

    config = uvicorn.Config(app, host=host, port=port, workers=1, log_level="warning",
                            access_log=False)
    Server(config).run()
