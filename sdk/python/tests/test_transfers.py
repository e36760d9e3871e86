"""upload_file and download_file of 40 MiB: interrupted (a broken connection, an exception) and resumed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from typing import Any, Optional
from unittest import mock

import artmesh

from .support import MiB, SDK_ROOT, CuttingProxy, KillingConnection, modes, new_agent, node, sha256_file, unique, write_random

SIZE = 40 * MiB
_dir: Optional[str] = None
BIG = ""
BIG_SHA = ""
BIG_ID = ""


def setUpModule() -> None:
    global _dir, BIG, BIG_SHA, BIG_ID
    _dir = tempfile.mkdtemp(prefix="artmesh-sdk-big-")
    BIG = os.path.join(_dir, "big.bin")
    BIG_SHA = write_random(BIG, SIZE)
    n = node()
    with artmesh.Client(api_key=n.key, base_url=n.url) as c:
        BIG_ID = c.artifact.upload_file(BIG, name="big-for-downloads").id


def tearDownModule() -> None:
    if _dir:
        shutil.rmtree(_dir, ignore_errors=True)


class Stop(Exception):
    """What a test's progress callback raises to interrupt a transfer."""


def _parts(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith(".artmesh-part"))


@modes
class Transfers:
    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.tmp = tempfile.mkdtemp(prefix="artmesh-sdk-t-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cache = os.path.join(self.tmp, "cache")
        patcher = mock.patch.dict(os.environ, {"ARTMESH_CACHE_DIR": self.cache})
        patcher.start()
        self.addCleanup(patcher.stop)

    def records(self) -> list[dict[str, Any]]:
        folder = os.path.join(self.cache, "uploads")
        out = []
        for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            with open(os.path.join(folder, f)) as fh:
                out.append(json.load(fh))
        return out

    def test_upload_file_resumes_after_a_broken_connection(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("up-broken")
            c = self.client(key)

            class Breaking(KillingConnection):
                limit, sent, killed, heads = 16 * MiB, 0, False, []

            self.transport(c).pool.connection_class = Breaking
            seen: list[int] = []
            a = await self.aw(c.artifact.upload_file(BIG, metadata={"kind": "big"}, progress=lambda d, t: seen.append(d)))
            self.assertTrue(Breaking.killed)
            self.assertEqual((a.name, a.size_bytes, a.content_type, a.metadata), ("big.bin", SIZE, "application/octet-stream", {"kind": "big"}))
            # The first PUT broke off; the second started where the node said its copy ended.
            self.assertEqual(len(Breaking.heads), 2, Breaking.heads)
            self.assertEqual(Breaking.heads[0], f"bytes 0-{SIZE - 1}/{SIZE}")
            m = re.fullmatch(rf"bytes (\d+)-{SIZE - 1}/{SIZE}", Breaking.heads[1])
            assert m is not None
            resumed_at = int(m.group(1))
            self.assertTrue(0 < resumed_at <= 16 * MiB + MiB, resumed_at)
            self.assertIn(resumed_at, seen)
            self.assertEqual(seen[-1], SIZE)
            # Not sent again from the start: what went out is the first try plus the rest.
            self.assertLess(Breaking.sent, SIZE + 17 * MiB)
            self.assertGreaterEqual(Breaking.sent, SIZE)
            self.assertEqual(self.records(), [])
            out = os.path.join(self.tmp, "check.bin")
            await self.aw(c.artifact.download_file(a.id, out))
            self.assertEqual(sha256_file(out), BIG_SHA)

        self.run_scenario(scenario)

    def test_upload_file_resumes_in_a_second_call(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("up-again")
            c = self.client(key)
            name = unique("resumed") + ".bin"

            def stop_at_20(done: int, total: int) -> None:
                self.assertEqual(total, SIZE)
                if done >= 20 * MiB:
                    raise Stop()

            await self.raises(Stop, lambda: c.artifact.upload_file(BIG, name=name, metadata={"try": 1}, progress=stop_at_20))
            self.assertEqual(len(await self.aw(c.artifact.list(name=name))), 0)
            recs = self.records()
            self.assertEqual(len(recs), 1)
            rec = recs[0]
            # What the node holds, asked with plain urllib: part of the file, and it stays put.
            offset = -1
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with urllib.request.urlopen(urllib.request.Request(rec["url"], method="HEAD"), timeout=10) as r:
                    now = int(r.headers["Upload-Offset"])
                    self.assertEqual(r.headers["Upload-Length"], str(SIZE))
                if now == offset:
                    break
                offset = now
                time.sleep(0.1)
            self.assertTrue(0 < offset < SIZE, offset)
            st = await self.aw(c.artifact.get_upload(rec["id"]))
            self.assertEqual((st.state, st.received_bytes, st.size_bytes, st.name), ("open", offset, SIZE, name))

            seen: list[int] = []
            a = await self.aw(c.artifact.upload_file(BIG, name=name, metadata={"try": 1}, progress=lambda d, t: seen.append(d)))
            self.assertEqual(seen[0], offset)  # it went on from the node's offset
            self.assertEqual(seen[-1], SIZE)
            self.assertEqual((a.name, a.size_bytes, a.metadata), (name, SIZE, {"try": 1}))
            st = await self.aw(c.artifact.get_upload(rec["id"]))
            self.assertEqual((st.state, st.artifact_id), ("confirmed", a.id))  # the same session
            self.assertEqual(self.records(), [])
            self.assertEqual(len(await self.aw(c.artifact.list(name=name))), 1)
            out = os.path.join(self.tmp, "check.bin")
            await self.aw(c.artifact.download_file(a.id, out))
            self.assertEqual(sha256_file(out), BIG_SHA)

        self.run_scenario(scenario)

    def test_download_file_resumes_after_a_broken_connection(self) -> None:
        async def scenario() -> None:
            proxy = CuttingProxy(self.node.port, cut_after=12 * MiB)
            self.addCleanup(proxy.close)
            c = self.client(base_url=proxy.url)
            path = os.path.join(self.tmp, "out.bin")
            seen: list[int] = []
            got = await self.aw(c.artifact.download_file(BIG_ID, path, progress=lambda d, t: seen.append(d)))
            self.assertEqual(got, path)
            self.assertTrue(proxy.cut_done)
            self.assertEqual(sha256_file(path), BIG_SHA)
            self.assertEqual(_parts(self.tmp), [])
            gets = [r for r in proxy.requests if r.startswith(b"GET /v1/artifacts/")]
            self.assertEqual(len(gets), 2, gets)
            self.assertNotIn(b"Range:", gets[0])
            m = re.search(rb"\r\nRange: bytes=(\d+)-\r\n", gets[1])
            assert m is not None, gets[1]
            resumed_at = int(m.group(1))
            self.assertTrue(11 * MiB < resumed_at < 12 * MiB, resumed_at)
            self.assertIn(b'If-Range: "baf', gets[1])
            self.assertIn(resumed_at, seen)
            # Through the proxy: the cut answer, then only the rest (and two heads of answers).
            self.assertLess(abs(proxy.down_bytes - 12 * MiB - (SIZE - resumed_at)), 2048)

        self.run_scenario(scenario)

    def test_download_file_resumes_in_a_second_call(self) -> None:
        async def scenario() -> None:
            c = self.client()
            path = os.path.join(self.tmp, "model.bin")

            def stop_at_20(done: int, total: int) -> None:
                self.assertEqual(total, SIZE)
                if done >= 20 * MiB:
                    raise Stop()

            await self.raises(Stop, lambda: c.artifact.download_file(BIG_ID, path, progress=stop_at_20))
            self.assertFalse(os.path.exists(path))  # never a partial file at path
            cid = (await self.aw(c.artifact.get(BIG_ID))).cid
            self.assertEqual(_parts(self.tmp), [f".model.bin.{cid}.artmesh-part"])
            have = os.path.getsize(os.path.join(self.tmp, _parts(self.tmp)[0]))
            self.assertTrue(20 * MiB <= have < SIZE, have)

            proxy = CuttingProxy(self.node.port)
            self.addCleanup(proxy.close)
            c2 = self.client(base_url=proxy.url)
            seen: list[int] = []
            await self.aw(c2.artifact.download_file(BIG_ID, path, progress=lambda d, t: seen.append(d)))
            self.assertEqual(seen[0], have)
            self.assertEqual(seen[-1], SIZE)
            self.assertEqual(sha256_file(path), BIG_SHA)
            self.assertEqual(_parts(self.tmp), [])
            gets = [r for r in proxy.requests if r.startswith(b"GET ")]
            self.assertEqual(len(gets), 1)
            self.assertIn(f"\r\nRange: bytes={have}-\r\n".encode(), gets[0])
            self.assertLess(proxy.down_bytes - (SIZE - have), 2048)  # only the rest came

        self.run_scenario(scenario)

    def test_download_file_of_changed_or_complete_content(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("changing")
            c = self.client(key)
            v1 = os.urandom(3 * MiB)
            v2 = os.urandom(2 * MiB)
            a = await self.aw(c.artifact.create("changing.bin", v1))
            path = os.path.join(self.tmp, "changing.bin")

            def stop(done: int, total: int) -> None:
                if done >= MiB:
                    raise Stop()

            await self.raises(Stop, lambda: c.artifact.download_file(a.id, path, progress=stop))
            self.assertEqual(_parts(self.tmp), [f".changing.bin.{a.cid}.artmesh-part"])
            # A new version in between: If-Range does not match, the whole new content comes.
            b = await self.aw(c.artifact.update(a.id, v2))
            await self.aw(c.artifact.download_file(a.id, path))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), v2)
            self.assertEqual(_parts(self.tmp), [])
            # A version by number, over an existing file (replaced atomically, when asked).
            await self.aw(c.artifact.download_file(a.id, path, version=1, overwrite=True))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), v1)

            # A partial file that already holds everything (416 on its Range): finished as it is.
            small = await self.aw(c.artifact.create("small.txt", b"0123456789"))
            p2 = os.path.join(self.tmp, "small.txt")
            with open(os.path.join(self.tmp, f".small.txt.{small.cid}.artmesh-part"), "wb") as f:
                f.write(b"0123456789")
            await self.aw(c.artifact.download_file(small.id, p2))
            with open(p2, "rb") as f:
                self.assertEqual(f.read(), b"0123456789")
            # One longer than the content: thrown away, and the content fetched again.
            with open(os.path.join(self.tmp, f".small.txt.{small.cid}.artmesh-part"), "wb") as f:
                f.write(b"not this, it is too long")
            await self.aw(c.artifact.download_file(small.id, p2, overwrite=True))
            with open(p2, "rb") as f:
                self.assertEqual(f.read(), b"0123456789")
            self.assertEqual(_parts(self.tmp), [])
            e = await self.raises(artmesh.NotFoundError, lambda: c.artifact.download_file("art_01AAAAAAAAAAAAAAAAAAAAAAAA", os.path.join(self.tmp, "none")))
            self.assertEqual((e.status, e.code), (404, "not_found"))
            self.assertEqual(sorted(os.listdir(self.tmp)), ["changing.bin", "small.txt"])
            _ = b

        self.run_scenario(scenario)


class AsyncCancellation(unittest.TestCase):
    def test_cancelled_download_keeps_its_partial_file_and_resumes(self) -> None:
        tmp = tempfile.mkdtemp(prefix="artmesh-sdk-c-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "c.bin")
        n = node()

        async def main() -> None:
            async with artmesh.AsyncClient(api_key=n.key, base_url=n.url) as c:
                reached = asyncio.Event()
                calls: list[int] = []

                async def progress(done: int, total: int) -> None:  # a coroutine callback, run on the loop
                    calls.append(done)
                    if done >= 8 * MiB:
                        reached.set()
                        await asyncio.sleep(0.2)

                task = asyncio.ensure_future(c.artifact.download_file(BIG_ID, path, progress=progress))
                await reached.wait()
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                self.assertFalse(os.path.exists(path))
                parts = _parts(tmp)
                self.assertEqual(len(parts), 1)
                have = os.path.getsize(os.path.join(tmp, parts[0]))
                self.assertTrue(8 * MiB <= have < SIZE, have)
                time.sleep(0.3)
                self.assertEqual(os.path.getsize(os.path.join(tmp, parts[0])), have)  # the worker let go of it
                seen: list[int] = []
                await c.artifact.download_file(BIG_ID, path, progress=lambda d, t: seen.append(d))
                self.assertEqual(seen[0], have)
                self.assertEqual(sha256_file(path), BIG_SHA)

        asyncio.run(main())


class Memory(unittest.TestCase):
    def test_40_mib_transfers_do_not_hold_the_file_in_memory(self) -> None:
        n = node()
        tmp = tempfile.mkdtemp(prefix="artmesh-sdk-m-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # The child samples its resident set (Linux: /proc/self/statm) before and during the
        # transfers, and reports its peak RSS too; the peak of a fresh process is reached
        # while it imports, so the samples are what show the transfers' own memory.
        code = """
import json, os, resource, sys, artmesh
def rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c = artmesh.Client(api_key=sys.argv[1], base_url=sys.argv[2])
c.artifact.list(limit=1)
base, top = rss(), [0]
def sample(done, total):
    top[0] = max(top[0], rss())
a = c.artifact.upload_file(sys.argv[3], name="rss-check", progress=sample)
c.artifact.download_file(a.id, sys.argv[4], progress=sample)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kib": base, "during_kib": top[0], "peak_kib": peak}))
"""
        env = dict(os.environ, PYTHONPATH=SDK_ROOT, ARTMESH_CACHE_DIR=os.path.join(tmp, "cache"))
        out = subprocess.run(
            [sys.executable, "-c", code, n.key, n.url, BIG, os.path.join(tmp, "back.bin")],
            env=env, capture_output=True, text=True, timeout=120, check=True,
        ).stdout
        r = json.loads(out)
        grown = (r["during_kib"] - r["base_kib"]) / 1024
        self.assertLess(grown, 12, f"RSS grew by {grown:.1f} MiB during a 40 MiB upload and download: {r}")
        self.assertLess(r["peak_kib"] / 1024, 64, r)
        self.assertEqual(sha256_file(os.path.join(tmp, "back.bin")), BIG_SHA)
