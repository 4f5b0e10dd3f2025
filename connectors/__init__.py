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
from connectors.storage import check_uri

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
    "check_uri",
    "open_intake",
    "open_output",
    "register_scheme",
    "scheme_of",
]
