"""``batchpred worker``: the process that executes submitted and scheduled jobs.

It serves, with a Prefect :class:`~prefect.runner.Runner` (what ``prefect.serve``
runs), the ``batch-score/submit`` deployment and every schedule's deployment,
checking every ``reload_seconds`` for schedules created since. Each run
executes in a child process. With no Prefect API configured the worker starts
a local Prefect server with the scheduler (see :func:`flows.api.worker_api`),
which other batchpred commands on this home then use.

Schedules stay active when the worker stops: runs that fall due meanwhile wait
as Late and start when a worker serves them again.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from uuid import UUID

import anyio
from prefect import get_client
from prefect.deployments.runner import RunnerDeployment
from prefect.runner import Runner

from flows.api import worker_api
from flows.schedules import FLOWS, deployment_options, schedule_filters
from flows.scoring import batch_score
from flows.submission import SUBMIT_DEPLOYMENT


async def submission_deployment() -> RunnerDeployment:
    """The deployment ``submit`` creates runs of (no schedule; parameters per run)."""
    return await batch_score.ato_deployment(
        SUBMIT_DEPLOYMENT, description="batchpred jobs submitted with `batchpred submit`",
        **deployment_options({}, [], tags=["batchpred"]))


def run_worker(
    *, limit: int | None = 1, poll_seconds: float = 2.0, reload_seconds: float = 10.0,
    echo: Callable[[str], object] = print,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM).

    Raises:
        ConfigError: the local Prefect server cannot start, or a worker already
            runs for this home.
    """
    with worker_api() as api_url:
        echo(f"worker: Prefect API {api_url}")
        anyio.run(_serve, limit, poll_seconds, reload_seconds, echo)


async def _serve(limit: int | None, poll_seconds: float, reload_seconds: float,
                 echo: Callable[[str], object]) -> None:
    runner = Runner(name=f"batchpred-{socket.gethostname()}", query_seconds=poll_seconds,
                    limit=limit, pause_on_shutdown=False)
    await runner.aadd_deployment(await submission_deployment())
    served: set[UUID] = set()
    await _add_schedules(runner, served, echo)
    echo(f"worker: serving submissions and {len(served)} schedule(s); Ctrl-C stops")
    async with anyio.create_task_group() as group:

        async def serve_until_stopped() -> None:
            # Prefect's runner takes SIGTERM over and stops itself: stop with it
            await runner.start()
            group.cancel_scope.cancel()

        group.start_soon(serve_until_stopped)
        while True:
            await anyio.sleep(reload_seconds)
            try:
                await _add_schedules(runner, served, echo)
            except Exception as exc:  # keep serving; the next round tries again
                echo(f"worker: could not look for new schedules: {exc}")


async def _add_schedules(runner: Runner, served: set[UUID],
                         echo: Callable[[str], object]) -> None:
    async with get_client() as client:
        found = await client.read_deployments(**schedule_filters())
        flows = {d.flow_id: (await client.read_flow(d.flow_id)).name for d in found}
    for d in found:
        if d.id in served:
            continue
        deployment = await FLOWS[flows[d.flow_id]].ato_deployment(
            d.name, description=d.description, **deployment_options(
                d.parameters, [s.schedule for s in d.schedules], paused=d.paused,
                tags=list(d.tags)))
        served.add(await runner.aadd_deployment(deployment))
        echo(f"worker: serving schedule {d.name!r}")
