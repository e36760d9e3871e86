"""HTTP/1.1 to the node with http.client: a connection pool, retries, errors.

Connections are kept per origin (scheme, host, port) in a pool that any
thread may take from, so a sync client used from several threads and an
async client (whose calls run in worker threads) both reuse them. An idle
connection that the node has closed is noticed before it is used again.

Every write to the API (POST, PUT, PATCH, DELETE) carries an
``Idempotency-Key``: the caller's, or a fresh random one. The node applies
a keyed write at most once, however often it is sent, and answers a
retry with the first answer. So a write is sent again, a bounded number
of times, after a 503 ``unavailable`` or ``outcome_unknown``, a broken
connection, a refused connection or a timeout, with the same key, when
its body can be sent again; the wait is what ``Retry-After`` asks for,
else an exponential backoff. A read is sent again after a 503
``unavailable``, and once after a reused connection turned out closed.
A write without a key (a URL the node handed out) is never sent again
after it may have reached the node.
"""

from __future__ import annotations

import http.client
import json
import random
import select
import socket
import threading
import time
import uuid
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union
from urllib.parse import quote, urlencode, urlsplit

from ._version import __version__
from ._errors import (
    ArtmeshConnectionError,
    ArtmeshError,
    ArtmeshTimeoutError,
    UnauthenticatedError,
    UnavailableError,
    OutcomeUnknownError,
    error_from_response,
)

#: Bytes read or written at a time when streaming content.
CHUNK = 1 << 20

#: How many idle connections are kept per origin.
MAX_IDLE = 8

#: The longest single wait between retries, whatever Retry-After says.
MAX_RETRY_WAIT = 30.0

Body = Union[None, bytes, bytearray, memoryview, Callable[[], Iterable[bytes]]]
Query = Sequence[tuple[str, str]]

# The methods a request may be sent again for after a connection broke.
_IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS"))

# The methods that write, and carry an Idempotency-Key.
_WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))

#: The header that carries a write's idempotency key.
IDEMPOTENCY_KEY = "Idempotency-Key"


def new_idempotency_key() -> str:
    """A fresh random idempotency key."""
    return uuid.uuid4().hex

# Errors that mean "the connection is gone", as opposed to a refused one.
_BROKEN = (
    http.client.RemoteDisconnected,
    http.client.IncompleteRead,
    http.client.BadStatusLine,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


def q(segment: Union[str, int]) -> str:
    """Escape one path segment."""
    return quote(str(segment), safe="")


def retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Origin:
    """Where a connection goes: scheme, host and port of a URL."""

    __slots__ = ("scheme", "host", "port")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port

    @classmethod
    def of(cls, url: str) -> "Origin":
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        port = u.port or (443 if u.scheme == "https" else 80)
        return cls(u.scheme, u.hostname, port)

    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Pool:
    """Idle HTTP connections per origin, shared by threads."""

    #: The class of new plain-http connections (tests put one that breaks in its place).
    connection_class: type[http.client.HTTPConnection] = http.client.HTTPConnection

    def __init__(self, timeout: Optional[float]) -> None:
        self._timeout = timeout
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, origin: Origin) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to origin and whether it was used before."""
        with self._lock:
            idle = self._idle.get(origin.key(), [])
            while idle:
                conn = idle.pop()
                if _alive(conn):
                    return conn, True
                conn.close()
        if origin.scheme == "https":
            return http.client.HTTPSConnection(origin.host, origin.port, timeout=self._timeout), False
        return self.connection_class(origin.host, origin.port, timeout=self._timeout), False

    def put(self, origin: Origin, conn: http.client.HTTPConnection) -> None:
        """Give back a connection whose last answer was read to the end."""
        if conn.sock is None:
            return
        with self._lock:
            idle = self._idle.setdefault(origin.key(), [])
            if self._closed or len(idle) >= MAX_IDLE:
                conn.close()
                return
            idle.append(conn)

    def close(self) -> None:
        """Close every idle connection; connections in use close when given back."""
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()


def _alive(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection is still open: it has nothing to read (no EOF)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class Response:
    """An answer whose body has not been read yet (a stream), or has (``data``)."""

    def __init__(self, transport: "Transport", origin: Origin, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._t = transport
        self._origin = origin
        self._conn: Optional[http.client.HTTPConnection] = conn
        self._resp = resp
        self.status: int = resp.status
        self.headers: http.client.HTTPMessage = resp.headers
        #: The whole body, for an answer that was not streamed.
        self.data: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """A response header, or None."""
        return self.headers.get(name)

    def readinto(self, buf: Union[bytearray, memoryview]) -> int:
        """Read body bytes into buf; 0 at the end. A broken stream raises an OSError or http.client error."""
        return self._resp.readinto(buf)

    def read(self) -> bytes:
        """The rest of the body."""
        return self._resp.read()

    def close(self) -> None:
        """Release the connection: back to the pool when the body was read to the end, else closed."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._resp.isclosed() and not self._resp.will_close:
            self._t.pool.put(self._origin, conn)
        else:
            self._resp.close()
            conn.close()

    def readline(self, limit: int = -1) -> bytes:
        """One line of the body, with its end of line; b"" at the end."""
        return self._resp.readline(limit)

    def interrupt(self) -> None:
        """Wake a read blocked on this answer in another thread (it then fails or ends); the reader closes it."""
        conn = self._conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def abandon(self) -> None:
        """Close the connection whatever state the body is in."""
        conn, self._conn = self._conn, None
        self._resp.close()
        if conn is not None:
            conn.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport:
    """Sends API requests for one client: base URL, key, timeout, retries."""

    def __init__(
        self,
        base_url: str,
        api_key: Optional[str],
        key_source: str,
        timeout: Optional[float],
        max_retries: int,
        consistent_reads: bool,
        user_agent: Optional[str],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.base_origin = Origin.of(self.base_url)
        self.base_path = urlsplit(self.base_url).path.rstrip("/")
        self.api_key = api_key
        self.key_source = key_source
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.consistent_reads = consistent_reads
        self.user_agent = user_agent or f"artmesh-python/{__version__}"
        self.pool = Pool(timeout)
        #: Called with (method, path) before each request is sent (tests record calls with it).
        self.on_request: Optional[Callable[[str, str], None]] = None
        self.sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        self.pool.close()

    # -- requests -----------------------------------------------------------

    def target(self, path: str, query: Optional[Query], url: Optional[str]) -> tuple[Origin, str, str]:
        """The origin, the request target and the API path (without query) of a call."""
        if url is not None:
            u = urlsplit(url)
            if u.scheme:
                origin = Origin.of(url)
                tgt = (u.path or "/") + ("?" + u.query if u.query else "")
                if query:
                    tgt += ("&" if u.query else "?") + urlencode(list(query))
                return origin, tgt, u.path
            # A URL the node gave as a path: on the base URL.
            path, extra = u.path, u.query
            tgt = self.base_path + path + ("?" + extra if extra else "")
            return self.base_origin, tgt, path
        tgt = self.base_path + path
        if query:
            tgt += "?" + urlencode(list(query))
        return self.base_origin, tgt, path

    def request(
        self,
        method: str,
        path: str = "",
        *,
        query: Optional[Query] = None,
        body: Body = None,
        json_body: Any = None,
        headers: Optional[Mapping[str, Union[str, bytes]]] = None,
        auth: bool = True,
        url: Optional[str] = None,
        stream: bool = False,
        retry_503: bool = True,
        ok: Sequence[int] = (),
        idempotency_key: Optional[str] = None,
    ) -> Response:
        """Send one API call and return its answer; error answers raise ArtmeshError.

        With ``stream`` the body is left for the caller to read (and the
        Response to close); otherwise it is read into ``.data``. Statuses in
        ``ok`` are returned instead of raised. A write to the API carries
        ``idempotency_key``, or a fresh one (see the module's doc).
        """
        hdrs: dict[str, Union[str, bytes]] = {"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        if auth and self.api_key:
            hdrs["Authorization"] = "Bearer " + self.api_key
        keyed = False
        if method in _WRITES and (auth or idempotency_key is not None):
            hdrs[IDEMPOTENCY_KEY] = idempotency_key or new_idempotency_key()
            keyed = True
        if self.consistent_reads and auth and method in ("GET", "HEAD") and url is None:
            query = list(query or []) + [("consistent", "true")]
        origin, tgt, api_path = self.target(path, query, url)
        if self.on_request is not None:
            self.on_request(method, api_path)

        replayable = not callable(body) or getattr(body, "replayable", False)
        attempt = 0
        stale_retried = False
        def backoff() -> None:
            self.sleep(min(0.25 * (2 ** (attempt - 1)) * (1 + random.random() / 4), MAX_RETRY_WAIT))

        while True:
            try:
                resp = self._once(method, origin, tgt, hdrs, body)
            except _StaleConnection as e:
                if keyed and replayable and attempt < self.max_retries:
                    attempt += 1
                    continue  # a reused connection that was closed: a new one at once
                if stale_retried or not (replayable and (method in _IDEMPOTENT or e.before_response)):
                    raise self._connection_error(origin, e.cause) from e.cause
                stale_retried = True
                continue
            except ArtmeshConnectionError:
                # Refused, broken or timed out: a keyed write is safe to send again.
                if keyed and replayable and attempt < self.max_retries:
                    attempt += 1
                    backoff()
                    continue
                raise
            if resp.status < 400 or resp.status in ok:
                if not stream:
                    resp.data = _read_all(resp)
                return resp
            data = _read_all(resp)
            err = error_from_response(resp.status, data, resp._resp.reason)
            retryable = isinstance(err, UnavailableError) and (keyed or not isinstance(err, OutcomeUnknownError))
            if retryable and retry_503 and replayable and attempt < self.max_retries:
                attempt += 1
                wait = retry_after(resp.header("Retry-After"))
                if wait is None:
                    backoff()
                else:
                    self.sleep(min(wait, MAX_RETRY_WAIT))
                continue
            if isinstance(err, UnauthenticatedError) and auth and not self.api_key:
                err = UnauthenticatedError(
                    f"{err.message} (no API key: pass api_key=, set ARTMESH_API_KEY, or run `artmesh init`; {self.key_source})",
                    err.status,
                    err.code,
                )
            elif isinstance(err, UnauthenticatedError) and auth and self.key_source:
                err = UnauthenticatedError(f"{err.message} (the API key came from {self.key_source})", err.status, err.code)
            raise err

    def _once(
        self,
        method: str,
        origin: Origin,
        target: str,
        headers: Mapping[str, Union[str, bytes]],
        body: Body,
    ) -> Response:
        conn, reused = self.pool.get(origin)
        sent_body = False
        try:
            payload: Any = body() if callable(body) else body
            conn.putrequest(method, target, skip_accept_encoding=True)
            chunked = False
            names = {k.lower() for k in headers}
            for k, v in headers.items():
                conn.putheader(k, v)  # type: ignore[arg-type]  # bytes values are sent as they are
            if payload is None:
                if method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", "0")
            elif isinstance(payload, (bytes, bytearray, memoryview)):
                if "content-length" not in names:
                    conn.putheader("Content-Length", str(len(payload)))
            elif "content-length" not in names:
                conn.putheader("Transfer-Encoding", "chunked")
                chunked = True
            conn.endheaders()
            if payload is not None:
                sent_body = True
                if isinstance(payload, (bytes, bytearray, memoryview)):
                    if len(payload):
                        conn.send(payload)
                else:
                    for chunk in payload:
                        if not chunk:
                            continue
                        if chunked:
                            conn.send(f"{len(chunk):X}\r\n".encode("ascii"))
                            conn.send(chunk)
                            conn.send(b"\r\n")
                        else:
                            conn.send(chunk)
                    if chunked:
                        conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
        except BaseException as e:
            conn.close()
            if isinstance(e, socket.timeout):
                raise ArtmeshTimeoutError(
                    f"the artmesh node at {origin} did not answer within {self.timeout} s", str(origin)
                ) from e
            if reused and isinstance(e, _BROKEN):
                raise _StaleConnection(e, before_response=not sent_body or isinstance(e, http.client.RemoteDisconnected)) from e
            if isinstance(e, (OSError, http.client.HTTPException)):
                raise self._connection_error(origin, e) from e
            raise
        return Response(self, origin, conn, resp)

    def _connection_error(self, origin: Origin, e: BaseException) -> ArtmeshConnectionError:
        if isinstance(e, socket.timeout):
            return ArtmeshTimeoutError(f"the artmesh node at {origin} did not answer within {self.timeout} s", str(origin))
        if isinstance(e, (ConnectionRefusedError, socket.gaierror)) or (
            isinstance(e, OSError) and getattr(e, "errno", None) in (99, 101, 111, 113)
        ):
            return ArtmeshConnectionError(
                f"cannot reach the artmesh node at {origin} ({e}): start one with `artmesh daemon` "
                f"(or `make run` in the artmesh repository), or point the client at a running node "
                f"with base_url= or ARTMESH_API",
                str(origin),
            )
        return ArtmeshConnectionError(f"the connection to the artmesh node at {origin} broke: {e!r}", str(origin))

    # -- helpers ------------------------------------------------------------

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """Send a call and decode its JSON answer (None for 204)."""
        resp = self.request(method, path, **kw)
        data = resp.data
        if resp.status == 204 or not data:
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise ArtmeshError(f"{method} {path}: the node's answer is not JSON: {e}", resp.status, "bad_answer") from None


class _StaleConnection(Exception):
    """A reused connection turned out to be closed."""

    def __init__(self, cause: BaseException, before_response: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.before_response = before_response


def _read_all(resp: Response) -> bytes:
    try:
        data = resp.read()
    except BaseException:
        resp.abandon()
        raise
    resp.close()
    return data


def replayable(factory: Callable[[], Iterable[bytes]]) -> Callable[[], Iterable[bytes]]:
    """Mark a body factory as one that yields the same bytes each time it is called."""
    factory.replayable = True  # type: ignore[attr-defined]
    return factory


def file_chunks(f: Any, start: int, length: Optional[int], on_chunk: Optional[Callable[[memoryview, int], None]] = None) -> Iterator[memoryview]:
    """Yield a binary file's bytes from ``start`` (``length`` of them, or to the end) in CHUNK pieces.

    One buffer is reused, so a piece is valid only until the next is asked
    for (http.client sends each before it asks). ``on_chunk(piece, pos)``
    sees each piece and its offset first.
    """
    if start:
        f.seek(start)
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    pos = start
    left = length
    while left is None or left > 0:
        want = CHUNK if left is None else min(CHUNK, left)
        n = f.readinto(mv[:want])
        if not n:
            if left is not None:
                raise ArtmeshError(f"the file ended at {pos} bytes while {left} more were expected: it changed", None, "file_changed")
            return
        piece = mv[:n]
        if on_chunk is not None:
            on_chunk(piece, pos)
        yield piece
        pos += n
        if left is not None:
            left -= n
