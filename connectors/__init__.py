"""Where rows come from and go to. Knows nothing of models: Arrow batches in and out."""

from connectors.base import (
    Intake,
    IntakeRequest,
    Output,
    OutputRequest,
    Progress,
    Receipt,
    open_intake,
    open_output,
    register_scheme,
    scheme_of,
)
from connectors.errors import (
    ConnectorError,
    InputFormatError,
    OutputError,
    SourceNotFoundError,
    UnknownSchemeError,
)

__all__ = [
    "ConnectorError",
    "InputFormatError",
    "Intake",
    "IntakeRequest",
    "Output",
    "OutputError",
    "OutputRequest",
    "Progress",
    "Receipt",
    "SourceNotFoundError",
    "UnknownSchemeError",
    "open_intake",
    "open_output",
    "register_scheme",
    "scheme_of",
]
