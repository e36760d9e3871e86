"""Finding the node and the key as the CLI does (cmd/artmesh/config.go)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import unittest
from unittest import mock

import artmesh
from artmesh._config import DEFAULT_API_URL, addr_url, cache_dir, find_api_key, find_base_url, normalize_url, repo_dir

from .support import node


class Lookup(unittest.TestCase):
    def setUp(self) -> None:
        self.repo = tempfile.mkdtemp(prefix="artmesh-sdk-cfg-")
        self.addCleanup(shutil.rmtree, self.repo, True)

    def write(self, name: str, text: str) -> None:
        with open(os.path.join(self.repo, name), "w") as f:
            f.write(text)

    def test_base_url_order(self) -> None:
        env = {"ARTMESH_PATH": self.repo}
        self.assertEqual(find_base_url(None, env), DEFAULT_API_URL)
        self.write("config.json", json.dumps({"api_addr": "0.0.0.0:7600"}))
        self.assertEqual(find_base_url(None, env), "http://127.0.0.1:7600")
        self.write("config.json", json.dumps({"api_addr": ""}))
        self.assertEqual(find_base_url(None, env), DEFAULT_API_URL)
        self.write("config.json", json.dumps({"api_addr": "[::]:7601"}))
        self.assertEqual(find_base_url(None, env), "http://[::1]:7601")
        self.write("api.addr", "127.0.0.1:45123\n")  # a running daemon's real address wins over its config
        self.assertEqual(find_base_url(None, env), "http://127.0.0.1:45123")
        self.assertEqual(find_base_url(None, dict(env, ARTMESH_API="localhost:9000")), "http://localhost:9000")
        self.assertEqual(find_base_url(None, dict(env, ARTMESH_API="https://mesh.example:8443/")), "https://mesh.example:8443")
        self.assertEqual(find_base_url("http://10.1.2.3:1/", dict(env, ARTMESH_API="localhost:9000")), "http://10.1.2.3:1")
        with self.assertRaises(ValueError):
            find_base_url(None, dict(env, ARTMESH_API="ftp://x"))
        self.write("api.addr", "")
        self.write("config.json", "{not json")
        with self.assertRaises(ValueError):
            find_base_url(None, env)

    def test_key_order(self) -> None:
        env = {"ARTMESH_PATH": self.repo}
        key, source = find_api_key(None, env)
        self.assertIsNone(key)
        self.assertIn(os.path.join(self.repo, "api.key"), source)
        self.write("api.key", "  \n")
        self.assertEqual(find_api_key(None, env)[0], None)
        self.write("api.key", "amk_fromfile\n")
        self.assertEqual(find_api_key(None, env), ("amk_fromfile", os.path.join(self.repo, "api.key")))
        self.assertEqual(find_api_key(None, dict(env, ARTMESH_API_KEY=" amk_env ")), ("amk_env", "ARTMESH_API_KEY"))
        self.assertEqual(find_api_key("amk_arg", dict(env, ARTMESH_API_KEY="amk_env"))[0], "amk_arg")

    def test_folders(self) -> None:
        self.assertEqual(repo_dir({"ARTMESH_PATH": "/r"}), "/r")
        self.assertEqual(repo_dir({}), os.path.join(os.path.expanduser("~"), ".artmesh"))
        self.assertEqual(cache_dir({"ARTMESH_CACHE_DIR": "/c"}), "/c")
        self.assertEqual(cache_dir({"XDG_CACHE_HOME": "/x"}), os.path.join("/x", "artmesh"))
        self.assertEqual(addr_url(":7480"), "http://127.0.0.1:7480")
        self.assertEqual(normalize_url(" 127.0.0.1:1 "), "http://127.0.0.1:1")


class FindsTheRunningNode(unittest.TestCase):
    """With no arguments, both clients call the node whose repo ARTMESH_PATH names, with its admin key."""

    def test_sync_and_async(self) -> None:
        n = node()
        env = {k: v for k, v in os.environ.items() if k not in ("ARTMESH_API", "ARTMESH_API_KEY")}
        env["ARTMESH_PATH"] = n.repo
        with mock.patch.dict(os.environ, env, clear=True):
            with artmesh.Client() as c:
                self.assertEqual(c.base_url, n.url)
                self.assertEqual(c._t.key_source, os.path.join(n.repo, "api.key"))
                self.assertEqual(c.node().api_url, n.url)
                self.assertTrue(any(a.id == "admin" for a in c.agents.list()))

            async def main() -> str:
                async with artmesh.AsyncClient() as ac:
                    self.assertEqual(ac.base_url, n.url)
                    return (await ac.node()).api_url

            self.assertEqual(asyncio.run(main()), n.url)
            # ARTMESH_API and ARTMESH_API_KEY win over the repo.
            with mock.patch.dict(os.environ, {"ARTMESH_API": "127.0.0.1:1", "ARTMESH_API_KEY": "amk_x"}):
                c2 = artmesh.Client()
                self.assertEqual((c2.base_url, c2._t.api_key), ("http://127.0.0.1:1", "amk_x"))
                with self.assertRaises(artmesh.ArtmeshConnectionError):
                    c2.node()
