"""``snowflake://`` tables and queries: intake streams Arrow batches, output stages and commits."""

from connectors.snowflake.intake import SnowflakeIntake, SnowflakePartition
from connectors.snowflake.output import SnowflakeOutput

__all__ = ["SnowflakeIntake", "SnowflakeOutput", "SnowflakePartition"]
