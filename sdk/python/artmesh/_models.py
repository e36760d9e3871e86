"""The API's objects as typed, immutable Python values.

Each has a ``from_json`` that reads the node's JSON (API.md and
/v1/openapi.json); fields the SDK does not know are ignored, so a newer node
does not break an older SDK. Times are aware :class:`datetime.datetime`
values in UTC.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
import json
from typing import Any, Iterable, Mapping, Optional

from ._times import parse_time, require_time

__all__ = [
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
]

JSONDict = Mapping[str, Any]


def _strs(v: Any) -> builtins.list[str]:
    return [str(x) for x in v] if isinstance(v, builtins.list) else []


@dataclass(frozen=True)
class Artifact:
    """An artifact as of its current (highest) version.

    ``version``, ``cid``, ``size_bytes``, ``content_type`` and ``sha256``
    are those of the current version; ``metadata`` is the artifact's merged
    metadata. ``sha256`` (hex) is set when the version was written with a
    declared digest or through an upload URL, else ``None``.
    """

    id: str
    name: str
    owner: str
    content_type: str
    size_bytes: int
    cid: str
    version: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    sha256: Optional[str] = None

    @classmethod
    def from_json(cls, d: JSONDict) -> "Artifact":
        """Read an artifact object."""
        return cls(
            id=str(d["id"]),
            name=str(d.get("name", "")),
            owner=str(d.get("owner", "")),
            content_type=str(d.get("content_type", "")),
            size_bytes=int(d.get("size_bytes", 0)),
            cid=str(d.get("cid", "")),
            version=int(d.get("version", 0)),
            metadata=dict(d.get("metadata") or {}),
            created_at=require_time(d.get("created_at")),
            updated_at=require_time(d.get("updated_at")),
            sha256=d.get("sha256") or None,
        )


class ArtifactList(builtins.list):  # type: ignore[type-arg]
    """A page of artifacts: a list that also carries the page's ``total``, ``limit``, ``offset`` and ``next_cursor``.

    ``next_cursor`` continues the listing after this page (pass it as
    ``cursor=``); it is ``None`` on the last page. ``total`` is how many
    artifacts match over all pages, but only for the unfiltered listing of
    one's own artifacts, where it is cheap; elsewhere it is ``None``.
    """

    total: Optional[int]
    limit: int
    offset: int
    next_cursor: Optional[str]

    def __init__(
        self,
        items: Iterable[Artifact] = (),
        total: Optional[int] = None,
        limit: int = 0,
        offset: int = 0,
        next_cursor: Optional[str] = None,
    ) -> None:
        super().__init__(items)
        self.total = total
        self.limit = limit
        self.offset = offset
        self.next_cursor = next_cursor

    @classmethod
    def from_json(cls, d: JSONDict) -> "ArtifactList":
        """Read a page (``{"items", "total"?, "limit", "offset", "next_cursor"?}``)."""
        items = [Artifact.from_json(x) for x in d.get("items") or []]
        total = d.get("total")
        return cls(
            items,
            None if total is None else int(total),
            int(d.get("limit", 0)),
            int(d.get("offset", 0)),
            d.get("next_cursor") or None,
        )

    def __repr__(self) -> str:
        return (
            f"ArtifactList({builtins.list.__repr__(self)}, total={self.total}, limit={self.limit}, "
            f"offset={self.offset}, next_cursor={self.next_cursor!r})"
        )


@dataclass(frozen=True)
class Version:
    """One version of an artifact. ``metadata`` is the artifact's full metadata as of this version."""

    version: int
    cid: str
    size_bytes: int
    content_type: str
    metadata: dict[str, Any]
    created_at: datetime
    created_by: str
    parent: Optional[int] = None
    sha256: Optional[str] = None

    @classmethod
    def from_json(cls, d: JSONDict) -> "Version":
        """Read a version object."""
        parent = d.get("parent")
        return cls(
            version=int(d["version"]),
            cid=str(d.get("cid", "")),
            size_bytes=int(d.get("size_bytes", 0)),
            content_type=str(d.get("content_type", "")),
            metadata=dict(d.get("metadata") or {}),
            created_at=require_time(d.get("created_at")),
            created_by=str(d.get("created_by", "")),
            parent=int(parent) if parent is not None else None,
            sha256=d.get("sha256") or None,
        )


@dataclass(frozen=True)
class Access:
    """Who may read an artifact besides its owner: agents, and members of groups."""

    owner: str
    agents: builtins.list[str]
    groups: builtins.list[str]

    @classmethod
    def from_json(cls, d: JSONDict) -> "Access":
        """Read an access object."""
        return cls(owner=str(d.get("owner", "")), agents=_strs(d.get("agents")), groups=_strs(d.get("groups")))


@dataclass(frozen=True)
class Upload:
    """An upload session (an upload URL).

    ``url`` (and ``token``) are only known from :meth:`Artifacts.get_upload_url`;
    a session read back later has them as ``None``. A plain HTTP ``PUT`` of
    exactly ``size_bytes`` bytes to ``url``, with no API key, sends the
    content; :meth:`Artifacts.confirm_upload` then turns it into an artifact.
    """

    id: str
    url: Optional[str]
    expires_at: datetime
    token: Optional[str] = None
    name: str = ""
    content_type: str = ""
    size_bytes: int = 0
    received_bytes: int = 0
    state: str = "open"
    artifact_id: Optional[str] = None
    cid: Optional[str] = None

    @classmethod
    def from_json(cls, d: JSONDict) -> "Upload":
        """Read an upload session."""
        return cls(
            id=str(d["id"]),
            url=d.get("url") or None,
            expires_at=require_time(d.get("expires_at")),
            token=d.get("token") or None,
            name=str(d.get("name", "")),
            content_type=str(d.get("content_type", "")),
            size_bytes=int(d.get("size_bytes", 0)),
            received_bytes=int(d.get("received_bytes", 0)),
            state=str(d.get("state", "")),
            artifact_id=d.get("artifact_id") or None,
            cid=d.get("cid") or None,
        )


@dataclass(frozen=True)
class SignedURL:
    """A capability URL: the content with no other authentication, on any node, until ``expires_at``."""

    url: str
    token: str
    token_id: str
    expires_at: datetime

    @classmethod
    def from_json(cls, d: JSONDict) -> "SignedURL":
        """Read a signed URL answer."""
        return cls(
            url=str(d["url"]),
            token=str(d.get("token", "")),
            token_id=str(d.get("token_id", "")),
            expires_at=require_time(d.get("expires_at")),
        )


@dataclass(frozen=True)
class Agent:
    """An agent: an identity with an API key, member of groups, maybe an admin."""

    id: str
    groups: builtins.list[str]
    admin: bool
    created_at: Optional[datetime]

    @classmethod
    def from_json(cls, d: JSONDict) -> "Agent":
        """Read an agent object."""
        return cls(
            id=str(d["id"]),
            groups=_strs(d.get("groups")),
            admin=bool(d.get("admin", False)),
            created_at=parse_time(d.get("created_at")),
        )


@dataclass(frozen=True)
class AgentKey(Agent):
    """An agent with its API key, which the node shows only this once (at create and rotate)."""

    api_key: str = field(default="", repr=False)

    @classmethod
    def from_json(cls, d: JSONDict) -> "AgentKey":
        """Read an agent-with-key object."""
        a = Agent.from_json(d)
        return cls(id=a.id, groups=a.groups, admin=a.admin, created_at=a.created_at, api_key=str(d.get("api_key", "")))


@dataclass(frozen=True)
class Group:
    """A group of agents, by name; members sorted."""

    name: str
    members: builtins.list[str]

    @classmethod
    def from_json(cls, d: JSONDict) -> "Group":
        """Read a group object."""
        return cls(name=str(d["name"]), members=_strs(d.get("members")))


@dataclass(frozen=True)
class Member:
    """A member node of the mesh, as the called node sees it."""

    peer_id: str
    addresses: builtins.list[str]
    api_url: str
    role: str
    reachable: bool
    leader: bool
    bytes_held: int = 0
    under_replicated: int = 0

    @classmethod
    def from_json(cls, d: JSONDict) -> "Member":
        """Read a member object."""
        return cls(
            peer_id=str(d["peer_id"]),
            addresses=_strs(d.get("addresses")),
            api_url=str(d.get("api_url", "")),
            role=str(d.get("role", "")),
            reachable=bool(d.get("reachable", False)),
            leader=bool(d.get("leader", False)),
            bytes_held=int(d.get("bytes_held", 0)),
            under_replicated=int(d.get("under_replicated", 0)),
        )


@dataclass(frozen=True)
class Invite:
    """A one-time ticket for ``artmesh init --join TICKET`` on a new node."""

    ticket: str
    expires_at: datetime

    @classmethod
    def from_json(cls, d: JSONDict) -> "Invite":
        """Read an invite."""
        return cls(ticket=str(d["ticket"]), expires_at=require_time(d.get("expires_at")))


@dataclass(frozen=True)
class NodeInfo:
    """The called node: its peer id, mesh addresses, software version and API URL."""

    peer_id: str
    addresses: builtins.list[str]
    version: str
    api_url: str
    started_at: Optional[datetime]
    #: The agent whose key asked ("" from a node that does not say).
    agent: str = ""

    @classmethod
    def from_json(cls, d: JSONDict) -> "NodeInfo":
        """Read a node object."""
        return cls(
            peer_id=str(d["peer_id"]),
            addresses=_strs(d.get("addresses")),
            version=str(d.get("version", "")),
            api_url=str(d.get("api_url", "")),
            started_at=parse_time(d.get("started_at")),
            agent=str(d.get("agent", "")),
        )


@dataclass(frozen=True)
class Policy:
    """The mesh's replication policy."""

    replication_factor: int
    write_replicas: int

    @classmethod
    def from_json(cls, d: JSONDict) -> "Policy":
        """Read a policy."""
        return cls(replication_factor=int(d["replication_factor"]), write_replicas=int(d["write_replicas"]))


@dataclass(frozen=True)
class Quota:
    """Limits on what one agent holds.

    In an agent's own quota 0 follows the mesh default and -1 is unlimited;
    in the mesh defaults 0 is no limit; in ``QuotaStatus.limits`` every
    value is -1 (unlimited) or positive. ``bytes`` bounds stored plus staged
    bytes, ``staged`` the declared sizes of open uploads, ``uploads`` their
    number, ``streams`` the event streams held open on one node.
    """

    bytes: int = 0
    staged: int = 0
    uploads: int = 0
    streams: int = 0

    @classmethod
    def from_json(cls, d: JSONDict) -> "Quota":
        """Read a quota (absent limits are 0)."""
        return cls(**{k: int(d.get(k) or 0) for k in ("bytes", "staged", "uploads", "streams")})


@dataclass(frozen=True)
class Usage:
    """What one agent holds, as quotas count it (``streams``: on the node that answered)."""

    bytes: int = 0
    staged: int = 0
    uploads: int = 0
    streams: int = 0

    @classmethod
    def from_json(cls, d: JSONDict) -> "Usage":
        """Read a usage object."""
        return cls(**{k: int(d.get(k) or 0) for k in ("bytes", "staged", "uploads", "streams")})


@dataclass(frozen=True)
class QuotaStatus:
    """An agent's usage, the limits that apply to it, its own quota and the mesh defaults."""

    agent: str
    admin: bool
    usage: Usage
    limits: Quota
    override: Quota
    defaults: Quota

    @classmethod
    def from_json(cls, d: JSONDict) -> "QuotaStatus":
        """Read a quota status."""
        return cls(
            agent=str(d["agent"]),
            admin=bool(d.get("admin")),
            usage=Usage.from_json(d.get("usage") or {}),
            limits=Quota.from_json(d.get("limits") or {}),
            override=Quota.from_json(d.get("override") or {}),
            defaults=Quota.from_json(d.get("defaults") or {}),
        )


@dataclass(frozen=True)
class Pin:
    """A version this node keeps a full copy of; ``state`` is queued, fetching, pinned or failed."""

    artifact_id: str
    version: int
    cid: str
    state: str
    bytes_done: int
    size_bytes: int
    error: str = ""

    @classmethod
    def from_json(cls, d: JSONDict) -> "Pin":
        """Read a pin object."""
        return cls(
            artifact_id=str(d["artifact_id"]),
            version=int(d.get("version", 0)),
            cid=str(d.get("cid", "")),
            state=str(d.get("state", "")),
            bytes_done=int(d.get("bytes_done", 0)),
            size_bytes=int(d.get("size_bytes", 0)),
            error=str(d.get("error", "")),
        )


@dataclass(frozen=True)
class VersionPlacement:
    """Where one version of an artifact is held; ``state`` is ok, under_replicated or repairing."""

    version: int
    cid: str
    factor: int
    holders: builtins.list[str]
    allocated: builtins.list[str]
    state: str
    #: members fetching it now, which serve what they have verified (partial holders)
    fetching: builtins.list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: JSONDict) -> "VersionPlacement":
        """Read a version placement."""
        return cls(
            version=int(d["version"]),
            cid=str(d.get("cid", "")),
            factor=int(d.get("factor", 0)),
            holders=_strs(d.get("holders")),
            allocated=_strs(d.get("allocated")),
            state=str(d.get("state", "")),
            fetching=_strs(d.get("fetching")),
        )


@dataclass(frozen=True)
class RepoStat:
    """The size of the node's block store."""

    blocks: int
    bytes: int
    packs: int
    pack_bytes: int
    path: str

    @classmethod
    def from_json(cls, d: JSONDict) -> "RepoStat":
        """Read a repo stat."""
        return cls(
            blocks=int(d.get("blocks", 0)),
            bytes=int(d.get("bytes", 0)),
            packs=int(d.get("packs", 0)),
            pack_bytes=int(d.get("pack_bytes", 0)),
            path=str(d.get("path", "")),
        )


@dataclass(frozen=True)
class GCResult:
    """What a garbage collection of the block store removed."""

    blocks_removed: int
    bytes_removed: int
    packs_removed: int
    disk_bytes_freed: int
    duration_ms: int

    @classmethod
    def from_json(cls, d: JSONDict) -> "GCResult":
        """Read a GC result."""
        return cls(
            blocks_removed=int(d.get("blocks_removed", 0)),
            bytes_removed=int(d.get("bytes_removed", 0)),
            packs_removed=int(d.get("packs_removed", 0)),
            disk_bytes_freed=int(d.get("disk_bytes_freed", 0)),
            duration_ms=int(d.get("duration_ms", 0)),
        )


@dataclass(frozen=True)
class Event:
    """One event of the change feed (``client.artifact.watch``).

    ``type`` is ``artifact.created``, ``artifact.updated`` (a new version),
    ``artifact.deleted``, ``version.deleted``, ``artifact.shared``,
    ``artifact.unshared``, or ``reset``: changes may have been missed (the
    node no longer holds the events after the id the watch went on from);
    ``message`` says why, and the reader should list what it cares about
    again. ``id`` is the catalog index of the change: pass it as
    ``last_event_id`` to go on after it, on any node. ``agents`` and
    ``groups`` are what a share added or an unshare took away (shown to the
    owner only).
    """

    id: str
    type: str
    artifact_id: str = ""
    name: str = ""
    owner: str = ""
    version: int = 0
    actor: str = ""
    at: Optional[datetime] = None
    agents: builtins.list[str] = field(default_factory=list)
    groups: builtins.list[str] = field(default_factory=list)
    message: str = ""

    @property
    def is_reset(self) -> bool:
        """Whether this is a ``reset``: events may have been missed."""
        return self.type == "reset"

    @classmethod
    def from_sse(cls, name: str, event_id: str, data: str) -> "Event":
        """Read one Server-Sent Event of ``GET /v1/events``."""
        d = json.loads(data) if data else {}
        if name == "reset":
            return cls(id=event_id or str(d.get("id", "")), type="reset", message=str(d.get("message", "")))
        return cls(
            id=event_id or str(d.get("id", "")),
            type=str(d.get("type", name)),
            artifact_id=str(d.get("artifact_id", "")),
            name=str(d.get("name", "")),
            owner=str(d.get("owner", "")),
            version=int(d.get("version") or 0),
            actor=str(d.get("actor", "")),
            at=parse_time(d.get("at")),
            agents=_strs(d.get("agents")),
            groups=_strs(d.get("groups")),
        )
