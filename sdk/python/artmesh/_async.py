"""The asynchronous client: :class:`AsyncClient`, with the same methods as Client, each awaitable.

Each call runs the synchronous implementation in a worker thread of the
client's own small thread pool (http.client is blocking), so the event
loop is never blocked; the connections are pooled and reused across calls
and threads. Cancelling an awaiting task stops an upload or download at its
next piece (the partial state is kept for a later call to resume) and
waits for the worker to let go of its files before the cancellation goes on.

A ``progress`` callback may be a plain function (called in the worker
thread) or a coroutine function (run on the client's event loop).
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextvars
import functools
import inspect
import os
import threading
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Optional, TypeVar, Union

from . import _client, _files
from ._events import EventStream
from ._models import (
    Access,
    Agent,
    AgentKey,
    Artifact,
    ArtifactList,
    Event,
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
    Version,
    VersionPlacement,
)

T = TypeVar("T")

#: ``progress(bytes_done, bytes_total)``, a function or a coroutine function.
AsyncProgress = Callable[[int, int], Any]

#: Default size of the client's worker pool: how many of its calls run at once.
DEFAULT_WORKERS = 16


class _Runner:
    """Runs blocking calls in the client's worker threads, with cancellation."""

    def __init__(self, max_workers: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="artmesh")

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        ev = threading.Event()
        ctx = contextvars.copy_context()
        ctx.run(_files.cancel_event.set, ev)
        fut: "asyncio.Future[T]" = loop.run_in_executor(self._pool, lambda: ctx.run(fn, *args, **kw))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            ev.set()
            fut.add_done_callback(_consume)
            # Let the worker stop at its next check, so that the files it
            # writes are closed before the cancellation goes on.
            await asyncio.wait({fut}, timeout=30)
            raise

    def progress(self, progress: Optional[AsyncProgress]) -> Optional[_files.Progress]:
        """A progress callback the worker thread can call."""
        if progress is None or not inspect.iscoroutinefunction(progress):
            return progress
        loop = asyncio.get_running_loop()
        coro_fn = progress

        def call(done: int, total: int) -> None:
            asyncio.run_coroutine_threadsafe(coro_fn(done, total), loop).result()

        return call

    @property
    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The worker threads (a watch holds one while it waits for the next event)."""
        return self._pool

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _next_event(stream: EventStream) -> Optional[Event]:
    """The stream's next event, or None at its end."""
    return next(stream, None)


def _consume(fut: "asyncio.Future[Any]") -> None:
    if not fut.cancelled():
        fut.exception()


class AsyncArtifacts:
    """Artifact calls: ``client.artifact``; see :class:`artmesh.Client`'s for each call's details."""

    def __init__(self, sync: _client.Artifacts, runner: _Runner) -> None:
        self._s = sync
        self._r = runner

    async def create(
        self,
        name: str,
        data: _client.Data,
        content_type: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        *,
        replicas: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        if_none_match: bool = False,
    ) -> Artifact:
        """Create an artifact from ``data`` (bytes, text, a binary file or an iterable of bytes)."""
        return await self._r.run(
            self._s.create, name, data, content_type, metadata, replicas=replicas, idempotency_key=idempotency_key, if_none_match=if_none_match
        )

    async def create_snippet(
        self,
        name: str,
        content: Any,
        metadata: Optional[Mapping[str, Any]] = None,
        *,
        replicas: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        if_none_match: bool = False,
    ) -> Artifact:
        """Store any JSON value as an ``application/json`` artifact."""
        return await self._r.run(
            self._s.create_snippet, name, content, metadata, replicas=replicas, idempotency_key=idempotency_key, if_none_match=if_none_match
        )

    async def update(
        self,
        artifact_id: str,
        data: _client.Data,
        metadata: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        *,
        replicas: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        if_match: Optional[str] = None,
    ) -> Artifact:
        """Make ``data`` the artifact's new version; ``metadata`` is merged in; ``if_match`` makes it conditional."""
        return await self._r.run(
            self._s.update, artifact_id, data, metadata, content_type, replicas=replicas, idempotency_key=idempotency_key, if_match=if_match
        )

    async def upload_file(
        self,
        path: "os.PathLike[str] | str",
        name: Optional[str] = None,
        content_type: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        progress: Optional[AsyncProgress] = None,
        *,
        replicas: Optional[int] = None,
    ) -> Artifact:
        """Store a file through an upload URL, resumably, confirmed with its SHA-256."""
        return await self._r.run(
            self._s.upload_file, path, name, content_type, metadata, self._r.progress(progress), replicas=replicas
        )

    async def get_upload_url(
        self,
        name: str,
        content_type: Optional[str] = None,
        size_bytes: int = 0,
        metadata: Optional[Mapping[str, Any]] = None,
        artifact_id: Optional[str] = None,
        *,
        expires_in: Optional[int] = None,
    ) -> Upload:
        """Open an upload session; a plain PUT of the bytes to ``.url`` sends them."""
        return await self._r.run(
            self._s.get_upload_url, name, content_type, size_bytes, metadata, artifact_id, expires_in=expires_in
        )

    async def get_upload(self, upload_id: str) -> Upload:
        """The state of an upload session the caller opened."""
        return await self._r.run(self._s.get_upload, upload_id)

    async def abort_upload(self, upload_id: str) -> None:
        """Abandon an upload session."""
        await self._r.run(self._s.abort_upload, upload_id)

    async def confirm_upload(self, upload_id: str, sha256: Optional[str] = None, *, replicas: Optional[int] = None) -> Artifact:
        """Turn a received upload into its artifact or version, checking ``sha256`` when given."""
        return await self._r.run(self._s.confirm_upload, upload_id, sha256, replicas=replicas)

    async def get(self, artifact_id: str) -> Artifact:
        """The artifact."""
        return await self._r.run(self._s.get, artifact_id)

    async def download(self, artifact_id: str, version: Optional[int] = None) -> bytes:
        """The content of the current version, or of ``version``, as bytes."""
        return await self._r.run(self._s.download, artifact_id, version)

    async def download_file(
        self,
        artifact_id: str,
        path: "os.PathLike[str] | str",
        version: Optional[int] = None,
        progress: Optional[AsyncProgress] = None,
        *,
        overwrite: bool = False,
    ) -> str:
        """Write the content to ``path`` atomically, resuming with Range; returns the path.

        Folders are made as needed; an existing file raises
        ``FileExistsError`` unless ``overwrite=True``.
        """
        return await self._r.run(
            functools.partial(self._s.download_file, overwrite=overwrite), artifact_id, path, version, self._r.progress(progress)
        )

    async def list_versions(self, artifact_id: str) -> builtins.list[Version]:
        """Every version of the artifact, oldest first."""
        return await self._r.run(self._s.list_versions, artifact_id)

    async def list(
        self,
        metadata_filter: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        name: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> ArtifactList:
        """The caller's own artifacts, newest first; ``.next_cursor`` continues, ``.total`` only without filters."""
        return await self._r.run(self._s.list, metadata_filter, content_type, name, limit, offset, cursor)

    async def list_shared(
        self,
        metadata_filter: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        name: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> ArtifactList:
        """Artifacts shared with the caller, each with its ``owner``; ``.next_cursor`` continues."""
        return await self._r.run(self._s.list_shared, metadata_filter, content_type, name, limit, offset, cursor)

    async def iter_all(
        self,
        metadata_filter: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        name: Optional[str] = None,
        *,
        shared: bool = False,
        page_size: int = 200,
    ) -> AsyncIterator[Artifact]:
        """Every matching artifact, page after page (``async for a in client.artifact.iter_all(): ...``)."""
        fetch = self.list_shared if shared else self.list
        cursor: Optional[str] = None
        while True:
            page = await fetch(metadata_filter, content_type, name, page_size, None, cursor)
            for a in page:
                yield a
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def share(
        self,
        artifact_id: str,
        with_agents: Union[None, str, Iterable[str]] = None,
        with_groups: Union[None, str, Iterable[str]] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Access:
        """Let agents, and members of groups, read the artifact."""
        return await self._r.run(self._s.share, artifact_id, with_agents, with_groups, idempotency_key=idempotency_key)

    async def unshare(
        self,
        artifact_id: str,
        agents: Union[None, str, Iterable[str]] = None,
        groups: Union[None, str, Iterable[str]] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Access:
        """Take back access."""
        return await self._r.run(self._s.unshare, artifact_id, agents, groups, idempotency_key=idempotency_key)

    async def get_access(self, artifact_id: str) -> Access:
        """The artifact's owner and the agents and groups it is shared with."""
        return await self._r.run(self._s.get_access, artifact_id)

    async def create_signed_url(self, artifact_id: str, expires_in: int = 3600, version: Optional[int] = None) -> SignedURL:
        """A capability URL with its token id and expiry."""
        return await self._r.run(self._s.create_signed_url, artifact_id, expires_in, version)

    async def get_signed_url(self, artifact_id: str, expires_in: int = 3600, version: Optional[int] = None) -> str:
        """A URL that serves the content with no other authentication."""
        return await self._r.run(self._s.get_signed_url, artifact_id, expires_in, version)

    async def revoke_signed_url(self, token_id: str) -> None:
        """Make a signed URL stop working."""
        await self._r.run(self._s.revoke_signed_url, token_id)

    async def download_signed_url(self, url: str) -> bytes:
        """Fetch a signed URL's content (no API key is sent)."""
        return await self._r.run(self._s.download_signed_url, url)

    async def watch(
        self,
        artifact_id: Optional[str] = None,
        name: Optional[str] = None,
        shared_with_me: bool = False,
        last_event_id: Optional[str] = None,
    ) -> AsyncIterator[Event]:
        """The changes to artifacts the caller may read: ``async for ev in client.artifact.watch(): ...``.

        Each next event is awaited in one of the client's worker threads;
        leaving the loop (``break``, an exception, a cancelled task) closes
        the stream at once. See :meth:`artmesh.Artifacts.watch`.
        """
        stream = self._s.watch(artifact_id, name, shared_with_me, last_event_id)
        loop = asyncio.get_running_loop()
        try:
            while True:
                fut = loop.run_in_executor(self._r.pool, _next_event, stream)
                try:
                    ev = await fut
                except BaseException:
                    # The worker may be blocked on the socket: close wakes it.
                    stream.close()
                    fut.add_done_callback(_consume)
                    raise
                if ev is None:
                    return
                yield ev
        finally:
            stream.close()

    async def delete(self, artifact_id: str, *, idempotency_key: Optional[str] = None, if_match: Optional[str] = None) -> None:
        """Delete the artifact with everything it has."""
        await self._r.run(self._s.delete, artifact_id, idempotency_key=idempotency_key, if_match=if_match)

    async def delete_version(
        self, artifact_id: str, version: int, *, idempotency_key: Optional[str] = None, if_match: Optional[str] = None
    ) -> None:
        """Delete one version (not the only one left)."""
        await self._r.run(self._s.delete_version, artifact_id, version, idempotency_key=idempotency_key, if_match=if_match)

    async def set_replication(self, artifact_id: str, factor: int) -> int:
        """How many members keep every version (0: the mesh policy)."""
        return await self._r.run(self._s.set_replication, artifact_id, factor)

    async def get_placement(self, artifact_id: str) -> builtins.list[VersionPlacement]:
        """Where each version is held, oldest first."""
        return await self._r.run(self._s.get_placement, artifact_id)


class AsyncAgents:
    """Agent administration (admin agents only)."""

    def __init__(self, sync: _client.Agents, runner: _Runner) -> None:
        self._s, self._r = sync, runner

    async def create(self, agent_id: str, groups: Optional[Iterable[str]] = None, admin: bool = False) -> AgentKey:
        """Add an agent; its API key is shown only this once."""
        return await self._r.run(self._s.create, agent_id, groups, admin)

    async def list(self) -> builtins.list[Agent]:
        """Every agent, by id."""
        return await self._r.run(self._s.list)

    async def delete(self, agent_id: str) -> None:
        """Remove an agent."""
        await self._r.run(self._s.delete, agent_id)

    async def rotate(self, agent_id: str) -> AgentKey:
        """Give an agent a new API key."""
        return await self._r.run(self._s.rotate, agent_id)

    async def quota(self, agent_id: str) -> QuotaStatus:
        """An agent's usage and limits."""
        return await self._r.run(self._s.quota, agent_id)

    async def set_quota(
        self,
        agent_id: str,
        *,
        max_bytes: Optional[int] = None,
        max_staged: Optional[int] = None,
        max_uploads: Optional[int] = None,
        max_streams: Optional[int] = None,
    ) -> QuotaStatus:
        """Set an agent's own limits."""
        return await self._r.run(
            self._s.set_quota, agent_id, max_bytes=max_bytes, max_staged=max_staged, max_uploads=max_uploads, max_streams=max_streams
        )


class AsyncGroups:
    """Group administration (admin agents only)."""

    def __init__(self, sync: _client.Groups, runner: _Runner) -> None:
        self._s, self._r = sync, runner

    async def create(self, name: str, members: Optional[Iterable[str]] = None) -> Group:
        """Create a group with these members (or set them)."""
        return await self._r.run(self._s.create, name, members)

    async def set_members(self, name: str, members: Iterable[str]) -> Group:
        """Make ``members`` the group's complete member list."""
        return await self._r.run(self._s.set_members, name, members)

    async def list(self) -> builtins.list[Group]:
        """Every group, by name."""
        return await self._r.run(self._s.list)

    async def delete(self, name: str) -> None:
        """Remove a group."""
        await self._r.run(self._s.delete, name)


class AsyncMesh:
    """The mesh: members, invites, replication policy."""

    def __init__(self, sync: _client.Mesh, runner: _Runner) -> None:
        self._s, self._r = sync, runner

    async def members(self) -> builtins.list[Member]:
        """The mesh's members as the called node sees them."""
        return await self._r.run(self._s.members)

    async def invite(self, expires_in: int = 3600) -> Invite:
        """A one-time ticket for ``artmesh init --join``."""
        return await self._r.run(self._s.invite, expires_in)

    async def remove(self, peer_id: str) -> None:
        """Take a node out of the mesh."""
        await self._r.run(self._s.remove, peer_id)

    async def policy(self) -> Policy:
        """The mesh's replication policy."""
        return await self._r.run(self._s.policy)

    async def set_policy(self, replication_factor: Optional[int] = None, write_replicas: Optional[int] = None) -> Policy:
        """Change the replication policy."""
        return await self._r.run(self._s.set_policy, replication_factor, write_replicas)

    async def quota(self) -> Quota:
        """The default limits of agents that are not admins."""
        return await self._r.run(self._s.quota)

    async def set_quota(
        self,
        *,
        max_bytes: Optional[int] = None,
        max_staged: Optional[int] = None,
        max_uploads: Optional[int] = None,
        max_streams: Optional[int] = None,
    ) -> Quota:
        """Change the default limits."""
        return await self._r.run(
            self._s.set_quota, max_bytes=max_bytes, max_staged=max_staged, max_uploads=max_uploads, max_streams=max_streams
        )


class AsyncPins:
    """This node's pins."""

    def __init__(self, sync: _client.Pins, runner: _Runner) -> None:
        self._s, self._r = sync, runner

    async def add(self, artifact_id: str, version: Optional[int] = None) -> Pin:
        """Make this node fetch and keep a version."""
        return await self._r.run(self._s.add, artifact_id, version)

    async def list(self) -> builtins.list[Pin]:
        """This node's pins."""
        return await self._r.run(self._s.list)

    async def remove(self, artifact_id: str, version: Optional[int] = None) -> None:
        """Stop keeping a version here."""
        await self._r.run(self._s.remove, artifact_id, version)


class AsyncRepo:
    """This node's block store (admin only)."""

    def __init__(self, sync: _client.Repo, runner: _Runner) -> None:
        self._s, self._r = sync, runner

    async def stat(self) -> RepoStat:
        """How large the block store is."""
        return await self._r.run(self._s.stat)

    async def gc(self) -> GCResult:
        """Remove the blocks nothing references any more."""
        return await self._r.run(self._s.gc)


class AsyncClient:
    """An asynchronous client of an artmesh node's HTTP API, as one agent: every method is awaitable.

    The arguments are :class:`artmesh.Client`'s, and ``max_workers``: how
    many of this client's calls may run at once. Use it as ``async with
    artmesh.AsyncClient() as client:``, or await :meth:`close`.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = _client.DEFAULT_TIMEOUT,
        *,
        max_retries: int = _client.DEFAULT_RETRIES,
        consistent_reads: bool = False,
        user_agent: Optional[str] = None,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._sync = _client.Client(
            api_key, base_url, timeout, max_retries=max_retries, consistent_reads=consistent_reads, user_agent=user_agent
        )
        self._r = _Runner(max_workers)
        #: Artifact calls.
        self.artifact = AsyncArtifacts(self._sync.artifact, self._r)
        #: Agent administration.
        self.agents = AsyncAgents(self._sync.agents, self._r)
        #: Group administration.
        self.groups = AsyncGroups(self._sync.groups, self._r)
        #: Mesh members, invites and replication policy.
        self.mesh = AsyncMesh(self._sync.mesh, self._r)
        #: This node's pins.
        self.pins = AsyncPins(self._sync.pins, self._r)
        #: This node's block store.
        self.repo = AsyncRepo(self._sync.repo, self._r)

    @property
    def base_url(self) -> str:
        """The node's API URL this client calls."""
        return self._sync.base_url

    @property
    def _t(self) -> Any:
        return self._sync._t

    async def node(self) -> NodeInfo:
        """The called node: peer id, mesh addresses, version, API URL."""
        return await self._r.run(self._sync.node)

    async def ready(self) -> bool:
        """Whether the node is ready to serve (``GET /readyz``)."""
        return await self._r.run(self._sync.ready)

    async def openapi(self) -> dict[str, Any]:
        """The node's OpenAPI description."""
        return await self._r.run(self._sync.openapi)

    async def close(self) -> None:
        """Close the kept connections and the worker pool."""
        self._sync.close()
        self._r.close()

    async def aclose(self) -> None:
        """The same as :meth:`close`."""
        await self.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"artmesh.AsyncClient(base_url={self.base_url!r})"


__all__ = ["AsyncClient", "AsyncArtifacts", "AsyncAgents", "AsyncGroups", "AsyncMesh", "AsyncPins", "AsyncRepo"]
