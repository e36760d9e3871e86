"""The SDK's shape: the issue's call names and parameters, sync and async alike, typed, documented, all tested."""

from __future__ import annotations

import inspect
import os
import re
import unittest

import artmesh

PAIRS = [
    ("artifact", artmesh.Artifacts, artmesh.AsyncArtifacts),
    ("agents", artmesh.Agents, artmesh.AsyncAgents),
    ("groups", artmesh.Groups, artmesh.AsyncGroups),
    ("mesh", artmesh.Mesh, artmesh.AsyncMesh),
    ("pins", artmesh.Pins, artmesh.AsyncPins),
    ("repo", artmesh.Repo, artmesh.AsyncRepo),
    ("", artmesh.Client, artmesh.AsyncClient),
]

# Issue #9's calls on client.artifact, with their parameters in order.
ISSUE = {
    "create": ["name", "data", "content_type", "metadata"],
    "upload_file": ["path", "name", "content_type", "metadata", "progress"],
    "create_snippet": ["name", "content", "metadata"],
    "download": ["artifact_id", "version"],
    "download_file": ["artifact_id", "path", "version", "progress"],
    "get": ["artifact_id"],
    "get_signed_url": ["artifact_id", "expires_in", "version"],
    "get_upload_url": ["name", "content_type", "size_bytes", "metadata", "artifact_id"],
    "confirm_upload": ["upload_id", "sha256"],
    "update": ["artifact_id", "data", "metadata", "content_type"],
    "list_versions": ["artifact_id"],
    "share": ["artifact_id", "with_agents", "with_groups"],
    "unshare": ["artifact_id", "agents", "groups"],
    "get_access": ["artifact_id"],
    "list": ["metadata_filter", "content_type", "name", "limit", "offset", "cursor"],
    "list_shared": ["metadata_filter", "content_type", "name", "limit", "offset", "cursor"],
    "delete": ["artifact_id"],
    "delete_version": ["artifact_id", "version"],
    "iter_all": ["metadata_filter", "content_type", "name"],
}


def public(cls: type) -> dict[str, object]:
    return {n: f for n, f in vars(cls).items() if not n.startswith("_") and callable(f)}


class Surface(unittest.TestCase):
    def test_issue_calls_and_parameters(self) -> None:
        for name, params in ISSUE.items():
            for cls in (artmesh.Artifacts, artmesh.AsyncArtifacts):
                with self.subTest(cls=cls.__name__, call=name):
                    sig = inspect.signature(getattr(cls, name))
                    positional = [p.name for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
                    self.assertEqual(positional[: len(params)], params)
                    # Anything beyond the issue's parameters is keyword-only, so the issue's calls stay as they are.
                    self.assertEqual(positional, params)
        self.assertEqual(inspect.signature(artmesh.Artifacts.get_signed_url).parameters["expires_in"].default, 3600)
        for cls in (artmesh.Client, artmesh.AsyncClient):
            self.assertEqual(list(inspect.signature(cls).parameters)[:3], ["api_key", "base_url", "timeout"])

    def test_sync_and_async_have_the_same_calls(self) -> None:
        for attr, sync, asyn in PAIRS:
            with self.subTest(resource=sync.__name__):
                s, a = public(sync), public(asyn)
                self.assertEqual(sorted(s), sorted(set(a) - {"aclose"}))
                for name, fn in s.items():
                    afn = a[name]
                    sp = [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
                    ap = [(p.name, p.kind, p.default) for p in inspect.signature(afn).parameters.values()]
                    if attr == "" and name == "__init__":
                        continue
                    self.assertEqual(sp, ap, f"{sync.__name__}.{name}")
                    if name.startswith("__"):
                        continue
                    if name == "iter_all":
                        self.assertTrue(inspect.isasyncgenfunction(afn))
                        self.assertTrue(inspect.isgeneratorfunction(fn))
                    elif name == "watch":
                        # An async generator; the sync one returns an EventStream (an iterator).
                        self.assertTrue(inspect.isasyncgenfunction(afn))
                        self.assertIs(inspect.signature(fn).return_annotation, "EventStream")
                    else:
                        self.assertTrue(inspect.iscoroutinefunction(afn), f"{asyn.__name__}.{name} is not async")
                        self.assertFalse(inspect.iscoroutinefunction(fn))

    def test_typed_and_documented(self) -> None:
        for _, sync, asyn in PAIRS:
            for cls in (sync, asyn):
                self.assertTrue(cls.__doc__, cls.__name__)
                for name, fn in public(cls).items():
                    with self.subTest(call=f"{cls.__name__}.{name}"):
                        self.assertTrue(getattr(fn, "__doc__", None), "no docstring")
                        sig = inspect.signature(fn)
                        for p in list(sig.parameters.values())[1:]:
                            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                                self.assertIsNot(p.annotation, p.empty, f"parameter {p.name} has no type")
                        self.assertIsNot(sig.return_annotation, sig.empty, "no return type")
        pkg = os.path.dirname(artmesh.__file__)
        self.assertTrue(os.path.exists(os.path.join(pkg, "py.typed")))
        for name in artmesh.__all__:
            self.assertTrue(getattr(artmesh, name).__doc__ or name == "__version__", name)

    def test_every_call_is_exercised_by_the_tests(self) -> None:
        here = os.path.dirname(__file__)
        text = ""
        for f in sorted(os.listdir(here)):
            if f.startswith("test_") and f != "test_surface.py":
                with open(os.path.join(here, f), encoding="utf-8") as fh:
                    text += fh.read()
        for attr, sync, _ in PAIRS:
            for name in public(sync):
                if name.startswith("__"):
                    continue
                with self.subTest(call=f"{attr}.{name}" if attr else name):
                    pattern = rf"\.{attr}\.{name}\(" if attr else rf"\.{name}\("
                    self.assertTrue(re.search(pattern, text), f"no test calls {pattern}")

    def test_errors(self) -> None:
        codes = {
            artmesh.InvalidArgumentError: (400, "invalid_argument"),
            artmesh.UnauthenticatedError: (401, "unauthenticated"),
            artmesh.PermissionDeniedError: (403, "permission_denied"),
            artmesh.NotFoundError: (404, "not_found"),
            artmesh.ConflictError: (409, "conflict"),
            artmesh.IdempotencyKeyReusedError: (422, "idempotency_key_reused"),
            artmesh.PreconditionFailedError: (412, "precondition_failed"),
            artmesh.ChecksumMismatchError: (400, "checksum_mismatch"),
            artmesh.ExpiredError: (410, "expired"),
            artmesh.TooLargeError: (413, "too_large"),
            artmesh.RangeNotSatisfiableError: (416, "range_not_satisfiable"),
            artmesh.InternalError: (500, "internal"),
            artmesh.UnavailableError: (503, "unavailable"),
            artmesh.OutcomeUnknownError: (503, "outcome_unknown"),
            artmesh.InsufficientStorageError: (507, "insufficient_storage"),
            artmesh.QuotaExceededError: (507, "quota_exceeded"),
            artmesh.TooManyError: (429, "too_many"),
        }
        for cls, (status, code) in codes.items():
            self.assertTrue(issubclass(cls, artmesh.ArtmeshError))
            e = cls("m")
            self.assertEqual((e.status, e.code, e.message), (status, code, "m"))
        self.assertTrue(issubclass(artmesh.ArtmeshConnectionError, ConnectionError))
        self.assertTrue(re.search("make run", artmesh.ArtmeshConnectionError.__doc__ or ""))
