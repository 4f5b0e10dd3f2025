"""How flows retry, report progress and poll (``BATCHPRED_FLOW_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FlowSettings(BaseSettings):
    """How flows retry, report progress and poll (``BATCHPRED_FLOW_*``)."""

    model_config = SettingsConfigDict(env_prefix="BATCHPRED_FLOW_", frozen=True, extra="ignore")

    retries: int = Field(default=3, ge=0, description="Retries of the scoring task.")
    retry_delay: float = Field(default=10.0, ge=0, description="First retry delay in "
                               "seconds; it doubles on each further retry.")
    partition_chunks: int = Field(default=16, ge=1, description="Chunks per scoring task "
                                  "(a partition of the job, retried on its own).")
    progress_interval: float = Field(default=1.0, gt=0, description="Least seconds between "
                                     "two updates of the progress artifact.")
    log_interval: float = Field(default=10.0, gt=0, description="Seconds between progress "
                                "lines in the run log.")
    server_timeout: float = Field(default=90.0, gt=0, description="Seconds to wait for a "
                                  "local Prefect server to start.")
