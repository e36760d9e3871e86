"""client.agents, client.groups, client.mesh, client.pins, client.repo and the node calls, sync and async."""

from __future__ import annotations

import asyncio

import time
from datetime import datetime, timezone

import artmesh

from .support import modes, new_agent, unique


@modes
class AdminCalls:
    def test_agents(self) -> None:
        async def scenario() -> None:
            admin = self.client()
            g = unique("team")
            aid = unique("bot")
            k = await self.aw(admin.agents.create(aid, groups=[g]))
            self.assertIsInstance(k, artmesh.AgentKey)
            self.assertEqual((k.id, k.groups, k.admin), (aid, [g], False))
            self.assertRegex(k.api_key, r"^amk_[a-z2-7]{52}$")
            self.assertNotIn(k.api_key, repr(k))
            self.assertLess(abs((datetime.now(timezone.utc) - k.created_at).total_seconds()), 60)
            listed = {a.id: a for a in await self.aw(admin.agents.list())}
            self.assertEqual((listed[aid].groups, listed[aid].admin, listed[aid].created_at), ([g], False, k.created_at))
            self.assertTrue(listed["admin"].admin)
            self.assertNotIsInstance(listed[aid], artmesh.AgentKey)

            bot = self.client(k.api_key)
            self.assertEqual((await self.aw(bot.artifact.list())).total, 0)
            e = await self.raises(artmesh.PermissionDeniedError, lambda: bot.agents.list())
            self.assertEqual((e.status, e.code), (403, "permission_denied"))

            k2 = await self.aw(admin.agents.rotate(aid))
            self.assertEqual(k2.id, aid)
            self.assertNotEqual(k2.api_key, k.api_key)
            e = await self.raises(artmesh.UnauthenticatedError, lambda: bot.artifact.list())
            self.assertEqual((e.status, e.code), (401, "unauthenticated"))
            bot2 = self.client(k2.api_key)
            self.assertEqual((await self.aw(bot2.artifact.list())).total, 0)

            boss = unique("boss")
            kb = await self.aw(admin.agents.create(boss, admin=True))
            self.assertTrue(kb.admin)
            self.assertEqual(kb.groups, [])
            self.assertIn(aid, [a.id for a in await self.aw(self.client(kb.api_key).agents.list())])

            await self.aw(admin.agents.delete(aid))
            self.assertNotIn(aid, [a.id for a in await self.aw(admin.agents.list())])
            e = await self.raises(artmesh.UnauthenticatedError, lambda: bot2.artifact.list())
            self.assertEqual(e.status, 401)
            e = await self.raises(artmesh.NotFoundError, lambda: admin.agents.delete(aid))
            self.assertEqual((e.status, e.code), (404, "not_found"))
            e = await self.raises(artmesh.ConflictError, lambda: admin.agents.create(boss))
            self.assertEqual((e.status, e.code), (409, "conflict"))
            e = await self.raises(artmesh.InvalidArgumentError, lambda: admin.agents.create("bad id!"))
            self.assertEqual((e.status, e.code), (400, "invalid_argument"))

        self.run_scenario(scenario)

    def test_groups(self) -> None:
        async def scenario() -> None:
            admin = self.client()
            a1, _ = new_agent("g1")
            a2, _ = new_agent("g2")
            name = unique("grp")
            g = await self.aw(admin.groups.create(name, members=[a2, a1]))
            self.assertEqual(g, artmesh.Group(name, sorted([a1, a2])))
            self.assertIn(g, await self.aw(admin.groups.list()))
            g = await self.aw(admin.groups.set_members(name, [a1]))
            self.assertEqual(g.members, [a1])
            empty = await self.aw(admin.groups.create(unique("empty")))
            self.assertEqual(empty.members, [])
            e = await self.raises(artmesh.InvalidArgumentError, lambda: admin.groups.set_members(name, ["no-such-agent-" + name]))
            self.assertEqual((e.status, e.code), (400, "invalid_argument"))
            await self.aw(admin.groups.delete(name))
            self.assertNotIn(name, [x.name for x in await self.aw(admin.groups.list())])
            e = await self.raises(artmesh.NotFoundError, lambda: admin.groups.delete(name))
            self.assertEqual((e.status, e.code), (404, "not_found"))

        self.run_scenario(scenario)

    def test_node_mesh_policy(self) -> None:
        async def scenario() -> None:
            admin = self.client()
            info = await self.aw(admin.node())
            self.assertIsInstance(info, artmesh.NodeInfo)
            self.assertEqual(info.api_url, self.node.url)
            self.assertTrue(info.peer_id.startswith("12D3KooW"))
            self.assertTrue(all(a.endswith("/p2p/" + info.peer_id) for a in info.addresses) and info.addresses)
            self.assertIsNotNone(info.started_at.tzinfo)
            self.assertIs(await self.aw(admin.ready()), True)
            doc = await self.aw(admin.openapi())
            self.assertEqual(doc["info"]["x-artmesh-api-version"], "1")

            ms = await self.aw(admin.mesh.members())
            self.assertEqual(len(ms), 1)
            m = ms[0]
            self.assertEqual((m.peer_id, m.role, m.reachable, m.leader, m.api_url), (info.peer_id, "voter", True, True, self.node.url))

            inv = await self.aw(admin.mesh.invite(expires_in=600))
            self.assertTrue(inv.ticket.startswith("artmesh1"))
            left = (inv.expires_at - datetime.now(timezone.utc)).total_seconds()
            self.assertTrue(590 < left <= 601, left)
            _, key = new_agent("plain")
            user = self.client(key)
            e = await self.raises(artmesh.PermissionDeniedError, lambda: user.mesh.invite())
            self.assertEqual((e.status, e.code), (403, "permission_denied"))
            self.assertEqual([x.peer_id for x in await self.aw(user.mesh.members())], [info.peer_id])

            e = await self.raises(artmesh.NotFoundError, lambda: admin.mesh.remove("12D3KooWNotAMember"))
            self.assertEqual((e.status, e.code), (404, "not_found"))
            e = await self.raises(artmesh.ConflictError, lambda: admin.mesh.remove(info.peer_id))
            self.assertEqual((e.status, e.code, e.message), (409, "conflict", "the last member cannot leave its own mesh"))

            before = await self.aw(admin.mesh.policy())
            self.assertIsInstance(before, artmesh.Policy)
            # A factor is at most the number of members: here 1 (a new mesh says 2 until it has them).
            p = await self.aw(admin.mesh.set_policy(replication_factor=1))
            self.assertEqual(p, artmesh.Policy(1, before.write_replicas))
            p = await self.aw(admin.mesh.set_policy(write_replicas=1))
            self.assertEqual(p, artmesh.Policy(1, 1))
            self.assertEqual(await self.aw(user.mesh.policy()), p)
            e = await self.raises(artmesh.InvalidArgumentError, lambda: admin.mesh.set_policy(replication_factor=2))
            self.assertEqual((e.status, e.code), (400, "invalid_argument"))
            self.assertIn("more than the 1 members", e.message)
            e = await self.raises(artmesh.PermissionDeniedError, lambda: user.mesh.set_policy(write_replicas=1))
            self.assertEqual((e.status, e.code), (403, "permission_denied"))
            self.assertEqual(await self.aw(admin.mesh.policy()), artmesh.Policy(1, 1))

        self.run_scenario(scenario)

    def test_quotas(self) -> None:
        async def scenario() -> None:
            admin = self.client()
            aid, key = new_agent("quota")
            user = self.client(key)
            self.assertEqual((await self.aw(admin.node())).agent, "admin")
            self.assertEqual((await self.aw(user.node())).agent, aid)
            st = await self.aw(user.agents.quota(aid))
            self.assertIsInstance(st, artmesh.QuotaStatus)
            self.assertEqual((st.agent, st.admin, st.usage), (aid, False, artmesh.Usage()))
            st = await self.aw(admin.agents.set_quota(aid, max_bytes=10, max_uploads=1))
            self.assertEqual(st.override, artmesh.Quota(bytes=10, uploads=1))
            self.assertEqual((st.limits.bytes, st.limits.uploads), (10, 1))
            e = await self.raises(artmesh.QuotaExceededError, lambda: user.artifact.create_snippet(unique("s"), "x" * 20))
            self.assertEqual((e.status, e.code), (507, "quota_exceeded"))
            e = await self.raises(artmesh.PermissionDeniedError, lambda: user.agents.set_quota(aid, max_bytes=-1))
            self.assertEqual((e.status, e.code), (403, "permission_denied"))
            st = await self.aw(admin.agents.set_quota(aid, max_bytes=0, max_uploads=-1))
            self.assertEqual((st.override, st.limits.bytes, st.limits.uploads), (artmesh.Quota(uploads=-1), -1, -1))

            before = await self.aw(admin.mesh.quota())
            self.assertIsInstance(before, artmesh.Quota)
            try:
                q = await self.aw(admin.mesh.set_quota(max_streams=50))
                self.assertEqual(q.streams, 50)
                self.assertEqual(await self.aw(user.mesh.quota()), q)
                self.assertEqual((await self.aw(user.agents.quota(aid))).limits.streams, 50)
                e = await self.raises(artmesh.PermissionDeniedError, lambda: user.mesh.set_quota(max_streams=1))
                self.assertEqual((e.status, e.code), (403, "permission_denied"))
            finally:
                await self.aw(admin.mesh.set_quota(max_streams=before.streams))

        self.run_scenario(scenario)

    def test_pins_and_repo(self) -> None:
        async def scenario() -> None:
            admin = self.client()
            _, key = new_agent("pinner")
            c = self.client(key)
            a = await self.aw(c.artifact.create("pinned.bin", b"keep me"))
            await self.aw(c.artifact.update(a.id, b"keep me too"))
            p = await self.aw(c.pins.add(a.id, version=1))
            self.assertIsInstance(p, artmesh.Pin)
            self.assertEqual((p.artifact_id, p.version, p.size_bytes), (a.id, 1, 7))
            self.assertIn(p.state, ("queued", "fetching", "pinned"))
            p2 = await self.aw(c.pins.add(a.id))
            self.assertEqual(p2.version, 2)
            deadline = time.monotonic() + 20
            while True:
                mine = [x for x in await self.aw(c.pins.list()) if x.artifact_id == a.id]
                if [(x.version, x.state) for x in mine] == [(1, "pinned"), (2, "pinned")] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            self.assertEqual([(x.version, x.state, x.bytes_done, x.error) for x in mine], [(1, "pinned", 7, ""), (2, "pinned", 11, "")])
            await self.aw(c.pins.remove(a.id, version=1))
            self.assertEqual([x.version for x in await self.aw(c.pins.list()) if x.artifact_id == a.id], [2])
            await self.aw(c.pins.remove(a.id))
            self.assertEqual([x for x in await self.aw(c.pins.list()) if x.artifact_id == a.id], [])
            e = await self.raises(artmesh.NotFoundError, lambda: c.pins.add("art_00000000000000000000000000"))
            self.assertEqual((e.status, e.code), (404, "not_found"))

            st = await self.aw(admin.repo.stat())
            self.assertIsInstance(st, artmesh.RepoStat)
            self.assertTrue(st.blocks >= 2 and st.bytes >= 18 and st.packs >= 1, st)
            self.assertTrue(st.path.startswith(self.node.repo), st.path)
            gc = await self.aw(admin.repo.gc())
            self.assertIsInstance(gc, artmesh.GCResult)
            self.assertTrue(min(gc.blocks_removed, gc.bytes_removed, gc.packs_removed, gc.disk_bytes_freed, gc.duration_ms) >= 0)
            e = await self.raises(artmesh.PermissionDeniedError, lambda: c.repo.stat())
            self.assertEqual((e.status, e.code), (403, "permission_denied"))
            e = await self.raises(artmesh.PermissionDeniedError, lambda: c.repo.gc())
            self.assertEqual(e.status, 403)
            self.assertEqual(await self.aw(c.artifact.download(a.id)), b"keep me too")

        self.run_scenario(scenario)



