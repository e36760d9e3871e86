"""client.artifact.watch: the change feed, with the sync Client and the AsyncClient, against a real node."""

from __future__ import annotations

import asyncio
import threading
import time
import unittest

import artmesh

from .support import admin_call, new_agent, node, unique


def _short(ev: artmesh.Event) -> str:
    return f"{ev.type} {ev.artifact_id} v{ev.version}"


class SyncWatch(unittest.TestCase):
    def test_watch_sees_exactly_what_it_may_read(self) -> None:
        n = node()
        owner, owner_key = new_agent("owner")
        reader, reader_key = new_agent("reader")
        team = unique("team")
        admin_call("PUT", f"/v1/groups/{team}", {"members": [reader]})
        oc = artmesh.Client(api_key=owner_key, base_url=n.url)
        rc = artmesh.Client(api_key=reader_key, base_url=n.url)
        self.addCleanup(oc.close)
        self.addCleanup(rc.close)

        with rc.artifact.watch() as stream:
            x = oc.artifact.create(unique("x"), b"1")  # the reader may not see this
            oc.artifact.update(x.id, b"2")
            oc.artifact.share(x.id, with_agents=[reader])
            y = oc.artifact.create(unique("y"), b"y")
            oc.artifact.share(y.id, with_groups=[team])
            oc.artifact.unshare(x.id, agents=[reader])
            oc.artifact.delete(y.id)
            got = [next(stream) for _ in range(4)]
        self.assertTrue(stream.closed)
        self.assertEqual(
            [_short(e) for e in got],
            [f"artifact.shared {x.id} v2", f"artifact.shared {y.id} v1", f"artifact.unshared {x.id} v2", f"artifact.deleted {y.id} v1"],
        )
        ids = [int(e.id) for e in got]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual((got[0].owner, got[0].actor, got[0].agents), (owner, owner, []))  # grants are the owner's to see
        self.assertIsNotNone(got[0].at)

        # Going on after an id gives the events after it, and the filters hold.
        after = rc.artifact.watch(last_event_id=got[1].id, shared_with_me=True)
        self.assertEqual([_short(next(after)) for _ in range(2)], [_short(got[2]), _short(got[3])])
        after.close()
        mine = oc.artifact.watch(artifact_id=x.id, last_event_id="0")
        first = [next(mine) for _ in range(4)]
        mine.close()
        self.assertEqual([e.type for e in first], ["artifact.created", "artifact.updated", "artifact.shared", "artifact.unshared"])
        self.assertEqual(first[2].agents, [reader])

    def test_close_from_another_thread_ends_a_blocked_next(self) -> None:
        _, key = new_agent("idle")
        c = artmesh.Client(api_key=key, base_url=node().url)
        self.addCleanup(c.close)
        stream = c.artifact.watch()
        out: list[object] = []
        t = threading.Thread(target=lambda: out.append(next(stream, "ended")))
        t.start()
        time.sleep(0.5)
        # The stream's first frame gave its position, with no event: a
        # reconnect would go on from there.
        self.assertIsNotNone(stream.last_event_id)
        self.assertTrue(str(stream.last_event_id).isdigit(), stream.last_event_id)
        stream.close()
        t.join(5)
        self.assertFalse(t.is_alive(), "next() still blocked after close()")
        self.assertEqual(out, ["ended"])

    def test_errors(self) -> None:
        _, key = new_agent("bad")
        c = artmesh.Client(api_key=key, base_url=node().url)
        self.addCleanup(c.close)
        with self.assertRaises(artmesh.InvalidArgumentError) as e:
            c.artifact.watch(artifact_id="nope")
        self.assertEqual((e.exception.status, e.exception.code), (400, "invalid_argument"))
        with self.assertRaises(artmesh.InvalidArgumentError):
            c.artifact.watch(last_event_id="abc")
        bad = artmesh.Client(api_key="amk_" + "A" * 52, base_url=node().url)
        self.addCleanup(bad.close)
        with self.assertRaises(artmesh.UnauthenticatedError):
            bad.artifact.watch()
        gone = artmesh.Client(api_key=key, base_url="http://127.0.0.1:1", max_retries=0)
        self.addCleanup(gone.close)
        with self.assertRaises(artmesh.ConnectionError):
            gone.artifact.watch()
        # An id beyond the node's catalog: a reset first.
        far = c.artifact.watch(last_event_id="999999999")
        ev = next(far)
        far.close()
        self.assertTrue(ev.is_reset)
        self.assertIn("missed", ev.message)


class AsyncWatch(unittest.TestCase):
    def test_async_for(self) -> None:
        async def scenario() -> None:
            n = node()
            _, owner_key = new_agent("aowner")
            reader, reader_key = new_agent("areader")
            async with artmesh.AsyncClient(api_key=owner_key, base_url=n.url) as oc, artmesh.AsyncClient(
                api_key=reader_key, base_url=n.url
            ) as rc:
                got: list[artmesh.Event] = []
                ready = asyncio.Event()
                a = await oc.artifact.create(unique("a"), b"1")
                await oc.artifact.share(a.id, with_agents=[reader])
                first = [ev async for ev in _take(rc.artifact.watch(artifact_id=a.id, last_event_id="0"), 1)]
                start = int(first[0].id)
                task = asyncio.create_task(watcher_from(rc, start, got, ready))
                await oc.artifact.update(a.id, b"2")
                await oc.artifact.delete_version(a.id, 1)
                await oc.artifact.delete(a.id)
                await asyncio.wait_for(ready.wait(), 15)
                await task
                self.assertEqual(
                    [_short(e) for e in got],
                    [f"artifact.updated {a.id} v2", f"version.deleted {a.id} v1", f"artifact.deleted {a.id} v2"],
                )

                # A cancelled watcher stops at once, blocked or not.
                idle = asyncio.create_task(_drain(rc.artifact.watch()))
                await asyncio.sleep(0.3)
                t0 = time.monotonic()
                idle.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await idle
                self.assertLess(time.monotonic() - t0, 2.0)

        asyncio.run(scenario())


async def _take(it, n: int):
    i = 0
    async for ev in it:
        yield ev
        i += 1
        if i == n:
            return


async def _drain(it) -> None:
    async for _ in it:
        pass


async def watcher_from(rc, start: int, got: list, ready: asyncio.Event) -> None:
    async for ev in rc.artifact.watch(last_event_id=str(start)):
        got.append(ev)
        if len(got) == 3:
            ready.set()
            return

