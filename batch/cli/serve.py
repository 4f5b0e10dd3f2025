"""``batchpred serve``: the real-time HTTP shim, in this process or in ``--workers`` N.

``--model PKG`` serves one package at ``/predictions``; without it, the home's
deployments (or the ``--deployment`` ones) are served at ``/deployments/{id}/...``.
FastAPI, uvicorn and the engine load inside the command. With several workers,
uvicorn's supervisor binds the socket and starts N processes that each build
the same app from the command's options (:func:`app_from_environment`; the
options travel in an environment variable and hold no secret: a token file is
named, never read into it), each loading every model and recording its own
requests.
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
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes. Each scores one request at a time and loads every "
              "model: one per core serves the most requests/s.")
@click.option("--max-requests", type=click.IntRange(min=1), default=64, show_default=True,
              help="Requests a process takes at once (scoring or waiting); past that, 503 "
              "with Retry-After.")
def serve(**kw: Any) -> None:
    """Serve predictions over HTTP (Portable Prediction Server API)."""
    _one_native_thread()
    app = build_app(kw)  # with several workers: every option checked here, once
    if kw["workers"] == 1:
        _run(app, kw["host"], kw["port"])
    else:
        _run_workers(kw)


OPTIONS_ENV = "BATCHPRED_SERVE_OPTIONS"
NATIVE_POOLS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _one_native_thread() -> None:
    """One thread for the models' native pools (OpenMP, BLAS) of every server process,
    unless the environment says otherwise (read when the libraries load, after this).

    A process scores one request at a time, and requests are small: a pool's threads
    spinning on the cores that parse, answer and (with --workers) score other requests
    cost more than they gain. Measured on 2 cores, gradient boosting, one worker:
    single-row requests from 8 clients 144 -> 234 requests/s; with two workers a
    pool of two per process took a single-row request from 7 ms to 56 ms."""
    import os

    for name in NATIVE_POOLS:
        os.environ.setdefault(name, "1")


def app_from_environment() -> Any:
    """The app of one of several workers, from the options the command put in
    :data:`OPTIONS_ENV` (uvicorn imports this by name in each worker process)."""
    import json
    import os

    return build_app(json.loads(os.environ[OPTIONS_ENV]))


def build_app(kw: dict[str, Any]) -> Any:
    """The app the options describe (models open, not loaded yet)."""
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
                          tokens=tokens, uploads=kw["allow_uploads"],
                          max_requests=kw["max_requests"])
    recorder = _recorder(served, kw) if kw["monitoring"] else None
    return create_app(models, config, recorder)


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


def _run_workers(kw: dict[str, Any]) -> None:
    import json
    import os

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[OPTIONS_ENV] = json.dumps(kw)
    config = uvicorn.Config(f"{__name__}:app_from_environment", factory=True, host=kw["host"],
                            port=kw["port"], workers=kw["workers"], log_level="warning",
                            access_log=False)
    sock = _listening(kw["host"], kw["port"])
    click.echo(f"serving on http://{kw['host']}:{sock.getsockname()[1]} "
               f"({kw['workers']} workers)", err=True)
    Multiprocess(config, sockets=[sock]).run()


def _listening(host: str, port: int) -> Any:
    """The workers' shared socket, bound. It is made with ``IPPROTO_TCP`` (uvicorn's own
    ``bind_socket`` leaves it 0) so that asyncio sets TCP_NODELAY on each connection it
    accepts: without it, Nagle's algorithm and the client's delayed ACK held every
    keep-alive answer for ~40 ms (seen: 11 ms -> 52 ms a single-row request)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there: "
                          f"{exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
