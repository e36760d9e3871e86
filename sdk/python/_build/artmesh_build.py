"""A PEP 517 build backend in the standard library only, for the artmesh SDK.

Why not setuptools: ``pip install ./sdk/python`` builds in an isolated
environment into which pip installs the backend's requirements from the
package index. With setuptools as the backend that install needs the
index, so it fails on a machine without one (and a Python 3.12+ venv has no
setuptools to fall back on with ``--no-build-isolation``). This backend
needs nothing (``requires = []``), so the plain command works offline.

It builds a pure-Python wheel of the ``artmesh`` package (PEP 427), an
sdist (PEP 517/625), and an editable wheel (PEP 660, a ``.pth`` file
pointing at this folder). The metadata comes from pyproject.toml's
``[project]`` table.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile
from typing import Any, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "artmesh"
# Files of the sdist besides the package.
SDIST_EXTRA = ["pyproject.toml", "README.md", "_build/artmesh_build.py"]
# A fixed time for reproducible archives (2025-01-01).
EPOCH = 1735689600


# -- pyproject.toml -------------------------------------------------------------


def _parse_toml_subset(text: str) -> dict[str, Any]:
    """Read the part of TOML that pyproject.toml here uses, for Pythons without tomllib (3.10).

    Tables (``[a.b]``), and ``key = value`` with strings, booleans, integers,
    inline tables of strings and arrays of those, arrays spanning lines.
    """
    doc: dict[str, Any] = {}
    table = doc
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = _strip_comment(lines[i]).strip()
        i += 1
        if not line:
            continue
        m = re.match(r"^\[([A-Za-z0-9_.\-]+)\]$", line)
        if m:
            table = doc
            for part in m.group(1).split("."):
                table = table.setdefault(part, {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"pyproject.toml: cannot read line {i}: {line!r}")
        value = value.strip()
        while value.count("[") > value.count("]") or value.count("{") > value.count("}"):
            if i >= len(lines):
                raise ValueError("pyproject.toml: an array does not end")
            value += " " + _strip_comment(lines[i]).strip()
            i += 1
        table[key.strip().strip('"')] = _value(value)
    return doc


def _strip_comment(line: str) -> str:
    out, quote = [], ""
    for ch in line:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out)


def _value(v: str) -> Any:
    v = v.strip()
    if v.startswith('"') and v.endswith('"') or v.startswith("'") and v.endswith("'"):
        return v[1:-1].encode().decode("unicode_escape") if v[0] == '"' else v[1:-1]
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if v.startswith("[") and v.endswith("]"):
        return [_value(x) for x in _split(v[1:-1])]
    if v.startswith("{") and v.endswith("}"):
        out = {}
        for item in _split(v[1:-1]):
            k, _, x = item.partition("=")
            out[k.strip().strip('"')] = _value(x)
        return out
    raise ValueError(f"pyproject.toml: cannot read value {v!r}")


def _split(s: str) -> list[str]:
    items: list[str] = []
    cur: list[str] = []
    depth, quote = 0, ""
    for ch in s:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        items.append("".join(cur))
    return [x.strip() for x in items if x.strip()]


def read_pyproject() -> dict[str, Any]:
    """pyproject.toml, read with tomllib where Python has it."""
    path = os.path.join(ROOT, "pyproject.toml")
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        with open(path, encoding="utf-8") as f:
            return _parse_toml_subset(f.read())
    with open(path, "rb") as f:
        return tomllib.load(f)


def _project() -> dict[str, Any]:
    return read_pyproject()["project"]


def _dist_name() -> str:
    return re.sub(r"[-_.]+", "_", _project()["name"]).lower()


def _version() -> str:
    return str(_project()["version"])


def metadata_text() -> str:
    """The core metadata (METADATA / PKG-INFO), version 2.1."""
    p = _project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {p['name']}",
        f"Version: {p['version']}",
    ]
    if p.get("description"):
        lines.append(f"Summary: {p['description']}")
    if p.get("requires-python"):
        lines.append(f"Requires-Python: {p['requires-python']}")
    lic = p.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append(f"License: {lic['text']}")
    for kw in p.get("keywords", []):
        lines.append(f"Keywords: {kw}")
    for c in p.get("classifiers", []):
        lines.append(f"Classifier: {c}")
    for name, url in (p.get("urls") or {}).items():
        lines.append(f"Project-URL: {name}, {url}")
    for dep in p.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    body = ""
    readme = p.get("readme")
    if isinstance(readme, str) and os.path.exists(os.path.join(ROOT, readme)):
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _package_files() -> list[str]:
    """The package's files, relative to ROOT, sorted: its .py files and py.typed."""
    out = []
    for folder, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py") or f == "py.typed":
                out.append(os.path.relpath(os.path.join(folder, f), ROOT))
    return out


# -- wheels ---------------------------------------------------------------------

_WHEEL = "Wheel-Version: 1.0\nGenerator: artmesh_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: list[tuple[str, bytes]]) -> str:
    name = f"{_dist_name()}-{_version()}-py3-none-any.whl"
    info = f"{_dist_name()}-{_version()}.dist-info"
    files = files + [
        (f"{info}/METADATA", metadata_text().encode("utf-8")),
        (f"{info}/WHEEL", _WHEEL.encode()),
        (f"{info}/top_level.txt", (PACKAGE + "\n").encode()),
    ]
    record = [_record_line(a, d) for a, d in files] + [f"{info}/RECORD,,"]
    files.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    path = os.path.join(wheel_directory, name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            zi = zipfile.ZipInfo(arcname, date_time=time.gmtime(EPOCH)[:6])
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return name


def _read(rel: str) -> bytes:
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def build_wheel(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None, metadata_directory: Optional[str] = None) -> str:
    """PEP 517: build the wheel into wheel_directory and return its file name."""
    files = [(rel.replace(os.sep, "/"), _read(rel)) for rel in _package_files()]
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None, metadata_directory: Optional[str] = None) -> str:
    """PEP 660: a wheel whose .pth file puts this folder on sys.path."""
    return _write_wheel(wheel_directory, [(f"__editable__.{_dist_name()}.pth", (ROOT + "\n").encode())])


def _prepare(metadata_directory: str) -> str:
    info = f"{_dist_name()}-{_version()}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(metadata_text())
    with open(os.path.join(metadata_directory, info, "WHEEL"), "w", encoding="utf-8") as f:
        f.write(_WHEEL)
    return info


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    """PEP 517: write the .dist-info folder and return its name."""
    return _prepare(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    """PEP 660: as prepare_metadata_for_build_wheel."""
    return _prepare(metadata_directory)


def get_requires_for_build_wheel(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    """PEP 517: nothing."""
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    """PEP 517: nothing."""
    return []


def get_requires_for_build_editable(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    """PEP 660: nothing."""
    return []


def build_sdist(sdist_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    """PEP 517: build the source archive and return its file name."""
    base = f"{_dist_name()}-{_version()}"
    name = base + ".tar.gz"
    members = [(rel, _read(rel)) for rel in _package_files() + SDIST_EXTRA if os.path.exists(os.path.join(ROOT, rel))]
    members.append(("PKG-INFO", metadata_text().encode("utf-8")))
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in members:
            ti = tarfile.TarInfo(f"{base}/{rel.replace(os.sep, '/')}")
            ti.size, ti.mtime, ti.mode = len(data), EPOCH, 0o644
            tar.addfile(ti, io.BytesIO(data))
    return name
