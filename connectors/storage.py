"""Where file bytes live: filesystems by URL, their options, their errors, whole writes.

- URIs carry no secrets. Credentials come from the store's standard chain
  (environment variables, a named profile, an instance role); a URI such as
  ``s3://KEY:SECRET@bucket/key`` is refused without repeating the secret.
- :class:`StorageOptions` (``endpoint_url``, ``anon``, ``profile``, ``region``,
  ``requester_pays``, ``connect_timeout``, ``retries``, ``part_size_mb``) become the keyword
  arguments of the protocol's fsspec filesystem, so the same options reach
  every process that opens the URL (byte ranges are read in scoring workers).
- Errors from the store (botocore, aiohttp, fsspec's ``OSError``\\ s) become
  :mod:`connectors.errors` classes here, once, naming the bucket and key.
- :func:`write_whole` writes an object that appears whole or not at all: on an
  object store, an error aborts the multipart upload instead of publishing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import scheme_of
from connectors.errors import (
    AccessDeniedError,
    AuthenticationError,
    BucketNotFoundError,
    ConnectionFailedError,
    ConnectorConfigError,
    ConnectorError,
    CredentialsInUriError,
    OutputError,
    ReadError,
    SourceNotFoundError,
    UnknownSchemeError,
)

Side = Literal["input", "output"]
_HINTS = {"s3": "pip install s3fs", "s3a": "pip install s3fs", "gs": "pip install gcsfs",
          "gcs": "pip install gcsfs", "abfs": "pip install adlfs", "az": "pip install adlfs"}
_REFUSED = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                      "InvalidToken", "TokenRefreshRequired"})
# botocore's exceptions for credentials that could not be found or loaded, by name
_NO_CREDENTIALS = frozenset({"NoCredentialsError", "PartialCredentialsError", "ProfileNotFound",
                             "CredentialRetrievalError", "SSOTokenLoadError"})
# exception class names (anywhere in the MRO) meaning "the endpoint did not answer";
# matched by name so that this module needs neither botocore nor aiohttp
_UNREACHABLE = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                          "ConnectionClosedError", "ProxyConnectionError", "ClientConnectorError",
                          "ServerDisconnectedError", "FSTimeoutError"})


class StorageOptions(BaseModel):
    """How to reach the store behind a URL (``--input-option``/``--output-option``)."""

    # hide values in validation errors: an endpoint URL may carry a secret by mistake
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint "
                                     "(MinIO, Ceph, a local test server); default: AWS.")
    anon: bool = Field(default=False, description="Read public data without credentials.")
    profile: str | None = Field(default=None, description="Named profile of the AWS config "
                                "files (default: AWS_PROFILE or the default chain).")
    region: str | None = Field(default=None, description="Region of the bucket.")
    requester_pays: bool = Field(default=False, description="The bucket bills the reader.")
    connect_timeout: float = Field(default=5.0, gt=0, le=300,
                                   description="Seconds to wait for a connection.")
    retries: int = Field(default=3, ge=1, le=20, description="Attempts per request before "
                         "an unreachable or failing endpoint fails the job.")
    part_size_mb: int = Field(default=50, ge=5, le=5120, description="Output: size of the "
                              "parts of a multipart upload (an S3 object has at most 10,000).")

    @field_validator("endpoint_url")
    @classmethod
    def _plain_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        if "@" in parts.netloc:
            raise ValueError("must not carry credentials (use the environment or a profile)")
        return value


def _s3_kwargs(options: StorageOptions) -> dict[str, Any]:
    # s3fs takes endpoint_url at the top level; region and retries go to botocore
    kwargs: dict[str, Any] = {
        "config_kwargs": {"connect_timeout": options.connect_timeout,
                          # total_max_attempts counts the first try; max_attempts would not
                          "retries": {"total_max_attempts": options.retries,
                                      "mode": "standard"}},
        # the part size of uploads; reads always pass their own block size
        "default_block_size": options.part_size_mb << 20,
    }
    if options.endpoint_url:
        kwargs["endpoint_url"] = options.endpoint_url
    if options.anon:
        kwargs["anon"] = True
    if options.profile:
        kwargs["profile"] = options.profile  # handed to aiobotocore's session
    if options.region:
        kwargs["client_kwargs"] = {"region_name": options.region}
    if options.requester_pays:
        kwargs["requester_pays"] = True
    return kwargs


def _gcs_kwargs(options: StorageOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if options.endpoint_url:
        kwargs["endpoint_url"] = options.endpoint_url
    if options.anon:
        kwargs["token"] = "anon"
    if options.requester_pays:
        kwargs["requester_pays"] = True
    return kwargs


_KWARGS: dict[str, Callable[[StorageOptions], dict[str, Any]]] = {
    "gcs": _gcs_kwargs, "gs": _gcs_kwargs, "s3": _s3_kwargs, "s3a": _s3_kwargs,
}
_GIVEN_ONLY = ("endpoint_url", "anon", "profile", "region", "requester_pays")


_AWS = ("the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE) or the "
        "'profile' option")
_CREDENTIALS = {"s3": _AWS, "s3a": _AWS,
                "gs": "GOOGLE_APPLICATION_CREDENTIALS or gcloud's default credentials",
                "gcs": "GOOGLE_APPLICATION_CREDENTIALS or gcloud's default credentials",
                "abfs": "the environment (AZURE_STORAGE_ACCOUNT_KEY, ...) or az login",
                "az": "the environment (AZURE_STORAGE_ACCOUNT_KEY, ...) or az login"}
_OTHER_CREDENTIALS = "the environment or the store's own configuration files"


def check_uri(uri: str) -> None:
    """Refuse a URI with credentials in it.

    Raises:
        CredentialsInUriError: ``user[:secret]@`` in the URI; the message masks it.
    """
    proto = scheme_of(uri)
    if proto in ("", "file", "local", "snowflake"):  # a Snowflake URI names its user; the
        return  # Snowflake connector refuses a password in it
    netloc = uri.partition("://")[2].partition("/")[0]
    if "@" in netloc:
        masked = f"{proto}://***@{netloc.rpartition('@')[2]}/..."
        raise CredentialsInUriError(
            f"{masked}: credentials in the URI are not accepted; remove them and use "
            f"{_CREDENTIALS.get(proto, _OTHER_CREDENTIALS)}"
        )


def storage_kwargs(uri: str, options: StorageOptions) -> dict[str, Any]:
    """The fsspec keyword arguments for ``uri``'s protocol.

    Raises:
        ConnectorConfigError: a storage option is set that the protocol does not take.
    """
    proto = scheme_of(uri)
    build = _KWARGS.get(proto)
    if build is not None:
        return build(options)
    given = [k for k in _GIVEN_ONLY if getattr(options, k)]
    if given:
        raise ConnectorConfigError(f"{uri}: option(s) {', '.join(given)} do not apply to "
                                   f"'{proto or 'local'}' paths; remove them")
    return {}


def open_filesystem(uri: str, options: StorageOptions) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and path for ``uri`` with ``options`` applied.

    Raises:
        CredentialsInUriError: the URI carries credentials.
        UnknownSchemeError: no filesystem for the scheme; names the package to install.
        ConnectorConfigError: the filesystem refused the URI or the options.
    """
    check_uri(uri)
    kwargs = storage_kwargs(uri, options)
    proto = scheme_of(uri)
    hint = _HINTS.get(proto)
    extra = f"; install it with: {hint}" if hint else ""
    try:
        return url_to_fs(uri, **kwargs)  # type: ignore[no-any-return]
    except ImportError as exc:  # a known protocol whose package is not installed
        raise UnknownSchemeError(f"{uri}: no filesystem for '{proto}://'{extra}") from exc
    except ValueError as exc:
        if not _known_protocol(proto):
            raise UnknownSchemeError(f"{uri}: no filesystem for '{proto}://'{extra}") from exc
        raise ConnectorConfigError(f"{uri}: {exc}") from exc


def _known_protocol(proto: str) -> bool:
    """Whether fsspec has an implementation for every protocol of ``proto`` (chains too)."""
    known = set(fsspec.available_protocols())
    return all(p in known for p in (proto or "file").split("::"))


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def where(uri: str) -> str:
    """``bucket 'b', key 'k'`` for an object URL, the path otherwise."""
    if scheme_of(uri) in ("", "file", "local"):
        return uri
    parts = urlsplit(uri)
    key = parts.path.lstrip("/")
    return f"bucket '{parts.netloc}', key '{key}'" if key else f"bucket '{parts.netloc}'"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _error_code(exc: BaseException) -> tuple[str, str]:
    """The store's error code and operation (``("NoSuchBucket", "ListObjectsV2")``)."""
    for err in _chain(exc):
        response = getattr(err, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return str(response["Error"].get("Code", "")), getattr(err, "operation_name", "")
        if type(err).__name__ in _NO_CREDENTIALS:
            return type(err).__name__, ""
    return "", ""


def _unreachable(exc: BaseException) -> bool:
    for err in _chain(exc):
        names = {cls.__name__ for cls in type(err).__mro__}
        if names & _UNREACHABLE or isinstance(err, (ConnectionError, TimeoutError)):
            return True
    return False


def is_missing_bucket(exc: BaseException) -> bool:
    """Whether the store said that the bucket itself does not exist."""
    code, operation = _error_code(exc)
    return code == "NoSuchBucket" or (operation == "HeadBucket" and code in ("404", "NotFound"))


def translate_storage_error(
    exc: BaseException, uri: str, *, doing: str, side: Side
) -> ConnectorError:
    """The :mod:`connectors.errors` class for a store's exception (a ConnectorError as is)."""
    if isinstance(exc, ConnectorError):
        return exc
    flag = f"--{side}-option"
    code, _ = _error_code(exc)
    if _unreachable(exc):
        return ConnectionFailedError(
            f"{uri}: cannot reach the storage service while {doing}, after retries ({exc}); "
            f"check {flag} endpoint_url=..., the network and proxy settings")
    if is_missing_bucket(exc):
        bucket = urlsplit(uri).netloc
        return BucketNotFoundError(f"{uri}: bucket '{bucket}' does not exist (while {doing}); "
                                   f"check the name and {flag} region=...")
    if code in _REFUSED or code in _NO_CREDENTIALS:
        what = (f"the store refused the credentials ({code})" if code in _REFUSED
                else f"no usable credentials ({exc})")
        return AuthenticationError(
            f"{uri}: {what} while {doing}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
            f"AWS_PROFILE, pass {flag} profile=..., or {flag} anon=true for public data")
    if isinstance(exc, PermissionError):
        return AccessDeniedError(
            f"{uri}: access denied to {where(uri)} while {doing}; check the credentials "
            f"(AWS_PROFILE, {flag} profile=...) and the bucket policy"
            + ("" if side == "output" else f", or {flag} anon=true for public data"))
    if isinstance(exc, FileNotFoundError) and side == "input":
        if scheme_of(uri) in ("", "file", "local"):
            return SourceNotFoundError(f"{uri}: no such file or directory (while {doing})")
        return SourceNotFoundError(f"{uri}: no such object ({where(uri)}) while {doing}")
    if isinstance(exc, FileNotFoundError):  # something staged went missing
        return OutputError(f"{uri}: {doing} failed: no such file or object: {exc}")
    failed = ReadError if side == "input" else OutputError
    return failed(f"{uri}: {doing} failed: {exc}")


@contextlib.contextmanager
def storage_errors(uri: str, *, doing: str, side: Side, hint: str = "") -> Iterator[None]:
    """Translate store exceptions raised in the block (see :func:`translate_storage_error`).

    On the input side only errors of the store are translated (see :func:`is_store_error`);
    on the output side every ``OSError`` is (the fallback is :class:`OutputError`).
    ``hint`` (what to do next) ends the message.
    """
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        if is_store_error(exc) or (side == "output" and isinstance(exc, OSError)):
            error = translate_storage_error(exc, uri, doing=doing, side=side)
            if hint:
                error.args = (f"{error}; {hint}",)
            raise error from exc
        raise


def is_store_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the store (missing, refused, unreachable, a service error).

    A bare ``OSError`` from pyarrow (a broken gzip stream) is the file's fault, not the store's.
    """
    if isinstance(exc, ConnectorError):
        return False
    return (isinstance(exc, (FileNotFoundError, PermissionError)) or _unreachable(exc)
            or bool(_error_code(exc)[0]))


@contextlib.contextmanager
def write_whole(
    fs: fsspec.AbstractFileSystem, path: str, *, block_size: int | None = None
) -> Iterator[IO[bytes]]:
    """Open ``path`` for writing; it appears only when the block exits cleanly.

    Object stores upload a file in parts (an S3 multipart upload) and publish it
    on ``close()``. A plain ``with fs.open(...)`` would publish the part written
    so far when the block raises, since fsspec's ``__exit__`` closes the file;
    here an error calls ``discard()`` instead (aborting the multipart upload),
    and a local file is removed.

    Raises:
        Whatever the block or the store raises; translate it at the caller.
    """
    kwargs = {"block_size": block_size} if block_size else {}
    file = fs.open(path, "wb", **kwargs)
    try:
        yield file
    except BaseException:
        _discard(fs, path, file)
        raise
    try:
        file.close()
    except BaseException:
        _discard(fs, path, file)  # e.g. CompleteMultipartUpload failed: abort the upload
        raise


def _discard(fs: fsspec.AbstractFileSystem, path: str, file: Any) -> None:
    if isinstance(file, AbstractBufferedFile):
        with contextlib.suppress(Exception):
            file.discard()
        file.closed = True  # close() (also from __del__) would publish the buffer
        return
    with contextlib.suppress(Exception):
        file.close()
    if is_local(fs):
        with contextlib.suppress(OSError):
            fs.rm(path)
