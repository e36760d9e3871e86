"""The package installs offline with pip (the in-tree build backend needs nothing from an index)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

from .support import SDK_ROOT

sys.path.insert(0, os.path.join(SDK_ROOT, "_build"))
import artmesh_build  # noqa: E402


class Build(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="artmesh-sdk-build-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_wheel(self) -> None:
        name = artmesh_build.build_wheel(self.tmp)
        self.assertEqual(name, "artmesh-0.1.0-py3-none-any.whl")
        with zipfile.ZipFile(os.path.join(self.tmp, name)) as z:
            names = sorted(z.namelist())
            self.assertIn("artmesh/py.typed", names)
            self.assertIn("artmesh/__init__.py", names)
            self.assertFalse([n for n in names if n.startswith("tests/") or "__pycache__" in n or n.startswith("_build")])
            meta = z.read("artmesh-0.1.0.dist-info/METADATA").decode()
            self.assertIn("Requires-Python: >=3.10", meta)
            self.assertNotIn("Requires-Dist", meta)  # the standard library only
            record = z.read("artmesh-0.1.0.dist-info/RECORD").decode().splitlines()
            self.assertEqual(len(record), len(names))

    def test_toml_subset_reads_pyproject_as_tomllib_does(self) -> None:
        try:
            import tomllib
        except ImportError:
            self.skipTest("tomllib needs Python 3.11")
        with open(os.path.join(SDK_ROOT, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
        self.assertEqual(artmesh_build._parse_toml_subset(text), tomllib.loads(text))

    def test_pip_installs_it_with_no_index(self) -> None:
        if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
            self.skipTest("SKIPPED LOUDLY: this Python has no pip")
        target = os.path.join(self.tmp, "site")
        r = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", "-q", "--target", target, SDK_ROOT],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(target, "artmesh", "py.typed")))
        out = subprocess.run(
            [sys.executable, "-c", "import artmesh, sys; print(artmesh.__version__, artmesh.__file__)"],
            env=dict(os.environ, PYTHONPATH=target), cwd=self.tmp, capture_output=True, text=True, check=True,
        ).stdout.split()
        self.assertEqual(out[0], "0.1.0")
        self.assertTrue(out[1].startswith(target), out[1])
