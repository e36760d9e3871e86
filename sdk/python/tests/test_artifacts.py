"""client.artifact against a real node, each scenario with the sync Client and with the AsyncClient."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import artmesh

from .support import CuttingProxy, modes, new_agent, unique


def _aware_now(test, t: datetime) -> None:
    test.assertIsNotNone(t.tzinfo)
    test.assertEqual(t.utcoffset(), timedelta(0))
    test.assertLess(abs((datetime.now(timezone.utc) - t).total_seconds()), 120)


@modes
class ArtifactCalls:
    """Every call of client.artifact, with exact outcomes."""

    def test_create_get_download(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("creator")
            c = self.client(key)
            a = await self.aw(c.artifact.create("report.txt", b"hello world", metadata={"quarter": "Q4", "year": 2025, "who": "é"}))
            self.assertIsInstance(a, artmesh.Artifact)
            self.assertTrue(a.id.startswith("art_"))
            self.assertEqual((a.name, a.content_type, a.size_bytes, a.version), ("report.txt", "text/plain", 11, 1))
            self.assertEqual(a.metadata, {"quarter": "Q4", "year": 2025, "who": "é"})
            self.assertTrue(a.cid.startswith("baf"))
            _aware_now(self, a.created_at)
            self.assertEqual(a.created_at, a.updated_at)
            got = await self.aw(c.artifact.get(a.id))
            self.assertEqual(got, a)
            self.assertEqual(await self.aw(c.artifact.download(a.id)), b"hello world")

            # Every kind of data: text, a file, an iterable (chunked), an explicit type.
            t = await self.aw(c.artifact.create("note", "grüße", content_type="text/plain; charset=utf-8"))
            self.assertEqual((t.content_type, t.size_bytes), ("text/plain; charset=utf-8", len("grüße".encode())))
            self.assertEqual(await self.aw(c.artifact.download(t.id)), "grüße".encode())
            with tempfile.TemporaryFile() as f:
                f.write(b"skip-" + b"x" * 300_000)
                f.seek(5)
                fa = await self.aw(c.artifact.create("data.json", f))
            self.assertEqual((fa.size_bytes, fa.content_type), (300_000, "application/json"))
            self.assertEqual(await self.aw(c.artifact.download(fa.id)), b"x" * 300_000)
            it = await self.aw(c.artifact.create("chunks.bin", iter([b"ab", b"", b"cd" * 1000])))
            self.assertEqual((it.size_bytes, it.content_type), (2002, "application/octet-stream"))
            self.assertEqual(await self.aw(c.artifact.download(it.id)), b"ab" + b"cd" * 1000)
            bio = await self.aw(c.artifact.create("bio", io.BytesIO(b"in memory")))
            self.assertEqual(await self.aw(c.artifact.download(bio.id)), b"in memory")
            empty = await self.aw(c.artifact.create("empty", b""))
            self.assertEqual(empty.size_bytes, 0)
            self.assertEqual(await self.aw(c.artifact.download(empty.id)), b"")

        self.run_scenario(scenario)

    def test_keys_and_conditions(self) -> None:
        async def scenario() -> None:
            me, key = new_agent("keys")
            c = self.client(key)
            k = unique("key")
            a = await self.aw(c.artifact.create("k.txt", b"one", idempotency_key=k))
            b = await self.aw(c.artifact.create("k.txt", b"one", idempotency_key=k))
            self.assertEqual((a.id, a.created_at), (b.id, b.created_at))
            self.assertEqual(len(await self.aw(c.artifact.list(name="k.txt"))), 1)
            e = await self.raises(artmesh.IdempotencyKeyReusedError, lambda: c.artifact.create("k.txt", b"two", idempotency_key=k))
            self.assertEqual((e.status, e.code), (422, "idempotency_key_reused"))
            # If-None-Match: * on a taken name.
            e = await self.raises(artmesh.PreconditionFailedError, lambda: c.artifact.create("k.txt", b"x", if_none_match=True))
            self.assertEqual((e.status, e.code), (412, "precondition_failed"))
            # If-Match: the version the change was made from.
            u = await self.aw(c.artifact.update(a.id, b"v2", if_match=a.cid))
            self.assertEqual(u.version, 2)
            await self.raises(artmesh.PreconditionFailedError, lambda: c.artifact.update(a.id, b"v3", if_match=a.cid))
            await self.raises(artmesh.PreconditionFailedError, lambda: c.artifact.delete(a.id, if_match=a.cid))
            await self.aw(c.artifact.delete(a.id, if_match=u.cid, idempotency_key=k + "-rm"))
            # Sent again with its key, the delete answers as it did.
            await self.aw(c.artifact.delete(a.id, if_match=u.cid, idempotency_key=k + "-rm"))
            # Without its condition it is another request.
            await self.raises(artmesh.IdempotencyKeyReusedError, lambda: c.artifact.delete(a.id, idempotency_key=k + "-rm"))
            await self.raises(artmesh.NotFoundError, lambda: c.artifact.delete(a.id))
            # Content sent from memory carries its digest, which the node records.
            d = await self.aw(c.artifact.create("d.txt", b"digest me"))
            self.assertEqual(d.sha256, hashlib.sha256(b"digest me").hexdigest())
            # Into a folder that does not exist yet: it is made.
            path = os.path.join(tempfile.mkdtemp(), "out", "deeper", "d.txt")
            await self.aw(c.artifact.download_file(d.id, path))
            with open(path, "rb") as fh:
                self.assertEqual(fh.read(), b"digest me")
            # An existing file is kept unless overwrite=True.
            with open(path, "wb") as fh:
                fh.write(b"mine")
            await self.raises(FileExistsError, lambda: c.artifact.download_file(d.id, path))
            with open(path, "rb") as fh:
                self.assertEqual(fh.read(), b"mine")
            await self.aw(c.artifact.download_file(d.id, path, overwrite=True))
            with open(path, "rb") as fh:
                self.assertEqual(fh.read(), b"digest me")

        self.run_scenario(scenario)

    def test_create_survives_a_lost_answer(self) -> None:
        # A proxy drops the connection as the node's answer to the first
        # create arrives: the write reached the catalog, the answer did not
        # reach the client. The SDK sends the create again with the same
        # Idempotency-Key and gets the first answer: one artifact.
        async def scenario() -> None:
            me, key = new_agent("lost")
            proxy = CuttingProxy(self.node.port, cut_after=0)
            self.addCleanup(proxy.close)
            c = self.client(key, base_url=proxy.url)
            name = unique("lost-answer")
            a = await self.aw(c.artifact.create(name, b"once"))
            self.assertTrue(proxy.cut_done)
            posts = [r for r in proxy.requests if r.startswith(b"POST /v1/artifacts")]
            self.assertEqual(len(posts), 2, posts)
            keys = [re.search(rb"\r\nIdempotency-Key: (\S+)", r) for r in posts]
            self.assertTrue(all(keys), posts)
            self.assertEqual(keys[0].group(1), keys[1].group(1))  # type: ignore[union-attr]
            listed = await self.aw(self.client(key).artifact.list(name=name))
            self.assertEqual([x.id for x in listed], [a.id])

        self.run_scenario(scenario)

    def test_snippet_update_versions(self) -> None:
        async def scenario() -> None:
            me, key = new_agent("versions")
            c = self.client(key)
            s = await self.aw(c.artifact.create_snippet("config.json", {"rows": [1, 2, 3], "ok": True}, metadata={"kind": "cfg"}))
            self.assertEqual((s.content_type, s.version, s.metadata), ("application/json", 1, {"kind": "cfg"}))
            self.assertEqual(await self.aw(c.artifact.download(s.id)), b'{"rows":[1,2,3],"ok":true}')
            scalar = await self.aw(c.artifact.create_snippet("n.json", 42))
            self.assertEqual(await self.aw(c.artifact.download(scalar.id)), b"42")

            u = await self.aw(c.artifact.update(s.id, b'{"rows":[4]}', metadata={"status": "final", "kind": None}))
            self.assertEqual((u.id, u.version, u.size_bytes, u.content_type), (s.id, 2, 12, "application/json"))
            self.assertEqual(u.metadata, {"status": "final"})
            self.assertEqual(u.created_at, s.created_at)
            self.assertGreater(u.updated_at, s.updated_at)
            u3 = await self.aw(c.artifact.update(s.id, "plain", content_type="text/plain"))
            self.assertEqual((u3.version, u3.content_type), (3, "text/plain"))

            vs = await self.aw(c.artifact.list_versions(s.id))
            self.assertEqual([v.version for v in vs], [1, 2, 3])
            self.assertTrue(all(isinstance(v, artmesh.Version) for v in vs))
            self.assertEqual([v.parent for v in vs], [None, 1, 2])
            self.assertEqual([v.size_bytes for v in vs], [26, 12, 5])
            self.assertEqual([v.content_type for v in vs], ["application/json", "application/json", "text/plain"])
            self.assertEqual(vs[0].metadata, {"kind": "cfg"})
            self.assertEqual(vs[1].metadata, {"status": "final"})
            self.assertEqual(vs[0].cid, s.cid)
            self.assertEqual([v.created_by for v in vs], [me, me, me])
            for v in vs:
                _aware_now(self, v.created_at)

            self.assertEqual(await self.aw(c.artifact.download(s.id, version=1)), b'{"rows":[1,2,3],"ok":true}')
            self.assertEqual(await self.aw(c.artifact.download(s.id, version=2)), b'{"rows":[4]}')
            self.assertEqual(await self.aw(c.artifact.download(s.id)), b"plain")

            await self.aw(c.artifact.delete_version(s.id, 3))
            cur = await self.aw(c.artifact.get(s.id))
            self.assertEqual((cur.version, cur.size_bytes), (2, 12))
            self.assertEqual([v.version for v in await self.aw(c.artifact.list_versions(s.id))], [1, 2])
            await self.aw(c.artifact.delete(s.id))
            e = await self.raises(artmesh.NotFoundError, lambda: c.artifact.get(s.id))
            self.assertEqual((e.status, e.code), (404, "not_found"))

        self.run_scenario(scenario)

    def test_list_filters_paging_iter_all(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("lister")
            c = self.client(key)
            ids = []
            for i in range(5):
                a = await self.aw(
                    c.artifact.create(f"item-{i}.txt", f"n{i}".encode(), metadata={"year": 2024 + i % 2, "i": str(i), "tags": ["a"]})
                )
                ids.append(a.id)
            await self.aw(c.artifact.create("other.bin", b"x", content_type="application/x-other"))

            page = await self.aw(c.artifact.list())
            self.assertIsInstance(page, artmesh.ArtifactList)
            self.assertIsInstance(page, list)
            self.assertEqual((page.total, page.limit, page.offset, len(page), page.next_cursor), (6, 50, 0, 6, None))

            y = await self.aw(c.artifact.list(metadata_filter={"year": 2025}))
            self.assertEqual([a.id for a in y], [ids[3], ids[1]])  # newest first
            self.assertEqual(y.total, None)  # filtered: not counted
            both = await self.aw(c.artifact.list(metadata_filter={"year": 2024, "i": "2"}))
            self.assertEqual([a.id for a in both], [ids[2]])
            tags = await self.aw(c.artifact.list(metadata_filter={"tags": ["a"]}))
            self.assertEqual(len(tags), 5)
            self.assertEqual([a.id for a in await self.aw(c.artifact.list(name="item-4.txt"))], [ids[4]])
            ct = await self.aw(c.artifact.list(content_type="application/x-other"))
            self.assertEqual([a.name for a in ct], ["other.bin"])

            p2 = await self.aw(c.artifact.list(metadata_filter={"tags": ["a"]}, limit=2, offset=2))
            self.assertEqual(([a.id for a in p2], p2.total, p2.limit, p2.offset), ([ids[2], ids[1]], None, 2, 2))
            past = await self.aw(c.artifact.list(limit=2, offset=10))
            self.assertEqual((len(past), past.total, past.next_cursor), (0, 6, None))

            # Cursor paging: each page starts after the previous one's last
            # artifact, so deleting one meanwhile neither skips nor repeats.
            c1 = await self.aw(c.artifact.list(metadata_filter={"tags": ["a"]}, limit=2))
            self.assertEqual(([a.id for a in c1], c1.total), ([ids[4], ids[3]], None))
            self.assertTrue(c1.next_cursor)
            await self.aw(c.artifact.delete(ids[3]))
            c2 = await self.aw(c.artifact.list(metadata_filter={"tags": ["a"]}, limit=2, cursor=c1.next_cursor))
            self.assertEqual([a.id for a in c2], [ids[2], ids[1]])
            c3 = await self.aw(c.artifact.list(metadata_filter={"tags": ["a"]}, limit=2, cursor=c2.next_cursor))
            self.assertEqual(([a.id for a in c3], c3.next_cursor), ([ids[0]], None))
            e = await self.raises(artmesh.InvalidArgumentError, lambda: c.artifact.list(cursor="nonsense"))
            self.assertEqual(e.status, 400)
            ids.remove(ids[3])

            every = await self.collect(c.artifact.iter_all(metadata_filter={"tags": ["a"]}, page_size=2))
            self.assertEqual([a.id for a in every], list(reversed(ids)))
            self.assertEqual(len(await self.collect(c.artifact.iter_all(page_size=4))), 5)
            self.assertEqual(await self.collect(c.artifact.iter_all(name="none-such")), [])

        self.run_scenario(scenario)

    def test_share_unshare_access_list_shared(self) -> None:
        async def scenario() -> None:
            group = unique("readers")
            owner_id, owner_key = new_agent("owner")
            friend_id, friend_key = new_agent("friend")
            member_id, member_key = new_agent("member", groups=(group,))
            owner = self.client(owner_key)
            friend = self.client(friend_key)
            member = self.client(member_key)
            a = await self.aw(owner.artifact.create("shared.txt", b"for you", metadata={"topic": "x"}))
            b = await self.aw(owner.artifact.create("private.txt", b"mine"))

            self.assertEqual(await self.aw(owner.artifact.get_access(a.id)), artmesh.Access(owner_id, [], []))
            acc = await self.aw(owner.artifact.share(a.id, with_agents=[friend_id], with_groups=[group]))
            self.assertEqual(acc, artmesh.Access(owner_id, [friend_id], [group]))
            self.assertEqual(await self.aw(owner.artifact.get_access(a.id)), acc)

            for reader in (friend, member):
                shared = await self.aw(reader.artifact.list_shared())
                self.assertEqual(([x.id for x in shared], shared.total, shared.next_cursor), ([a.id], None, None))
                self.assertEqual(shared[0].owner, owner_id)
                self.assertEqual(await self.aw(reader.artifact.download(a.id)), b"for you")
                e = await self.raises(artmesh.NotFoundError, lambda: reader.artifact.get(b.id))
                self.assertEqual((e.status, e.code), (404, "not_found"))
            filt = await self.aw(friend.artifact.list_shared(metadata_filter={"topic": "x"}, name="shared.txt", limit=1, offset=0))
            self.assertEqual([x.id for x in filt], [a.id])
            self.assertEqual(len(await self.aw(friend.artifact.list_shared(metadata_filter={"topic": "y"}))), 0)
            self.assertEqual([x.id for x in await self.collect(member.artifact.iter_all(shared=True))], [a.id])
            # Shared with it, it may read but not change: 403.
            e = await self.raises(artmesh.PermissionDeniedError, lambda: friend.artifact.update(a.id, b"mine now"))
            self.assertEqual((e.status, e.code), (403, "permission_denied"))

            acc = await self.aw(owner.artifact.unshare(a.id, agents=[friend_id]))
            self.assertEqual(acc, artmesh.Access(owner_id, [], [group]))
            self.assertEqual(len(await self.aw(friend.artifact.list_shared())), 0)
            await self.raises(artmesh.NotFoundError, lambda: friend.artifact.download(a.id))
            self.assertEqual(await self.aw(member.artifact.download(a.id)), b"for you")
            acc = await self.aw(owner.artifact.unshare(a.id, groups=group))
            self.assertEqual(acc, artmesh.Access(owner_id, [], []))
            await self.raises(artmesh.NotFoundError, lambda: member.artifact.download(a.id))

        self.run_scenario(scenario)

    def test_signed_urls(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("signer")
            c = self.client(key)
            a = await self.aw(c.artifact.create("doc.bin", b"v1 bytes"))
            await self.aw(c.artifact.update(a.id, b"v2 bytes"))

            url = await self.aw(c.artifact.get_signed_url(a.id))
            self.assertIsInstance(url, str)
            self.assertTrue(url.startswith(self.node.url + "/v1/cap/"), url)
            # Plain urllib, no key.
            with urllib.request.urlopen(url, timeout=10) as r:
                self.assertEqual((r.status, r.read()), (200, b"v2 bytes"))
                self.assertEqual(r.headers["ETag"], f'"{(await self.aw(c.artifact.get(a.id))).cid}"')
            v1 = await self.aw(c.artifact.get_signed_url(a.id, expires_in=600, version=1))
            with urllib.request.urlopen(v1, timeout=10) as r:
                self.assertEqual(r.read(), b"v1 bytes")
            self.assertEqual(await self.aw(c.artifact.download_signed_url(v1)), b"v1 bytes")

            s = await self.aw(c.artifact.create_signed_url(a.id, expires_in=120))
            self.assertIsInstance(s, artmesh.SignedURL)
            self.assertTrue(s.token_id.startswith("tok_"))
            self.assertIn(s.token, s.url)
            remaining = (s.expires_at - datetime.now(timezone.utc)).total_seconds()
            self.assertTrue(100 < remaining <= 121, remaining)
            self.assertEqual(await self.aw(c.artifact.download_signed_url(s.url)), b"v2 bytes")
            await self.aw(c.artifact.revoke_signed_url(s.token_id))
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(s.url, timeout=10)
            self.assertEqual(cm.exception.code, 403)
            self.assertEqual(json.loads(cm.exception.read())["error"]["code"], "permission_denied")
            e = await self.raises(artmesh.PermissionDeniedError, lambda: c.artifact.download_signed_url(s.url))
            self.assertEqual((e.status, e.code), (403, "permission_denied"))

        self.run_scenario(scenario)

    def test_upload_url_put_with_urllib_then_confirm(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("uploader")
            c = self.client(key)
            data = os.urandom(300_000)
            up = await self.aw(c.artifact.get_upload_url("blob.bin", "application/x-blob", size_bytes=len(data), metadata={"src": "urllib"}))
            self.assertIsInstance(up, artmesh.Upload)
            self.assertTrue(up.id.startswith("upl_"))
            self.assertTrue(up.url.startswith(f"{self.node.url}/v1/uploads/{up.id}/content?token="), up.url)
            remaining = (up.expires_at - datetime.now(timezone.utc)).total_seconds()
            self.assertTrue(86000 < remaining <= 86401, remaining)
            self.assertEqual((up.state, up.size_bytes, up.received_bytes), ("open", len(data), 0))

            # Before every byte is there, a confirm is a conflict.
            e = await self.raises(artmesh.ConflictError, lambda: c.artifact.confirm_upload(up.id))
            self.assertEqual((e.status, e.code), (409, "conflict"))
            # A plain PUT, no key: first half, then the rest with Content-Range.
            req = urllib.request.Request(up.url, data=data[:100_000], method="PUT", headers={"Content-Range": f"bytes 0-99999/{len(data)}"})
            with urllib.request.urlopen(req, timeout=30) as r:
                self.assertEqual((r.status, r.headers["Upload-Offset"]), (200, "100000"))
            head = urllib.request.Request(up.url, method="HEAD")
            with urllib.request.urlopen(head, timeout=30) as r:
                self.assertEqual((r.headers["Upload-Offset"], r.headers["Upload-Length"]), ("100000", str(len(data))))
            st = await self.aw(c.artifact.get_upload(up.id))
            self.assertEqual((st.state, st.received_bytes, st.url), ("open", 100_000, None))
            req = urllib.request.Request(
                up.url, data=data[100_000:], method="PUT", headers={"Content-Range": f"bytes 100000-{len(data) - 1}/{len(data)}"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                body = json.loads(r.read())
                self.assertEqual((r.status, body["state"], body["received_bytes"]), (200, "received", len(data)))

            bad = await self.raises(artmesh.InvalidArgumentError, lambda: c.artifact.confirm_upload(up.id, "0" * 64))
            self.assertEqual((bad.status, bad.code), (400, "checksum_mismatch"))
            a = await self.aw(c.artifact.confirm_upload(up.id, hashlib.sha256(data).hexdigest()))
            self.assertEqual((a.name, a.content_type, a.size_bytes, a.version, a.metadata), ("blob.bin", "application/x-blob", len(data), 1, {"src": "urllib"}))
            self.assertEqual(await self.aw(c.artifact.download(a.id)), data)
            st = await self.aw(c.artifact.get_upload(up.id))
            self.assertEqual((st.state, st.artifact_id), ("confirmed", a.id))

            # An upload URL for a new version of it, confirmed without a hash.
            up2 = await self.aw(c.artifact.get_upload_url("", size_bytes=3, artifact_id=a.id, metadata={"v": 2}))
            req = urllib.request.Request(up2.url, data=b"new", method="PUT")
            with urllib.request.urlopen(req, timeout=30) as r:
                self.assertEqual(r.status, 200)
            a2 = await self.aw(c.artifact.confirm_upload(up2.id))
            self.assertEqual((a2.id, a2.version, a2.size_bytes, a2.content_type, a2.metadata), (a.id, 2, 3, "application/x-blob", {"src": "urllib", "v": 2}))

            # An abandoned upload is gone, and its URL with it.
            up3 = await self.aw(c.artifact.get_upload_url("gone", size_bytes=5, expires_in=60))
            self.assertTrue(50 < (up3.expires_at - datetime.now(timezone.utc)).total_seconds() <= 61)
            await self.aw(c.artifact.abort_upload(up3.id))
            e = await self.raises(artmesh.NotFoundError, lambda: c.artifact.get_upload(up3.id))
            self.assertEqual((e.status, e.code), (404, "not_found"))
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(urllib.request.Request(up3.url, data=b"12345", method="PUT"), timeout=10)
            self.assertEqual(cm.exception.code, 404)

        self.run_scenario(scenario)

    def test_replication_and_placement(self) -> None:
        async def scenario() -> None:
            _, key = new_agent("placer")
            c = self.client(key)
            peer = (await self.aw(c.node())).peer_id
            a = await self.aw(c.artifact.create("placed", b"abc"))
            await self.aw(c.artifact.update(a.id, b"abcd"))
            self.assertEqual(await self.aw(c.artifact.set_replication(a.id, 1)), 1)
            ps = await self.aw(c.artifact.get_placement(a.id))
            self.assertEqual([(p.version, p.factor, p.holders, p.state) for p in ps], [(1, 1, [peer], "ok"), (2, 1, [peer], "ok")])
            self.assertTrue(all(isinstance(p, artmesh.VersionPlacement) for p in ps))
            self.assertEqual(ps[1].cid, (await self.aw(c.artifact.get(a.id))).cid)
            # Back to the mesh policy's factor, capped by the one member there is.
            self.assertEqual(await self.aw(c.artifact.set_replication(a.id, 0)), 0)
            self.assertEqual([p.factor for p in await self.aw(c.artifact.get_placement(a.id))], [1, 1])

            # ?replicas=N on a write that one node cannot satisfy: 503, nothing recorded.
            n = unique("replicated")
            c0 = self.client(key, max_retries=0)
            e = await self.raises(artmesh.UnavailableError, lambda: c0.artifact.create(n, b"x", replicas=2))
            self.assertEqual((e.status, e.code), (503, "unavailable"))
            e = await self.raises(artmesh.UnavailableError, lambda: c0.artifact.create_snippet(n, [1], replicas=2))
            e = await self.raises(artmesh.UnavailableError, lambda: c0.artifact.update(a.id, b"never", replicas=3))
            self.assertEqual(len(await self.aw(c.artifact.list(name=n))), 0)
            self.assertEqual((await self.aw(c.artifact.get(a.id))).version, 2)
            ok = await self.aw(c.artifact.create(n, b"x", replicas=1))
            self.assertEqual(ok.version, 1)

        self.run_scenario(scenario)

