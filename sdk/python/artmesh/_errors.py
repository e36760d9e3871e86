"""The SDK's exceptions: one per API error code, all under ArtmeshError.

Every error the node answers is ``{"error": {"code": ..., "message": ...}}``
with one status per code (API.md, "Errors"); :func:`error_from_response`
turns it into the matching subclass, so callers can write::

    try:
        client.artifact.get(artifact_id)
    except artmesh.NotFoundError:
        ...
"""

from __future__ import annotations

import builtins
import json
from typing import Optional

__all__ = [
    "ArtmeshError",
    "InvalidArgumentError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "IdempotencyKeyReusedError",
    "PreconditionFailedError",
    "ChecksumMismatchError",
    "ExpiredError",
    "TooLargeError",
    "RangeNotSatisfiableError",
    "InternalError",
    "UnavailableError",
    "OutcomeUnknownError",
    "InsufficientStorageError",
    "QuotaExceededError",
    "TooManyError",
    "ArtmeshConnectionError",
    "ArtmeshTimeoutError",
]


class ArtmeshError(Exception):
    """An error answered by an artmesh node, or met on the way to one.

    Attributes:
        status: the HTTP status of the answer (``None`` when no answer came).
        code: the API's snake_case error code, such as ``"not_found"``.
        message: the node's message, for a person.
    """

    #: The code of this class, when it stands for one API error code.
    CODE: str = ""
    #: The HTTP status of that code.
    STATUS: Optional[int] = None

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message: str = message
        self.status: Optional[int] = status if status is not None else self.STATUS
        self.code: str = code if code is not None else self.CODE

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} ({self.status} {self.code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class InvalidArgumentError(ArtmeshError):
    """400 ``invalid_argument``: the request is malformed or names something unknown."""

    CODE, STATUS = "invalid_argument", 400


class UnauthenticatedError(ArtmeshError):
    """401 ``unauthenticated``: no API key, or one that belongs to no agent."""

    CODE, STATUS = "unauthenticated", 401


class PermissionDeniedError(ArtmeshError):
    """403 ``permission_denied``: the caller may see this but not do that."""

    CODE, STATUS = "permission_denied", 403


class NotFoundError(ArtmeshError):
    """404 ``not_found``: no such thing, or one the caller may not see."""

    CODE, STATUS = "not_found", 404


class ConflictError(ArtmeshError):
    """409 ``conflict``: the call contradicts the current state (for example the last version)."""

    CODE, STATUS = "conflict", 409


class IdempotencyKeyReusedError(ArtmeshError):
    """422 ``idempotency_key_reused``: the ``Idempotency-Key`` came earlier with another request.

    A key stands for one request; nothing was done. Use a new key.
    """

    CODE, STATUS = "idempotency_key_reused", 422


class PreconditionFailedError(ArtmeshError):
    """412 ``precondition_failed``: ``If-Match`` or ``If-None-Match`` does not hold; nothing was done."""

    CODE, STATUS = "precondition_failed", 412


class ChecksumMismatchError(InvalidArgumentError):
    """400 ``checksum_mismatch``: the content's digest is not the one the request declared; nothing was recorded."""

    CODE, STATUS = "checksum_mismatch", 400


class ExpiredError(ArtmeshError):
    """410 ``expired``: a signed URL, upload or token is past its expiry."""

    CODE, STATUS = "expired", 410


class TooLargeError(ArtmeshError):
    """413 ``too_large``: a body, metadata or artifact over the node's limits."""

    CODE, STATUS = "too_large", 413


class RangeNotSatisfiableError(ArtmeshError):
    """416 ``range_not_satisfiable``: a byte range outside the content."""

    CODE, STATUS = "range_not_satisfiable", 416


class InternalError(ArtmeshError):
    """500 ``internal``: the node failed; its log has the details."""

    CODE, STATUS = "internal", 500


class UnavailableError(ArtmeshError):
    """503 ``unavailable``: no catalog quorum, too few members for the copies, or content out of reach.

    The client has already retried the call (honouring ``Retry-After``) by
    the time this is raised.
    """

    CODE, STATUS = "unavailable", 503


class OutcomeUnknownError(UnavailableError):
    """503 ``outcome_unknown``: a write that may or may not have taken effect.

    The catalog's leader may have taken the write before its answer was
    lost (the leader lost its leadership after appending it, or the node
    that forwarded it got no answer), so it may still take effect. The
    client sends the write again with its ``Idempotency-Key`` (which makes
    it take effect at most once) up to ``max_retries`` times; this error
    comes once they are spent. Send it again with the same
    ``idempotency_key``, later, to learn its outcome. It is an
    :class:`UnavailableError` too, so code that catches every 503 still
    catches it.
    """

    CODE, STATUS = "outcome_unknown", 503


class InsufficientStorageError(ArtmeshError):
    """507 ``insufficient_storage``: the node's disk has no room for the write.

    Nothing was stored. The message says how much space is free; deleting
    content and collecting garbage (``artmesh repo gc``) on that node, or
    writing through another node, may help.
    """

    CODE, STATUS = "insufficient_storage", 507


class QuotaExceededError(ArtmeshError):
    """507 ``quota_exceeded``: the write would take the agent over its byte quota.

    Nothing was stored. Its stored bytes (live versions of its artifacts)
    plus its staged bytes (declared sizes of its open uploads) may not pass
    its ``bytes`` limit, nor its staged bytes its ``staged`` limit; deleting
    versions or uploads, or an admin raising the quota
    (``artmesh agent quota``), helps.
    """

    CODE, STATUS = "quota_exceeded", 507


class TooManyError(ArtmeshError):
    """429 ``too_many``: the agent holds as many open uploads or event streams as its quota allows.

    Closing an event stream, or confirming or deleting an upload, helps.
    """

    CODE, STATUS = "too_many", 429


class ArtmeshConnectionError(ArtmeshError, builtins.ConnectionError):
    """No artmesh node answered at the API address, or the connection broke.

    It is also a built-in :class:`ConnectionError`. When nothing listens at
    the address its message says how to start a node (``artmesh daemon`` or
    ``make run``).
    """

    CODE = "connection_error"

    def __init__(self, message: str, base_url: str = "") -> None:
        ArtmeshError.__init__(self, message, None, self.CODE)
        #: The origin that could not be reached.
        self.base_url: str = base_url


class ArtmeshTimeoutError(ArtmeshConnectionError, builtins.TimeoutError):
    """The node did not answer within the client's timeout."""

    CODE = "timeout"


_BY_CODE: dict[str, type[ArtmeshError]] = {
    cls.CODE: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        ExpiredError,
        TooLargeError,
        RangeNotSatisfiableError,
        InternalError,
        UnavailableError,
        InsufficientStorageError,
        QuotaExceededError,
        TooManyError,
        OutcomeUnknownError,
        IdempotencyKeyReusedError,
        PreconditionFailedError,
        ChecksumMismatchError,
    )
}
# A status shared by two codes (507) maps to the first of them.
_BY_STATUS: dict[int, type[ArtmeshError]] = {}
for _cls in _BY_CODE.values():
    if _cls.STATUS is not None:
        _BY_STATUS.setdefault(_cls.STATUS, _cls)


def error_from_response(status: int, body: bytes, reason: str = "") -> ArtmeshError:
    """Return the exception for an error answer with ``status`` and ``body``.

    The class is chosen by the body's code, else by the status; a body that
    is not the API's error shape (a proxy's page, say) keeps its status and
    gets the code of that status.
    """
    code: Optional[str] = None
    message = ""
    try:
        doc = json.loads(body.decode("utf-8")) if body else None
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            if isinstance(err.get("code"), str):
                code = err["code"]
            if isinstance(err.get("message"), str):
                message = err["message"]
    except (UnicodeDecodeError, ValueError):
        pass
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or ArtmeshError
    if code is None:
        code = cls.CODE or f"http_{status}"
    if not message:
        text = body[:200].decode("utf-8", "replace").strip() if body else ""
        message = text or reason or f"HTTP {status}"
    return cls(message, status, code)
