"""Errors: the subclass per code with its exact status and code, no node, timeouts, 503 retries."""

from __future__ import annotations

import asyncio
import builtins
import http.server
import os
import socket
import threading
import time
import unittest
from email.utils import formatdate
from unittest import mock

import artmesh
from artmesh._errors import error_from_response
from artmesh._files import retryable
from artmesh._transport import retry_after

from .support import modes, new_agent, node, unique


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@modes
class ErrorAnswers:
    def test_each_code(self) -> None:
        async def scenario() -> None:
            me, key = new_agent("errs")
            c = self.client(key)
            a = await self.aw(c.artifact.create("one.txt", b"1"))

            cases = [
                (artmesh.NotFoundError, 404, "not_found", lambda: c.artifact.get("art_01AAAAAAAAAAAAAAAAAAAAAAAA")),
                (artmesh.NotFoundError, 404, "not_found", lambda: c.artifact.download("not-an-id")),
                (artmesh.ConflictError, 409, "conflict", lambda: c.artifact.delete_version(a.id, 1)),
                (artmesh.InvalidArgumentError, 400, "invalid_argument", lambda: c.artifact.share(a.id, with_agents=["nobody-" + me])),
                (artmesh.InvalidArgumentError, 400, "invalid_argument", lambda: c.artifact.list(limit=0)),
                (artmesh.TooLargeError, 413, "too_large", lambda: c.artifact.create("big-meta", b"x", metadata={"k": "v" * 70_000})),
                (artmesh.PermissionDeniedError, 403, "permission_denied", lambda: c.agents.create(unique("nope"))),
                (artmesh.UnauthenticatedError, 401, "unauthenticated", lambda: self.client("amk_" + "a" * 52).artifact.list()),
            ]
            for cls, status, code, call in cases:
                e = await self.raises(cls, call)
                self.assertIs(type(e), cls)
                self.assertIsInstance(e, artmesh.ArtmeshError)
                self.assertEqual((e.status, e.code), (status, code), e)
                self.assertTrue(e.message)
                self.assertEqual(str(e), f"{e.message} ({status} {code})")
            self.assertEqual(len(await self.aw(c.artifact.list(name="big-meta"))), 0)  # a failed call changes nothing

            # A signed URL past its expiry: 410.
            s = await self.aw(c.artifact.create_signed_url(a.id, expires_in=1))
            wait = (s.expires_at.timestamp() - time.time()) + 0.2
            if wait > 0:
                time.sleep(wait)
            e = await self.raises(artmesh.ExpiredError, lambda: c.artifact.download_signed_url(s.url))
            self.assertEqual((e.status, e.code), (410, "expired"))

        self.run_scenario(scenario)

    def test_no_node(self) -> None:
        async def scenario() -> None:
            port = free_port()
            c = self.client(base_url=f"http://127.0.0.1:{port}")
            e = await self.raises(artmesh.ArtmeshConnectionError, lambda: c.artifact.list())
            self.assertIsInstance(e, builtins.ConnectionError)
            self.assertIsInstance(e, artmesh.ArtmeshError)
            self.assertIs(artmesh.ConnectionError, artmesh.ArtmeshConnectionError)
            self.assertIsNone(e.status)
            self.assertEqual(e.code, "connection_error")
            self.assertIn(f"http://127.0.0.1:{port}", str(e))
            self.assertIn("`artmesh daemon`", str(e))
            self.assertIn("`make run`", str(e))

        self.run_scenario(scenario)

    def test_timeout(self) -> None:
        async def scenario() -> None:
            # A listener that accepts and never answers.
            srv = socket.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen(4)
            self.addCleanup(srv.close)
            c = self.client(base_url=f"http://127.0.0.1:{srv.getsockname()[1]}", timeout=0.3)
            t0 = time.monotonic()
            e = await self.raises(artmesh.ArtmeshTimeoutError, lambda: c.artifact.list())
            self.assertLess(time.monotonic() - t0, 3)
            self.assertIsInstance(e, builtins.TimeoutError)
            self.assertIsInstance(e, artmesh.ArtmeshConnectionError)
            self.assertEqual((e.status, e.code), (None, "timeout"))

        self.run_scenario(scenario)

    def test_503_is_retried_honouring_retry_after(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("retry")
            n = unique("unavailable")
            retries = 2 if self.MODE == "sync" else 1  # (time: each retry waits a second)
            c = self.client(key, max_retries=retries)
            waits: list[float] = []
            t = self.transport(c)
            real_sleep = t.sleep
            t.sleep = lambda s: (waits.append(s), real_sleep(s))
            t0 = time.monotonic()
            # Two copies on a one-node mesh: the node answers 503 with Retry-After: 1, every time.
            e = await self.raises(artmesh.UnavailableError, lambda: c.artifact.create(n, b"x", replicas=2))
            elapsed = time.monotonic() - t0
            self.assertEqual((e.status, e.code), (503, "unavailable"))
            self.assertIn("replicas=2", e.message)
            self.assertEqual(waits, [1.0] * retries)  # each retry after the Retry-After the node sent
            self.assertTrue(retries <= elapsed < retries + 2.0, elapsed)
            self.assertEqual(len(await self.aw(c.artifact.list(name=n))), 0)
            # max_retries=0: no retry.
            waits.clear()
            c0 = self.client(key, max_retries=0)
            self.transport(c0).sleep = lambda s: waits.append(s)
            await self.raises(artmesh.UnavailableError, lambda: c0.artifact.create(n, b"x", replicas=2))
            self.assertEqual(waits, [])

        self.run_scenario(scenario)

    def test_outcome_unknown_is_retried_with_its_key(self) -> None:
        # A write that may have taken effect is sent again with the same
        # Idempotency-Key, which the node applies once. A stand-in answers
        # outcome_unknown `fail` times, then creates.
        hits: list[tuple[str, str, bytes]] = []
        fail = [1]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.headers.get("Transfer-Encoding") == "chunked":
                    body = b""
                    while size := int(self.rfile.readline().strip(), 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hits.append((self.path, self.headers.get("Idempotency-Key") or "", body))
                if len(hits) <= fail[0]:
                    out = b'{"error":{"code":"outcome_unknown","message":"the leader lost its leadership; the write may or may not have taken effect"}}'
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                else:
                    out = b'{"id":"art_1","name":"once","owner":"a","version":1,"size_bytes":1,"content_type":"application/octet-stream","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}'
                    self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)

        async def scenario() -> None:
            c = self.client("amk_test", base_url=f"http://127.0.0.1:{srv.server_address[1]}", max_retries=3)
            waits: list[float] = []
            self.transport(c).sleep = lambda s: waits.append(s)
            # Once unknown, then created: one key, the same body, the wait Retry-After asked.
            hits.clear()
            fail[0] = 1
            a = await self.aw(c.artifact.create("once", b"x"))
            self.assertEqual(a.id, "art_1")
            self.assertEqual(len(hits), 2)
            self.assertEqual(len({h[1] for h in hits}), 1)
            self.assertTrue(hits[0][1])
            self.assertEqual([h[2] for h in hits], [b"x", b"x"])
            self.assertEqual(waits, [1.0])
            # The caller's own key.
            hits.clear()
            await self.aw(c.artifact.create("once", b"x", idempotency_key="mine-1"))
            self.assertEqual([h[1] for h in hits], ["mine-1", "mine-1"])
            # Another call, another key.
            hits.clear()
            await self.aw(c.artifact.create("once", b"x"))
            await self.aw(c.artifact.create("once", b"x"))
            self.assertEqual(len({h[1] for h in hits}), 2)
            # Unknown every time: the error, after max_retries more attempts.
            hits.clear()
            fail[0] = 99
            e = await self.raises(artmesh.OutcomeUnknownError, lambda: c.artifact.create("once", b"x"))
            self.assertIsInstance(e, artmesh.UnavailableError)
            self.assertEqual((e.status, e.code, len(hits)), (503, "outcome_unknown", 4))
            # A body that cannot be sent again (a generator) is not.
            hits.clear()
            e = await self.raises(artmesh.OutcomeUnknownError, lambda: c.artifact.create("once", iter([b"x"])))
            self.assertEqual(len(hits), 1)

        self.run_scenario(scenario)

    def test_missing_key(self) -> None:
        async def scenario() -> None:
            empty = self.enterContext_tmp()
            with mock.patch.dict(os.environ, {"ARTMESH_PATH": empty}, clear=False):
                os.environ.pop("ARTMESH_API_KEY", None)
                c = self.client(api_key="")  # no key anywhere
                self.assertIsNone(self.transport(c).api_key)
                e = await self.raises(artmesh.UnauthenticatedError, lambda: c.artifact.list())
            self.assertEqual((e.status, e.code), (401, "unauthenticated"))
            self.assertIn("no API key", e.message)
            self.assertIn("ARTMESH_API_KEY", e.message)

        self.run_scenario(scenario)

    def enterContext_tmp(self) -> str:
        import shutil
        import tempfile

        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        return d


class ErrorShapes(unittest.TestCase):
    def test_error_from_response(self) -> None:
        e = error_from_response(404, b'{"error":{"code":"not_found","message":"gone"}}')
        self.assertEqual((type(e), e.status, e.code, e.message), (artmesh.NotFoundError, 404, "not_found", "gone"))
        e = error_from_response(416, b'{"error":{"code":"range_not_satisfiable","message":"r"}}')
        self.assertIs(type(e), artmesh.RangeNotSatisfiableError)
        e = error_from_response(500, b'{"error":{"code":"internal","message":"internal error"}}')
        self.assertEqual((type(e), e.status), (artmesh.InternalError, 500))
        # Not the API's shape (a proxy's page): the class of the status.
        e = error_from_response(502, b"<html>bad gateway</html>", "Bad Gateway")
        self.assertEqual((type(e), e.status, e.code, e.message), (artmesh.ArtmeshError, 502, "http_502", "<html>bad gateway</html>"))
        e = error_from_response(503, b"")
        self.assertEqual((type(e), e.code), (artmesh.UnavailableError, "unavailable"))
        e = error_from_response(410, b'{"error":{"code":"expired","message":"old"}}')
        self.assertIs(type(e), artmesh.ExpiredError)
        e = error_from_response(507, b'{"error":{"code":"insufficient_storage","message":"1.0 MiB free"}}')
        self.assertEqual((type(e), e.status, e.message), (artmesh.InsufficientStorageError, 507, "1.0 MiB free"))
        e = error_from_response(507, b"")
        self.assertEqual((type(e), e.code), (artmesh.InsufficientStorageError, "insufficient_storage"))
        # A full disk is not retried by the transfers: a retry frees nothing.
        self.assertFalse(retryable(e))
        self.assertTrue(retryable(error_from_response(500, b"")))
        # A quota is its own code on the same status, and not retried either.
        e = error_from_response(507, b'{"error":{"code":"quota_exceeded","message":"over"}}')
        self.assertEqual((type(e), e.status, e.code), (artmesh.QuotaExceededError, 507, "quota_exceeded"))
        self.assertFalse(retryable(e))
        e = error_from_response(429, b"")
        self.assertEqual((type(e), e.code), (artmesh.TooManyError, "too_many"))
        self.assertFalse(retryable(e))

    def test_retry_after(self) -> None:
        self.assertEqual(retry_after("1"), 1.0)
        self.assertEqual(retry_after(" 7 "), 7.0)
        self.assertIsNone(retry_after(None))
        self.assertIsNone(retry_after("soon"))
        later = retry_after(formatdate(time.time() + 5, usegmt=True))
        self.assertTrue(later is not None and 3.5 < later <= 5.0, later)
        self.assertEqual(retry_after(formatdate(time.time() - 50, usegmt=True)), 0.0)


class StaleConnection(unittest.TestCase):
    def test_idle_connection_closed_by_the_node_is_not_used(self) -> None:
        n = node()
        _, key = new_agent("stale")
        with artmesh.Client(api_key=key, base_url=n.url) as c:
            self.assertEqual(c.artifact.list().total, 0)
            idle = c._t.pool._idle[c._t.base_origin.key()]
            self.assertEqual(len(idle), 1)
            conn = idle[0]
            # The node closes the kept connection (as its idle timeout would).
            conn.sock.shutdown(socket.SHUT_RDWR)
            self.assertEqual(c.artifact.list().total, 0)
            self.assertIsNot(idle[0], conn)
            self.assertEqual(len(idle), 1)
            # A kept connection is really reused: the next call goes out on the same socket.
            kept = idle[0]
            sock = kept.sock
            c.artifact.list()
            self.assertIs(idle[0], kept)
            self.assertIs(kept.sock, sock)
            c.close()
            self.assertEqual(c._t.pool._idle, {})
            self.assertIsNone(kept.sock)

    def test_async_close(self) -> None:
        n = node()

        async def main() -> None:
            ac = artmesh.AsyncClient(api_key=n.key, base_url=n.url)
            self.assertTrue(await ac.ready())
            self.assertEqual(len(ac._t.pool._idle[ac._t.base_origin.key()]), 1)
            await ac.close()
            self.assertEqual(ac._t.pool._idle, {})
            async with artmesh.AsyncClient(api_key=n.key, base_url=n.url) as ac2:
                await ac2.node()
            self.assertEqual(ac2._t.pool._idle, {})
            ac3 = artmesh.AsyncClient(api_key=n.key, base_url=n.url)
            await ac3.aclose()

        asyncio.run(main())

    def test_many_threads_share_the_pool(self) -> None:
        n = node()
        _, key = new_agent("threads")
        with artmesh.Client(api_key=key, base_url=n.url) as c:
            errs: list[BaseException] = []

            def work(i: int) -> None:
                try:
                    a = c.artifact.create(f"t{i}", str(i).encode())
                    if c.artifact.download(a.id) != str(i).encode():
                        raise AssertionError(i)
                except BaseException as e:  # noqa: BLE001
                    errs.append(e)

            ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(errs, [])
            self.assertEqual(c.artifact.list().total, 8)
            self.assertLessEqual(len(c._t.pool._idle[c._t.base_origin.key()]), 8)


class ConfirmRetries(unittest.TestCase):
    def test_confirm_after_outcome_unknown(self) -> None:
        # A confirm that answered outcome_unknown and took effect: the
        # next one is refused as a conflict, and the upload names its
        # artifact, which upload_file returns (no second artifact).
        from artmesh import _files

        calls: list[str] = []

        class Upload:
            state, artifact_id = "confirmed", "art_1"

        class Transport:
            def sleep(self, s: float) -> None:
                calls.append("sleep")

        class Arts:
            _t = Transport()

            def confirm_upload(self, upload_id: str, sha256: str, replicas: object = None) -> object:
                calls.append("confirm")
                if calls.count("confirm") == 1:
                    raise artmesh.OutcomeUnknownError("the leader lost its leadership", 503, "outcome_unknown")
                raise artmesh.ConflictError("upload upl_1 is confirmed", 409, "conflict")

            def get_upload(self, upload_id: str) -> Upload:
                calls.append("get_upload")
                return Upload()

            def get(self, artifact_id: str) -> str:
                calls.append("get " + artifact_id)
                return "artifact " + artifact_id

        self.assertEqual(_files._confirm(Arts(), "upl_1", "00", None), "artifact art_1")  # type: ignore[arg-type]
        self.assertEqual(calls, ["confirm", "sleep", "confirm", "get_upload", "get art_1"])
