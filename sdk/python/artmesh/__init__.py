"""artmesh: the Python SDK of an artmesh node's HTTP API.

artmesh is a peer-to-peer, content-addressed artifact mesh for AI agents;
every node serves a local HTTP API (API.md, and ``/v1/openapi.json`` on the
node). This package is its client, in the standard library only::

    import asyncio, artmesh

    async def main() -> None:
        async with artmesh.AsyncClient() as client:   # finds the local node and key
            a = await client.artifact.create("report.txt", b"hello", metadata={"year": 2025})
            data = await client.artifact.download(a.id)

    asyncio.run(main())

:class:`Client` has the same methods, synchronous. Both find the node as
the ``artmesh`` CLI does: ``$ARTMESH_API`` and ``$ARTMESH_API_KEY``, else
the local repo (``$ARTMESH_PATH`` or ``~/.artmesh``). Errors are
:class:`ArtmeshError` subclasses, one per API error code, with ``.status``,
``.code`` and ``.message``; :class:`ArtmeshConnectionError` (a built-in
``ConnectionError``) means no node answered.
"""

from ._version import __version__
from ._errors import (
    ArtmeshConnectionError,
    ArtmeshError,
    ArtmeshTimeoutError,
    ConflictError,
    IdempotencyKeyReusedError,
    PreconditionFailedError,
    ChecksumMismatchError,
    ExpiredError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RangeNotSatisfiableError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
    OutcomeUnknownError,
    InsufficientStorageError,
    QuotaExceededError,
    TooManyError,
)
from ._models import (
    Access,
    Event,
    Agent,
    AgentKey,
    Artifact,
    ArtifactList,
    GCResult,
    Group,
    Invite,
    Member,
    NodeInfo,
    Pin,
    Policy,
    Quota,
    QuotaStatus,
    RepoStat,
    SignedURL,
    Upload,
    Usage,
    Version,
    VersionPlacement,
)
from ._events import EventStream
from ._client import Agents, Artifacts, Client, Groups, Mesh, Pins, Repo
from ._async import AsyncAgents, AsyncArtifacts, AsyncClient, AsyncGroups, AsyncMesh, AsyncPins, AsyncRepo

#: The SDK's name for "no node answered"; also a built-in ConnectionError.
ConnectionError = ArtmeshConnectionError  # noqa: A001 - artmesh.ConnectionError, as the issue names it

__all__ = [
    "__version__",
    "Client",
    "AsyncClient",
    "Artifacts",
    "Agents",
    "Groups",
    "Mesh",
    "Pins",
    "Repo",
    "AsyncArtifacts",
    "AsyncAgents",
    "AsyncGroups",
    "AsyncMesh",
    "AsyncPins",
    "AsyncRepo",
    "Artifact",
    "ArtifactList",
    "Version",
    "Access",
    "Upload",
    "SignedURL",
    "Agent",
    "AgentKey",
    "Group",
    "Member",
    "Invite",
    "NodeInfo",
    "Policy",
    "Quota",
    "Usage",
    "QuotaStatus",
    "Pin",
    "VersionPlacement",
    "RepoStat",
    "GCResult",
    "Event",
    "EventStream",
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
