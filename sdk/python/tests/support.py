"""What the SDK's tests share: a real artmesh daemon, clients in both modes, a cutting proxy.

The daemon is the real binary ($ARTMESH_BIN, else bin/artmesh at the
repository's root, which `make build` writes), started the way the Go e2e
harness starts one: ``artmesh daemon --init`` in a temporary repo, with the
API on a free 127.0.0.1 port (``--api 127.0.0.1:0``; the daemon writes the
address it got to ``<repo>/api.addr``) and the mesh on a free port. One
daemon serves the whole run; each test makes its own agents, so that tests
do not see each other's artifacts.
"""

from __future__ import annotations

import asyncio
import atexit
import http.client
import inspect
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Optional, Union

import artmesh

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_ROOT = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(SDK_ROOT))

MiB = 1 << 20

# Unfinished-upload records go to a folder of this run, not the user's ~/.cache.
if not os.environ.get("ARTMESH_CACHE_DIR"):
    os.environ["ARTMESH_CACHE_DIR"] = tempfile.mkdtemp(prefix="artmesh-sdk-cache-")
    atexit.register(shutil.rmtree, os.environ["ARTMESH_CACHE_DIR"], True)


def binary() -> str:
    """The artmesh binary the tests run."""
    b = os.environ.get("ARTMESH_BIN") or os.path.join(REPO_ROOT, "bin", "artmesh")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"no artmesh binary at {b}: run `make build` at the repository's root, or set ARTMESH_BIN")
    return b


class Node:
    """One artmesh daemon process in its own repo folder."""

    def __init__(self, repo: str, api_addr: str = "127.0.0.1:0", extra: tuple[str, ...] = ()) -> None:
        self.repo = repo
        self.log_path = os.path.join(repo + ".log")
        try:
            os.remove(os.path.join(repo, "api.addr"))
        except FileNotFoundError:
            pass
        env = dict(os.environ, ARTMESH_PATH=repo)
        env.pop("ARTMESH_API", None)
        env.pop("ARTMESH_API_KEY", None)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary(), "daemon", "--init", "--api", api_addr, "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn", *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 30
        addr = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"artmesh daemon exited at start: {self.logs()}")
            try:
                with open(os.path.join(repo, "api.addr")) as f:
                    addr = f.read().strip()
            except FileNotFoundError:
                addr = ""
            if addr:
                break
            time.sleep(0.02)
        if not addr:
            self.stop()
            raise RuntimeError(f"artmesh daemon did not start within 30 s: {self.logs()}")
        self.addr = addr
        self.url = "http://" + addr
        self.port = int(addr.rsplit(":", 1)[1])
        with open(os.path.join(repo, "api.key")) as f:
            self.key = f.read().strip()
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"artmesh daemon not ready within 30 s: {self.logs()}")

    def logs(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


_node: Optional[Node] = None
_tmp: Optional[str] = None
_lock = threading.Lock()


def node() -> Node:
    """The run's shared daemon, started on first use and stopped at exit."""
    global _node, _tmp
    with _lock:
        if _node is None:
            _tmp = tempfile.mkdtemp(prefix="artmesh-sdk-test-")
            _node = Node(os.path.join(_tmp, "node"))
            atexit.register(_cleanup)
        return _node


def _cleanup() -> None:
    if _node is not None:
        _node.stop()
    if _tmp is not None:
        shutil.rmtree(_tmp, ignore_errors=True)


_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


def admin_call(method: str, path: str, body: Any = None) -> Any:
    """A call as the node's admin with urllib (not the SDK), for setting up tests."""
    n = node()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(n.url + path, data=data, method=method, headers={"Authorization": "Bearer " + n.key})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def new_agent(prefix: str = "agent", groups: tuple[str, ...] = ()) -> tuple[str, str]:
    """A new agent (id, API key), made with urllib as the admin."""
    aid = unique(prefix)
    out = admin_call("POST", "/v1/agents", {"id": aid, "groups": list(groups)})
    return aid, out["api_key"]


#: (method, path) of every request an SDK client made in this run.
RECORDED: set[tuple[str, str]] = set()


def _record(method: str, path: str) -> None:
    RECORDED.add((method, path))


class ModeCase(unittest.TestCase):
    """A test case whose scenarios run with the sync Client or the AsyncClient (MODE)."""

    MODE = "sync"

    def setUp(self) -> None:
        self.node = node()
        self._async_clients: list[artmesh.AsyncClient] = []

    def client(self, api_key: Optional[str] = None, **kw: Any) -> Any:
        """A client of the shared node in this case's mode (the admin's when api_key is None)."""
        kw.setdefault("base_url", self.node.url)
        key = api_key if api_key is not None else self.node.key
        if self.MODE == "sync":
            c: Any = artmesh.Client(api_key=key, **kw)
            c._t.on_request = _record
            self.addCleanup(c.close)
        else:
            c = artmesh.AsyncClient(api_key=key, **kw)
            c._sync._t.on_request = _record
            self._async_clients.append(c)
        return c

    def transport(self, c: Any) -> Any:
        return c._t if self.MODE == "sync" else c._sync._t

    def run_scenario(self, scenario: Callable[[], Awaitable[None]]) -> None:
        """Run an async scenario; in async mode close its clients in its loop."""

        async def main() -> None:
            try:
                await scenario()
            finally:
                for c in self._async_clients:
                    await c.close()
                self._async_clients.clear()

        asyncio.run(main())

    async def aw(self, value: Any) -> Any:
        """The result of a client call: awaited in async mode (where it must be awaitable), as is in sync mode (where it must not be)."""
        if self.MODE == "sync":
            self.assertFalse(inspect.isawaitable(value), "a sync Client method returned an awaitable")
            return value
        self.assertTrue(inspect.isawaitable(value), f"an AsyncClient method returned {type(value).__name__}, not an awaitable")
        return await value

    async def collect(self, it: Union[Iterator[Any], AsyncIterator[Any]]) -> list[Any]:
        """Every item of iter_all: a plain iterator in sync mode, an async one in async mode."""
        if self.MODE == "sync":
            self.assertTrue(hasattr(it, "__next__") and not hasattr(it, "__anext__"))
            return list(it)  # type: ignore[arg-type]
        self.assertTrue(hasattr(it, "__anext__"))
        return [x async for x in it]  # type: ignore[union-attr]

    async def raises(self, exc: type[BaseException], call: Callable[[], Any]) -> Any:
        """The exception that ``call()``, a client call, raises (awaited in async mode)."""
        try:
            value = call()
            if self.MODE == "async":
                self.assertTrue(inspect.isawaitable(value))
                await value
            else:
                self.assertFalse(inspect.isawaitable(value))
        except exc as e:
            return e
        self.fail(f"no {exc.__name__} was raised")


def modes(cls: type) -> type:
    """Make a Sync... and an Async... TestCase of a scenario mixin, in the caller's module."""
    import sys

    mod = sys.modules[cls.__module__]
    for mode in ("sync", "async"):
        name = ("Sync" if mode == "sync" else "Async") + cls.__name__
        setattr(mod, name, type(name, (cls, ModeCase), {"MODE": mode, "__module__": cls.__module__}))
    return cls


# -- a proxy that cuts answers -------------------------------------------------


class CuttingProxy:
    """A TCP proxy in front of a node that breaks the first answer after ``cut_after`` bytes.

    It listens on 127.0.0.2 with the node's own port, so the Host the client
    sends (a loopback address with the API's port) is one the node accepts.
    It counts the bytes the node sent through it, and keeps the heads of the
    requests it forwarded.
    """

    def __init__(self, upstream_port: int, cut_after: Optional[int] = None) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_after = cut_after
        self.cut_done = False
        self.down_bytes = 0
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.2", upstream_port))
        self.sock.listen(16)
        self.url = f"http://127.0.0.2:{upstream_port}"
        self._stop = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def reset_counts(self) -> None:
        with self._lock:
            self.down_bytes = 0
            self.requests = []

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.upstream)
            self._conns += [c, u]
            threading.Thread(target=self._up, args=(c, u), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    def _up(self, c: socket.socket, u: socket.socket) -> None:
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                with self._lock:
                    if data[:8].split(b" ")[0] in (b"GET", b"HEAD", b"PUT", b"POST", b"DELETE"):
                        self.requests.append(data.split(b"\r\n\r\n", 1)[0])
                u.sendall(data)
        except OSError:
            pass
        finally:
            _shut(u)

    def _down(self, u: socket.socket, c: socket.socket) -> None:
        sent = 0
        try:
            while True:
                data = u.recv(65536)
                if not data:
                    break
                with self._lock:
                    cut = self.cut_after is not None and not self.cut_done and sent + len(data) >= self.cut_after
                    if cut:
                        self.cut_done = True
                        data = data[: self.cut_after - sent]
                    self.down_bytes += len(data)
                c.sendall(data)
                sent += len(data)
                if cut:
                    # A broken connection: the rest of the answer never comes.
                    _shut(c)
                    _shut(u)
                    return
        except OSError:
            pass
        finally:
            _shut(c)

    def close(self) -> None:
        self._stop = True
        _shut(self.sock)  # shutdown wakes the accept() of the other thread
        for s in self._conns:
            _shut(s)


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class KillingConnection(http.client.HTTPConnection):
    """An HTTPConnection that shuts its socket down once, after ``limit`` bytes of request bodies went out.

    The node then sees the body break off (and keeps what arrived); the
    client gets a real broken-pipe error from the kernel on its next send.
    Class attributes are set by the test that installs it.
    """

    limit = 16 * MiB
    sent = 0
    killed = False
    heads: list[str] = []

    def putheader(self, header: Union[str, bytes], *values: Union[str, bytes, int]) -> None:  # type: ignore[override]
        h = header.decode() if isinstance(header, bytes) else header
        if h.lower() == "content-range":
            type(self).heads.append(str(values[0]))
        super().putheader(header, *values)

    def send(self, data: Any) -> None:  # type: ignore[override]
        cls = type(self)
        if isinstance(data, (bytes, bytearray, memoryview)) and len(data) >= 65536:
            if not cls.killed and cls.sent + len(data) > cls.limit and self.sock is not None:
                cls.killed = True
                self.sock.shutdown(socket.SHUT_RDWR)
            cls.sent += len(data)
        super().send(data)


def write_random(path: str, size: int) -> str:
    """Write ``size`` random bytes to path, a MiB at a time; return their sha256."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = os.urandom(min(MiB, left))
            f.write(piece)
            h.update(piece)
            left -= len(piece)
    return h.hexdigest()


def sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(MiB)
            if not b:
                return h.hexdigest()
            h.update(b)
