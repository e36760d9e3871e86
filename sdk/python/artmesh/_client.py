"""The synchronous client: :class:`Client` and its resources.

Every method sends one API call (upload_file and download_file send as
many as a resumable transfer needs) and returns typed values from
:mod:`artmesh._models`; error answers raise the :class:`ArtmeshError`
subclass of their code.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import io
import json
import os
import stat
from typing import Any, Iterable, Iterator, Mapping, Optional, Union, cast

from . import _files
from ._config import find_api_key, find_base_url
from ._errors import ArtmeshError
from ._events import EventStream
from ._models import (
    Access,
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
    Version,
    VersionPlacement,
)
from ._transport import CHUNK, Body, Transport, file_chunks, q, replayable

#: What ``create`` and ``update`` take as content: bytes, text (sent as
#: UTF-8), a binary file object (streamed from its current position), or an
#: iterable of bytes chunks (streamed, chunked).
Data = Union[bytes, bytearray, memoryview, str, io.IOBase, Any, Iterable[bytes]]

#: Default seconds to wait for the node on connect and on each read.
DEFAULT_TIMEOUT = 60.0

#: Default retries of a 503 answer.
DEFAULT_RETRIES = 3


def _metadata_header(metadata: Mapping[str, Any]) -> bytes:
    """Metadata for the Artifact-Metadata header: compact JSON, UTF-8 kept as it is."""
    if not isinstance(metadata, Mapping):
        raise TypeError("metadata must be a mapping (a JSON object)")
    return json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _filter_value(v: Any) -> str:
    """A metadata filter value: a string as it is, anything else as its compact JSON text."""
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _list_query(
    metadata_filter: Optional[Mapping[str, Any]],
    content_type: Optional[str],
    name: Optional[str],
    limit: Optional[int],
    offset: Optional[int],
    cursor: Optional[str] = None,
) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    if name is not None:
        query.append(("name", name))
    if content_type is not None:
        query.append(("content_type", content_type))
    for k, v in (metadata_filter or {}).items():
        if v is None:
            continue
        query.append(("metadata." + str(k), _filter_value(v)))
    if limit is not None:
        query.append(("limit", str(int(limit))))
    if offset is not None:
        query.append(("offset", str(int(offset))))
    if cursor:
        query.append(("cursor", cursor))
    return query


def _names(v: Union[None, str, Iterable[str]]) -> Optional[builtins.list[str]]:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def _body_of(data: Data) -> tuple[Body, Optional[int]]:
    """A request body for content and its length (None: sent chunked)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, (bytes, bytearray)):
        return data, len(data)
    if isinstance(data, memoryview):
        return data.tobytes(), data.nbytes
    if hasattr(data, "read"):
        f: Any = data
        sized = _file_size(f)
        if sized is not None and hasattr(f, "readinto"):
            start, n = sized
            return replayable(lambda: file_chunks(f, start, n)), n

        def reads() -> Iterator[bytes]:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    return
                yield chunk

        return reads, None
    if isinstance(data, Mapping):
        raise TypeError("cannot send a mapping as content: use create_snippet for JSON, or give bytes")
    if isinstance(data, Iterable):
        chunks = cast(Iterable[Any], data)

        def each() -> Iterator[bytes]:
            for chunk in chunks:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError(f"an iterable of content must yield bytes, not {type(chunk).__name__}")
                yield bytes(chunk)

        return each, None
    raise TypeError(f"cannot send {type(data).__name__} as content: give bytes, str, a binary file or an iterable of bytes")


def _file_size(f: Any) -> Optional[tuple[int, int]]:
    """(position, bytes left) of a seekable file object, or None."""
    try:
        if not f.seekable():
            return None
        pos = int(f.tell())
        try:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):
                return pos, max(0, st.st_size - pos)
        except (OSError, AttributeError, io.UnsupportedOperation):
            pass
        end = int(f.seek(0, io.SEEK_END))
        f.seek(pos)
        return pos, max(0, end - pos)
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None


def _write_headers(content_type: Optional[str], metadata: Optional[Mapping[str, Any]], length: Optional[int]) -> dict[str, Union[str, bytes]]:
    h: dict[str, Union[str, bytes]] = {}
    if content_type:
        h["Content-Type"] = content_type
    if metadata is not None:
        h["Artifact-Metadata"] = _metadata_header(metadata)
    if length is not None:
        h["Content-Length"] = str(length)
    return h


def _digest(body: Any) -> dict[str, Union[str, bytes]]:
    """Content-Digest for content held in memory, which the node checks and records (none for a stream)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return {"Content-Digest": "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"}
    return {}


def _conditions(if_match: Optional[str] = None, if_none_match: bool = False) -> dict[str, Union[str, bytes]]:
    """The If-Match / If-None-Match headers of a conditional write."""
    h: dict[str, Union[str, bytes]] = {}
    if if_match:
        h["If-Match"] = if_match if if_match == "*" or if_match.startswith(('"', "W/")) else f'"{if_match}"'
    if if_none_match:
        h["If-None-Match"] = "*"
    return h


def _replicas_query(replicas: Optional[int]) -> list[tuple[str, str]]:
    return [("replicas", str(int(replicas)))] if replicas else []


class Artifacts:
    """Artifact calls: ``client.artifact``. Artifacts are named, versioned, content-addressed blobs with metadata."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    # -- writing ------------------------------------------------------------

    def create(
        self,
        name: str,
        data: Data,
        content_type: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        *,
        replicas: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        if_none_match: bool = False,
    ) -> Artifact:
        """Create an artifact from ``data`` (``POST /v1/artifacts``).

        Args:
            name: the artifact's name (need not be unique).
            data: bytes, text (UTF-8), a binary file object (streamed from
                its position), or an iterable of bytes (streamed).
            content_type: the content's type; default: guessed from the
                name's extension, else the node's ``application/octet-stream``.
            metadata: a JSON object stored with the artifact.
            replicas: answer only once this many members hold the content
                durably (default: the mesh policy's ``write_replicas``).
            idempotency_key: the request's ``Idempotency-Key`` (default: a
                fresh one). The node creates one artifact however often a
                request with that key is sent, to whichever node, for 24
                hours, and answers each with the first answer; the client's
                own retries reuse it.
            if_none_match: create only if the caller owns no artifact of
                this name yet (``If-None-Match: *``); else
                :class:`PreconditionFailedError` and nothing is created.

        Returns:
            The new artifact, at version 1.
        """
        body, length = _body_of(data)
        ctype = content_type or _files.guess_type(name)
        query = [("name", name)] + _replicas_query(replicas)
        return Artifact.from_json(
            self._t.json(
                "POST",
                "/v1/artifacts",
                query=query,
                body=body,
                headers={**_write_headers(ctype, metadata, length), **_conditions(if_none_match=if_none_match), **_digest(body)},
                idempotency_key=idempotency_key,
            )
        )

    def create_snippet(
        self,
        name: str,
        content: Any,
        metadata: Optional[Mapping[str, Any]] = None,
        *,
        replicas: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        if_none_match: bool = False,
    ) -> Artifact:
        """Store any JSON value as an ``application/json`` artifact (``POST /v1/snippets``).

        ``content`` is sent as compact JSON, which is what a download returns.
        """
        doc: dict[str, Any] = {"name": name, "content": content}
        if metadata is not None:
            doc["metadata"] = dict(metadata)
        return Artifact.from_json(
            self._t.json(
                "POST",
                "/v1/snippets",
                query=_replicas_query(replicas),
                json_body=doc,
                headers=_conditions(if_none_match=if_none_match),
                idempotency_key=idempotency_key,
            )
        )

    def update(
        self,
        artifact_id: str,
        data: Data,
        metadata: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        *,
        replicas: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        if_match: Optional[str] = None,
    ) -> Artifact:
        """Make ``data`` the artifact's new version (``PUT /v1/artifacts/{id}/content``).

        ``metadata`` is merged into the artifact's metadata (a ``None`` value
        removes a key) and recorded on the version; ``content_type`` absent
        keeps the artifact's type. ``if_match`` (an ETag: the CID of the
        version the change was made from, as ``Artifact.cid`` has it) makes
        the update happen only if that is still the current version, else
        :class:`PreconditionFailedError`: of two agents updating from one
        version, one wins and the other is told.

        Returns:
            The artifact as of its new version.
        """
        body, length = _body_of(data)
        return Artifact.from_json(
            self._t.json(
                "PUT",
                f"/v1/artifacts/{q(artifact_id)}/content",
                query=_replicas_query(replicas),
                body=body,
                headers={**_write_headers(content_type, metadata, length), **_conditions(if_match), **_digest(body)},
                idempotency_key=idempotency_key,
            )
        )

    def upload_file(
        self,
        path: "os.PathLike[str] | str",
        name: Optional[str] = None,
        content_type: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        progress: Optional[_files.Progress] = None,
        *,
        replicas: Optional[int] = None,
    ) -> Artifact:
        """Store a file through an upload URL, resumably, and confirm it with its SHA-256.

        The file is streamed from disk in 1 MiB pieces (never held whole in
        memory). When the connection breaks or the node fails, the node is
        asked how many bytes it holds and the upload goes on from there;
        after an exception (including one raised by ``progress``) a later
        call with the same file and arguments continues the same upload.

        Args:
            path: a regular file.
            name: the artifact's name; default: the file's base name.
            content_type: default: guessed from the name, else
                ``application/octet-stream``.
            metadata: a JSON object stored with the artifact.
            progress: ``progress(bytes_sent, bytes_total)``, called as bytes go out.
            replicas: as for :meth:`create`, applied at the confirm.

        Returns:
            The new artifact.
        """
        return _files.upload_file(self, path, name, content_type, metadata, progress, replicas)

    def get_upload_url(
        self,
        name: str,
        content_type: Optional[str] = None,
        size_bytes: int = 0,
        metadata: Optional[Mapping[str, Any]] = None,
        artifact_id: Optional[str] = None,
        *,
        expires_in: Optional[int] = None,
    ) -> Upload:
        """Open an upload session (``POST /v1/uploads``) and return its upload URL.

        A plain HTTP ``PUT`` of exactly ``size_bytes`` bytes to ``.url``,
        with no API key, sends the content (``Content-Range`` resumes, and
        ``HEAD`` on the URL tells the node's ``Upload-Offset``); then
        :meth:`confirm_upload` creates the artifact, or with ``artifact_id``
        a new version of it.

        Args:
            expires_in: seconds until the session expires (default 24 h).
        """
        doc: dict[str, Any] = {"size_bytes": int(size_bytes)}
        if name:
            doc["name"] = name
        if content_type:
            doc["content_type"] = content_type
        if metadata is not None:
            doc["metadata"] = dict(metadata)
        if artifact_id:
            doc["artifact_id"] = artifact_id
        if expires_in is not None:
            doc["expires_in"] = int(expires_in)
        return Upload.from_json(self._t.json("POST", "/v1/uploads", json_body=doc))

    def get_upload(self, upload_id: str) -> Upload:
        """The state of an upload session the caller opened (``GET /v1/uploads/{id}``); ``.url`` is None."""
        return Upload.from_json(self._t.json("GET", f"/v1/uploads/{q(upload_id)}"))

    def abort_upload(self, upload_id: str) -> None:
        """Abandon an upload session (``DELETE /v1/uploads/{id}``); its bytes are collected."""
        self._t.request("DELETE", f"/v1/uploads/{q(upload_id)}")

    def confirm_upload(self, upload_id: str, sha256: Optional[str] = None, *, replicas: Optional[int] = None) -> Artifact:
        """Turn a received upload into its artifact or version (``POST /v1/uploads/{id}/confirm``).

        With ``sha256`` (hex) the node checks the content's hash first; a
        mismatch is an :class:`InvalidArgumentError`. An upload still missing
        bytes is a :class:`ConflictError`.
        """
        doc: dict[str, Any] = {}
        if sha256:
            doc["sha256"] = sha256
        return Artifact.from_json(
            self._t.json("POST", f"/v1/uploads/{q(upload_id)}/confirm", query=_replicas_query(replicas), json_body=doc)
        )

    # -- reading ------------------------------------------------------------

    def get(self, artifact_id: str) -> Artifact:
        """The artifact (``GET /v1/artifacts/{id}``)."""
        return Artifact.from_json(self._t.json("GET", f"/v1/artifacts/{q(artifact_id)}"))

    def download(self, artifact_id: str, version: Optional[int] = None) -> bytes:
        """The content of the current version, or of ``version``, as bytes (held in memory: use download_file for large content)."""
        query = [("version", str(int(version)))] if version else []
        return self._t.request("GET", f"/v1/artifacts/{q(artifact_id)}/content", query=query).data

    def download_file(
        self,
        artifact_id: str,
        path: "os.PathLike[str] | str",
        version: Optional[int] = None,
        progress: Optional[_files.Progress] = None,
        *,
        overwrite: bool = False,
    ) -> str:
        """Write the content to ``path`` atomically, resuming with Range; returns the path.

        The folders of ``path`` are made if they do not exist. The bytes
        stream into a hidden temporary file in the same folder
        (``.<name>.<cid>.artmesh-part``); when the connection breaks the
        download continues where the file ends (``Range`` with ``If-Range``
        on the content's CID, so other content is never spliced in), and a
        later call after an exception continues it too. Once complete the
        file is fsynced and renamed to ``path``: ``path`` never holds a
        partial file.

        Args:
            progress: ``progress(bytes_done, bytes_total)``.
            overwrite: replace ``path`` if it exists; without it an existing
                file raises ``FileExistsError`` before anything is
                downloaded (as the CLI's ``get -o`` without ``--force``).
        """
        return _files.download_file(self, artifact_id, path, version, progress, overwrite)

    def list_versions(self, artifact_id: str) -> builtins.list[Version]:
        """Every version of the artifact, oldest first (``GET /v1/artifacts/{id}/versions``)."""
        doc = self._t.json("GET", f"/v1/artifacts/{q(artifact_id)}/versions")
        return [Version.from_json(x) for x in doc.get("items") or []]

    def list(
        self,
        metadata_filter: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        name: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> ArtifactList:
        """The caller's own artifacts, newest first (``GET /v1/artifacts``).

        Args:
            metadata_filter: ``{key: value}``, all of which must match: a
                string matches a string value; anything else matches a value
                whose compact JSON is the same (``{"year": 2025}``).
            content_type: exactly this stored type.
            name: exactly this name.
            limit: page size, 1 to 1000 (the node's default: 50).
            offset: how many matches to skip; it costs what it skips, so
                prefer ``cursor``. Not with ``cursor``.
            cursor: the ``next_cursor`` of the previous page: this page
                starts after that page's last artifact.

        Returns:
            A list of artifacts with ``.next_cursor`` (``None`` on the last
            page) and ``.total``, which counts the matches over all pages
            only when there is no filter (else ``None``).
        """
        query = _list_query(metadata_filter, content_type, name, limit, offset, cursor)
        return ArtifactList.from_json(self._t.json("GET", "/v1/artifacts", query=query))

    def list_shared(
        self,
        metadata_filter: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        name: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> ArtifactList:
        """Artifacts others shared with the caller, directly or through a group (``GET /v1/shared``); same filters and paging as :meth:`list`, and no ``.total``."""
        query = _list_query(metadata_filter, content_type, name, limit, offset, cursor)
        return ArtifactList.from_json(self._t.json("GET", "/v1/shared", query=query))

    def iter_all(
        self,
        metadata_filter: Optional[Mapping[str, Any]] = None,
        content_type: Optional[str] = None,
        name: Optional[str] = None,
        *,
        shared: bool = False,
        page_size: int = 200,
    ) -> Iterator[Artifact]:
        """Every matching artifact, page after page (the caller's own, or with ``shared`` those shared with it).

        It follows each page's ``next_cursor``, so none appears twice and
        none is skipped when others are deleted meanwhile; artifacts
        created while the pages are read do not appear (they are newer
        than the listing's position).
        """
        fetch = self.list_shared if shared else self.list
        cursor: Optional[str] = None
        while True:
            page = fetch(metadata_filter, content_type, name, page_size, None, cursor)
            yield from page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- sharing and signed URLs --------------------------------------------

    def share(
        self,
        artifact_id: str,
        with_agents: Union[None, str, Iterable[str]] = None,
        with_groups: Union[None, str, Iterable[str]] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Access:
        """Let agents, and members of groups, read the artifact (owner only); returns who may now."""
        doc: dict[str, Any] = {}
        if (a := _names(with_agents)) is not None:
            doc["agents"] = a
        if (g := _names(with_groups)) is not None:
            doc["groups"] = g
        return Access.from_json(self._t.json("POST", f"/v1/artifacts/{q(artifact_id)}/share", json_body=doc, idempotency_key=idempotency_key))

    def unshare(
        self,
        artifact_id: str,
        agents: Union[None, str, Iterable[str]] = None,
        groups: Union[None, str, Iterable[str]] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Access:
        """Take back access; signed URLs granted through it stop working. Returns who may still read it."""
        doc: dict[str, Any] = {}
        if (a := _names(agents)) is not None:
            doc["agents"] = a
        if (g := _names(groups)) is not None:
            doc["groups"] = g
        return Access.from_json(self._t.json("POST", f"/v1/artifacts/{q(artifact_id)}/unshare", json_body=doc, idempotency_key=idempotency_key))

    def get_access(self, artifact_id: str) -> Access:
        """The artifact's owner and the agents and groups it is shared with (``GET /v1/artifacts/{id}/access``)."""
        return Access.from_json(self._t.json("GET", f"/v1/artifacts/{q(artifact_id)}/access"))

    def create_signed_url(self, artifact_id: str, expires_in: int = 3600, version: Optional[int] = None) -> SignedURL:
        """A capability URL for the content, with its token id (for :meth:`revoke_signed_url`) and expiry.

        ``version`` absent: whichever version is current when the URL is used.
        """
        doc: dict[str, Any] = {"expires_in": int(expires_in)}
        if version:
            doc["version"] = int(version)
        return SignedURL.from_json(self._t.json("POST", f"/v1/artifacts/{q(artifact_id)}/signed-url", json_body=doc))

    def get_signed_url(self, artifact_id: str, expires_in: int = 3600, version: Optional[int] = None) -> str:
        """A URL that serves the content with no other authentication, on any node of the mesh, for ``expires_in`` seconds (at most 7 days)."""
        return self.create_signed_url(artifact_id, expires_in, version).url

    def revoke_signed_url(self, token_id: str) -> None:
        """Make a signed URL stop working (``DELETE /v1/tokens/{token_id}``)."""
        self._t.request("DELETE", f"/v1/tokens/{q(token_id)}")

    def download_signed_url(self, url: str) -> bytes:
        """Fetch a signed URL's content (no API key is sent), as bytes."""
        return self._t.request("GET", url=url, auth=False).data

    # -- deleting -----------------------------------------------------------

    def delete(self, artifact_id: str, *, idempotency_key: Optional[str] = None, if_match: Optional[str] = None) -> None:
        """Delete the artifact, its versions, grants and outstanding signed URLs.

        Sent again with its key (as the client's retries do), a delete that
        took effect answers as it did, not with a :class:`NotFoundError`.
        """
        self._t.request("DELETE", f"/v1/artifacts/{q(artifact_id)}", headers=_conditions(if_match), idempotency_key=idempotency_key)

    def delete_version(
        self, artifact_id: str, version: int, *, idempotency_key: Optional[str] = None, if_match: Optional[str] = None
    ) -> None:
        """Delete one version; deleting the only one left is a :class:`ConflictError`."""
        self._t.request(
            "DELETE", f"/v1/artifacts/{q(artifact_id)}/versions/{int(version)}", headers=_conditions(if_match), idempotency_key=idempotency_key
        )

    # -- the change feed ------------------------------------------------------

    def watch(
        self,
        artifact_id: Optional[str] = None,
        name: Optional[str] = None,
        shared_with_me: bool = False,
        last_event_id: Optional[str] = None,
    ) -> EventStream:
        """The changes to artifacts the caller may read, as they happen (``GET /v1/events``).

        ``for ev in client.artifact.watch(): ...`` blocks for each next
        :class:`Event` and runs until ``close()`` (or the end of a ``with``
        block, or ``break``). Filters: one ``artifact_id``, one exact
        ``name``, or only artifacts others own (``shared_with_me``). It
        starts at the present, or after ``last_event_id`` (``"0"``: every
        event the node still holds); when the connection breaks or the node
        restarts it goes on after the last event it gave, so no event is
        lost or repeated. A ``reset`` event says that events were missed.
        """
        query: list[tuple[str, str]] = []
        if artifact_id:
            query.append(("artifact_id", artifact_id))
        if name:
            query.append(("name", name))
        if shared_with_me:
            query.append(("shared_with_me", "true"))
        return EventStream(self._t, query, last_event_id)

    # -- replication and placement -------------------------------------------

    def set_replication(self, artifact_id: str, factor: int) -> int:
        """How many members keep every version of the artifact (owner only); 0 follows the mesh policy. Returns the factor set."""
        doc = self._t.json("PUT", f"/v1/artifacts/{q(artifact_id)}/replication", json_body={"factor": int(factor)})
        return int(doc.get("factor", factor)) if isinstance(doc, dict) else int(factor)

    def get_placement(self, artifact_id: str) -> builtins.list[VersionPlacement]:
        """Where each version is held and whether it has its copies, oldest version first."""
        doc = self._t.json("GET", f"/v1/artifacts/{q(artifact_id)}/placement")
        return [VersionPlacement.from_json(x) for x in doc.get("items") or []]


class Agents:
    """Agent administration (admin agents only): ``client.agents``, like ``artmesh agent``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, agent_id: str, groups: Optional[Iterable[str]] = None, admin: bool = False) -> AgentKey:
        """Add an agent and return it with its API key, which the node shows only this once.

        Groups that do not exist yet are created.
        """
        doc = {"id": agent_id, "groups": _names(groups) or [], "admin": bool(admin)}
        return AgentKey.from_json(self._t.json("POST", "/v1/agents", json_body=doc))

    def list(self) -> builtins.list[Agent]:
        """Every agent, by id."""
        return [Agent.from_json(x) for x in self._t.json("GET", "/v1/agents").get("items") or []]

    def delete(self, agent_id: str) -> None:
        """Remove an agent; its keys stop working."""
        self._t.request("DELETE", f"/v1/agents/{q(agent_id)}")

    def rotate(self, agent_id: str) -> AgentKey:
        """Give an agent a new API key (the old one stops working) and return it, shown only this once."""
        return AgentKey.from_json(self._t.json("POST", f"/v1/agents/{q(agent_id)}/keys"))

    def quota(self, agent_id: str) -> QuotaStatus:
        """An agent's usage and limits; any agent may read its own."""
        return QuotaStatus.from_json(self._t.json("GET", f"/v1/agents/{q(agent_id)}/quota"))

    def set_quota(
        self,
        agent_id: str,
        *,
        max_bytes: Optional[int] = None,
        max_staged: Optional[int] = None,
        max_uploads: Optional[int] = None,
        max_streams: Optional[int] = None,
    ) -> QuotaStatus:
        """Set an agent's own limits; None keeps one, 0 follows the mesh default, -1 is unlimited."""
        doc = _quota_doc(max_bytes, max_staged, max_uploads, max_streams)
        return QuotaStatus.from_json(self._t.json("PUT", f"/v1/agents/{q(agent_id)}/quota", json_body=doc))


def _quota_doc(max_bytes: Optional[int], max_staged: Optional[int], max_uploads: Optional[int], max_streams: Optional[int]) -> dict[str, int]:
    """The body of a quota change: the limits given."""
    doc: dict[str, int] = {}
    for k, v in (("bytes", max_bytes), ("staged", max_staged), ("uploads", max_uploads), ("streams", max_streams)):
        if v is not None:
            doc[k] = int(v)
    return doc


class Groups:
    """Group administration (admin agents only): ``client.groups``, like ``artmesh group``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, name: str, members: Optional[Iterable[str]] = None) -> Group:
        """Create a group with these members (or set them, when it exists)."""
        return self.set_members(name, members or [])

    def set_members(self, name: str, members: Iterable[str]) -> Group:
        """Make ``members`` the group's complete member list (``PUT /v1/groups/{name}``)."""
        return Group.from_json(self._t.json("PUT", f"/v1/groups/{q(name)}", json_body={"members": _names(members) or []}))

    def list(self) -> builtins.list[Group]:
        """Every group, by name."""
        return [Group.from_json(x) for x in self._t.json("GET", "/v1/groups").get("items") or []]

    def delete(self, name: str) -> None:
        """Remove a group; what was shared with it is no longer shared through it."""
        self._t.request("DELETE", f"/v1/groups/{q(name)}")


class Mesh:
    """The mesh: ``client.mesh``, like ``artmesh mesh``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def members(self) -> builtins.list[Member]:
        """The mesh's members as the called node sees them."""
        return [Member.from_json(x) for x in self._t.json("GET", "/v1/mesh/members").get("items") or []]

    def invite(self, expires_in: int = 3600) -> Invite:
        """A one-time ticket for ``artmesh init --join TICKET`` on a new node (admin only)."""
        return Invite.from_json(self._t.json("POST", "/v1/mesh/invites", json_body={"expires_in": int(expires_in)}))

    def remove(self, peer_id: str) -> None:
        """Take a node out of the mesh (admin only)."""
        self._t.request("DELETE", f"/v1/mesh/members/{q(peer_id)}")

    def policy(self) -> Policy:
        """The mesh's replication policy."""
        return Policy.from_json(self._t.json("GET", "/v1/mesh/policy"))

    def set_policy(self, replication_factor: Optional[int] = None, write_replicas: Optional[int] = None) -> Policy:
        """Change the replication policy (admin only); a None keeps the current value. Returns the policy as it now is."""
        doc: dict[str, Any] = {}
        if replication_factor is not None:
            doc["replication_factor"] = int(replication_factor)
        if write_replicas is not None:
            doc["write_replicas"] = int(write_replicas)
        return Policy.from_json(self._t.json("PUT", "/v1/mesh/policy", json_body=doc))

    def quota(self) -> Quota:
        """The default limits of agents that are not admins (0: no limit)."""
        return Quota.from_json(self._t.json("GET", "/v1/mesh/quota"))

    def set_quota(
        self,
        *,
        max_bytes: Optional[int] = None,
        max_staged: Optional[int] = None,
        max_uploads: Optional[int] = None,
        max_streams: Optional[int] = None,
    ) -> Quota:
        """Change the default limits (admin only); None keeps one, 0 removes it. Returns them as they now are."""
        doc = _quota_doc(max_bytes, max_staged, max_uploads, max_streams)
        return Quota.from_json(self._t.json("PUT", "/v1/mesh/quota", json_body=doc))


class Pins:
    """Which versions the called node keeps a full copy of: ``client.pins``, like ``artmesh pin``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def add(self, artifact_id: str, version: Optional[int] = None) -> Pin:
        """Make this node fetch and keep the version (default: the current one); the fetch goes on in the background."""
        query = [("version", str(int(version)))] if version else []
        return Pin.from_json(self._t.json("PUT", f"/v1/pins/{q(artifact_id)}", query=query))

    def list(self) -> builtins.list[Pin]:
        """This node's pins, with their states."""
        return [Pin.from_json(x) for x in self._t.json("GET", "/v1/pins").get("items") or []]

    def remove(self, artifact_id: str, version: Optional[int] = None) -> None:
        """Stop keeping the version here (default: every pinned version of it)."""
        query = [("version", str(int(version)))] if version else []
        self._t.request("DELETE", f"/v1/pins/{q(artifact_id)}", query=query)


class Repo:
    """The called node's block store (admin only): ``client.repo``, like ``artmesh repo``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def stat(self) -> RepoStat:
        """How large the block store is."""
        return RepoStat.from_json(self._t.json("GET", "/v1/repo/stat"))

    def gc(self) -> GCResult:
        """Remove the blocks nothing references any more."""
        return GCResult.from_json(self._t.json("POST", "/v1/repo/gc"))


class Client:
    """A synchronous client of an artmesh node's HTTP API, as one agent.

    Args:
        api_key: the agent's API key; default ``$ARTMESH_API_KEY``, else the
            local node's ``<repo>/api.key`` (repo: ``$ARTMESH_PATH`` or ``~/.artmesh``).
        base_url: the node's API URL; default ``$ARTMESH_API``, else the
            address the repo's running daemon wrote (``api.addr``), else its
            ``config.json``, else ``http://127.0.0.1:7480``.
        timeout: seconds to wait on connect and on each read (None: forever).
        max_retries: how many times a call is sent again after a 503 (after
            the wait its ``Retry-After`` asks for) and, for a write, which
            always carries an ``Idempotency-Key``, after ``outcome_unknown``
            or a lost connection too.
        consistent_reads: make every read linearizable (``?consistent=true``):
            a read on any node then sees every write acknowledged anywhere in
            the mesh, at the cost of a round trip to the catalog's leader.

    Connections are kept and reused; the client is safe to share between
    threads. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        *,
        max_retries: int = DEFAULT_RETRIES,
        consistent_reads: bool = False,
        user_agent: Optional[str] = None,
    ) -> None:
        url = find_base_url(base_url)
        key, source = find_api_key(api_key)
        self._t = Transport(url, key, source, timeout, max_retries, consistent_reads, user_agent)
        #: Artifact calls.
        self.artifact = Artifacts(self._t)
        #: Agent administration.
        self.agents = Agents(self._t)
        #: Group administration.
        self.groups = Groups(self._t)
        #: Mesh members, invites and replication policy.
        self.mesh = Mesh(self._t)
        #: This node's pins.
        self.pins = Pins(self._t)
        #: This node's block store.
        self.repo = Repo(self._t)

    @property
    def base_url(self) -> str:
        """The node's API URL this client calls."""
        return self._t.base_url

    def node(self) -> NodeInfo:
        """The called node: peer id, mesh addresses, version, API URL (``GET /v1/node``)."""
        return NodeInfo.from_json(self._t.json("GET", "/v1/node"))

    def ready(self) -> bool:
        """Whether the node is ready to serve (``GET /readyz``); False when it answers 503."""
        return self._t.request("GET", "/readyz", auth=False, retry_503=False, ok=(503,)).status == 200

    def openapi(self) -> dict[str, Any]:
        """The node's OpenAPI description (``GET /v1/openapi.json``)."""
        doc = self._t.json("GET", "/v1/openapi.json", auth=False)
        if not isinstance(doc, dict):
            raise ArtmeshError("the OpenAPI document is not a JSON object", 200, "bad_answer")
        return doc

    def close(self) -> None:
        """Close the kept connections."""
        self._t.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"artmesh.Client(base_url={self.base_url!r})"


__all__ = ["Client", "Artifacts", "Agents", "Groups", "Mesh", "Pins", "Repo", "Data", "DEFAULT_TIMEOUT", "DEFAULT_RETRIES"]
