"""The SDK and the node's OpenAPI document agree: every path the SDK calls is in /v1/openapi.json."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import tempfile
import unittest
import urllib.request
from unittest import mock

import artmesh

from . import support

PKG = os.path.dirname(artmesh.__file__)
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE"}
# Calls to URLs the node handed out (no API path in the source): the function
# that makes each, and the OpenAPI path and method it is.
URL_CALLS = {
    ("_upload_offset", "HEAD"): "/v1/uploads/{id}/content",
    ("_put", "PUT"): "/v1/uploads/{id}/content",
    ("download_signed_url", "GET"): "/v1/cap/{token}",
}


def _template(node: ast.expr) -> str:
    """An API path expression as a template: f"/v1/a/{x}/b" gives "/v1/a/{}/b"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            out.append(v.value if isinstance(v, ast.Constant) else "{}")
        return "".join(out)
    raise AssertionError(f"a path that is neither a literal nor an f-string: {ast.dump(node)}")


def sdk_calls() -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[str]]:
    """(method, path template) of every API call in the SDK's source, the (function, method) of calls to given URLs, and every path-like literal."""
    calls: set[tuple[str, str]] = set()
    url_calls: set[tuple[str, str]] = set()
    literals: set[str] = set()
    for name in sorted(os.listdir(PKG)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(PKG, name), encoding="utf-8").read())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            inner = {id(v) for n in ast.walk(fn) if isinstance(n, ast.JoinedStr) for v in n.values}
            for node in ast.walk(fn):
                if isinstance(node, (ast.Constant, ast.JoinedStr)) and id(node) not in inner:
                    try:
                        t = _template(node)
                    except AssertionError:
                        continue
                    if re.match(r"^/(v1/|healthz|readyz)", t):
                        literals.add(t)
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("request", "json")):
                    continue
                if not node.args or not (isinstance(node.args[0], ast.Constant) and node.args[0].value in METHODS):
                    continue
                method = node.args[0].value
                kw = {k.arg: k.value for k in node.keywords}
                if len(node.args) > 1:
                    calls.add((method, _template(node.args[1])))
                elif "url" in kw:
                    url_calls.add((fn.name, method))
                else:
                    raise AssertionError(f"{name}:{node.lineno}: a {method} call with neither a path nor a url")
    return calls, url_calls, literals


def _openapi() -> dict:
    with urllib.request.urlopen(support.node().url + "/v1/openapi.json", timeout=10) as r:
        return json.load(r)


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


class OpenAPIAgreement(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.doc = _openapi()
        cls.ops = {_norm(p): {m.upper() for m in v if m != "parameters"} for p, v in cls.doc["paths"].items()}

    def test_every_path_in_the_source_is_in_openapi(self) -> None:
        calls, url_calls, literals = sdk_calls()
        self.assertGreaterEqual(len(calls), 40, sorted(calls))  # the scan found the SDK's calls
        for method, template in sorted(calls):
            with self.subTest(call=f"{method} {template}"):
                self.assertIn(template, self.ops, f"{template} is not a path of /v1/openapi.json")
                self.assertIn(method, self.ops[template], f"{method} {template} is not an operation of /v1/openapi.json")
        self.assertEqual(url_calls, set(URL_CALLS))
        for (fn, method), path in URL_CALLS.items():
            self.assertIn(method, self.ops[_norm(path)], f"{fn}: {method} {path}")
        # Every path-like literal in the SDK is one of the calls found (none is sent some other way).
        self.assertEqual(literals - {t for _, t in calls}, set())

    def test_every_path_called_at_run_time_is_in_openapi(self) -> None:
        n = support.node()
        cache = tempfile.mkdtemp(prefix="artmesh-sdk-cache-")
        self.addCleanup(shutil.rmtree, cache, True)
        with mock.patch.dict(os.environ, {"ARTMESH_CACHE_DIR": cache}), artmesh.Client(api_key=n.key, base_url=n.url) as c:
            c._t.on_request = support._record
            a = c.artifact.create("openapi-check", b"x")
            c.artifact.download_signed_url(c.artifact.get_signed_url(a.id))
            up = c.artifact.get_upload_url("u", size_bytes=1)
            path = os.path.join(os.path.dirname(__file__), "__init__.py")
            c.artifact.upload_file(path, name=support.unique("openapi"))
            c.ready()
            c.artifact.delete(a.id)
            c.artifact.abort_upload(up.id)
        patterns = [(re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p)) + "$"), p) for p in self.doc["paths"]]
        recorded = sorted(support.RECORDED)
        self.assertGreaterEqual(len(recorded), 8)
        for method, path in recorded:
            with self.subTest(call=f"{method} {path}"):
                matches = [p for rx, p in patterns if rx.match(path)]
                self.assertTrue(matches, f"{path} matches no path of /v1/openapi.json")
                methods = set().union(*({m.upper() for m in self.doc["paths"][p]} for p in matches))
                self.assertIn(method, methods)
