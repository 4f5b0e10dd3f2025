"""The scoring processes of a job: a local pool (this process scores too) or a Dask cluster.

Which pool, how many processes and when they start is decided here once, for
:func:`batch.engine.run.run_job` and for the partitions a flow runs one by one.
"""

from __future__ import annotations

from batch.engine.options import several_chunks
from batch.engine.pool.child import ChunkJob
from batch.engine.pool.dask import DaskPool
from batch.engine.pool.local import ScoringPool
from batch.engine.pool.protocol import Pool
from batch.engine.pool.startup import scorers
from batch.engine.spec import JobSpec
from batch.models.package import ModelPackage
from batch.scoring.columns import ScoringOptions
from batch.scoring.humility import Humility


def scoring_options(spec: JobSpec, humility: Humility | None = None) -> ScoringOptions:
    """The job's passthrough choices and humility rules, as the scoring code takes them."""
    return ScoringOptions(passthrough=spec.passthrough, passthrough_all=spec.passthrough_all,
                          humility=humility)


class JobWorkers:
    """The scoring processes of a job: local workers (this process scores too) or a
    Dask cluster. Local workers start as soon as the input is known to need them
    (during the pre-flight), so they start up while the model loads here. One
    instance can serve several :func:`run_job` calls (the partitions of a job).
    """

    def __init__(self, spec: JobSpec, package: ModelPackage, *, start: bool = True) -> None:
        self.spec, self.package = spec, package
        self._start = start
        self.pool: Pool | None = None

    def scorers(self) -> int:
        """Local scoring processes, this one included (default: one per core)."""
        return scorers(self.spec.workers)

    def plan(self, ranges: int | None, input_bytes: int | None) -> None:
        """Start ``scorers - 1`` local workers when the input makes more than one chunk."""
        spec = self.spec
        several = (ranges or 0) > 1 or (
            ranges is None and spec.chunk_rows is None
            and several_chunks(spec.chunk_size, input_bytes))
        if (self._start and self.spec.executor == "local" and self.scorers() > 1 and several
                and self.pool is None):
            self.pool = ScoringPool(self.package, scoring_options(self.spec),
                                    workers=self.scorers() - 1, inline=True)

    def pool_for(self, job: ChunkJob, chunks: int) -> Pool:
        """The pool to score ``job`` with (started here unless it runs already);
        ``chunks``: how many chunks there are at least (1: no workers needed)."""
        if self.pool is None:
            count = self.scorers() if chunks > 1 else 1
            if self.spec.executor == "dask":
                self.pool = DaskPool(job, address=self.spec.dask_address,
                                     workers=max(1, count))
            else:
                self.pool = ScoringPool(self.package, job.options,
                                        workers=max(0, count - 1), job=job, inline=True)
        self.pool.job = job
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def __enter__(self) -> JobWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
