"""The real-time HTTP shim: the Portable Prediction Server's API over the batch scoring code.

- :mod:`~batch.server.app`: the FastAPI app and its routes;
- :mod:`~batch.server.predict`: one prediction request, body to response;
- :mod:`~batch.server.body`, :mod:`~batch.server.payload`: the body within the
  payload limit, gzip undone, CSV or JSON to Arrow;
- :mod:`~batch.server.query`: the query arguments;
- :mod:`~batch.server.responses`: scored rows to JSON or CSV;
- :mod:`~batch.server.models`: the served models and their loading;
- :mod:`~batch.server.errors`, :mod:`~batch.server.status`: the errors and their statuses.
"""

from batch.server.app import ServerConfig, create_app
from batch.server.models import ServedModel, ServedModels

__all__ = ["ServedModel", "ServedModels", "ServerConfig", "create_app"]
