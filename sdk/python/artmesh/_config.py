"""How the SDK finds its node and key: the same way the artmesh CLI does.

The API URL is the ``base_url`` argument, else ``$ARTMESH_API``, else the
address a running daemon wrote to ``<repo>/api.addr``, else ``api_addr`` in
``<repo>/config.json``, else ``http://127.0.0.1:7480``. The API key is the
``api_key`` argument, else ``$ARTMESH_API_KEY``, else the contents of
``<repo>/api.key``. The repo is ``$ARTMESH_PATH``, else ``~/.artmesh``.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional
from urllib.parse import urlsplit

ENV_REPO = "ARTMESH_PATH"
ENV_API = "ARTMESH_API"
ENV_API_KEY = "ARTMESH_API_KEY"
ENV_CACHE = "ARTMESH_CACHE_DIR"

CONFIG_FILE = "config.json"
API_KEY_FILE = "api.key"
API_ADDR_FILE = "api.addr"

DEFAULT_API_URL = "http://127.0.0.1:7480"


def repo_dir(env: Optional[Mapping[str, str]] = None) -> str:
    """The node's repo folder: ``$ARTMESH_PATH``, else ``~/.artmesh``."""
    env = os.environ if env is None else env
    p = env.get(ENV_REPO, "")
    if p:
        return p
    home = os.path.expanduser("~")
    if home == "~":
        return ".artmesh"
    return os.path.join(home, ".artmesh")


def addr_url(addr: str) -> str:
    """Turn a listen address (``host:port``) into a URL to call.

    An empty or unspecified host (``:7480``, ``0.0.0.0:7480``, ``[::]:7480``)
    means this machine.
    """
    host, sep, port = addr.rpartition(":")
    if not sep:
        return "http://" + addr
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = "[" + host + "]"
    return f"http://{host}:{port}"


def normalize_url(s: str) -> str:
    """Check an API base URL given by a person; a bare ``host:port`` means http.

    Raises ValueError for anything that is not an http(s) URL with a host.
    """
    s = s.strip()
    if "://" not in s:
        return addr_url(s)
    u = urlsplit(s)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ValueError(f"{s!r} is not an API URL such as http://127.0.0.1:7480")
    return s.rstrip("/")


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def find_base_url(base_url: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> str:
    """The API base URL, found as the CLI finds it (see the module's docstring)."""
    env = os.environ if env is None else env
    if base_url:
        return normalize_url(base_url)
    v = env.get(ENV_API, "")
    if v:
        try:
            return normalize_url(v)
        except ValueError as e:
            raise ValueError(f"{ENV_API}: {e}") from None
    repo = repo_dir(env)
    addr = (_read(os.path.join(repo, API_ADDR_FILE)) or "").strip()
    if addr:
        return addr_url(addr)
    path = os.path.join(repo, CONFIG_FILE)
    data = _read(path)
    if data is None:
        return DEFAULT_API_URL
    try:
        cfg = json.loads(data)
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    api_addr = cfg.get("api_addr") if isinstance(cfg, dict) else None
    if not api_addr:
        return DEFAULT_API_URL
    return addr_url(str(api_addr))


def find_api_key(api_key: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> tuple[Optional[str], str]:
    """The API key and where it came from (for messages); ``(None, hint)`` when there is none."""
    env = os.environ if env is None else env
    if api_key:
        return api_key.strip(), "the api_key argument"
    k = env.get(ENV_API_KEY, "").strip()
    if k:
        return k, ENV_API_KEY
    path = os.path.join(repo_dir(env), API_KEY_FILE)
    data = _read(path)
    if data is None:
        return None, f"there is no {path}"
    if not data.strip():
        return None, f"{path} is empty"
    return data.strip(), path


def cache_dir(env: Optional[Mapping[str, str]] = None) -> str:
    """Where the SDK keeps its small records (unfinished uploads).

    ``$ARTMESH_CACHE_DIR``, else ``$XDG_CACHE_HOME/artmesh``, else
    ``~/.cache/artmesh``.
    """
    env = os.environ if env is None else env
    if env.get(ENV_CACHE):
        return env[ENV_CACHE]
    if env.get("XDG_CACHE_HOME"):
        return os.path.join(env["XDG_CACHE_HOME"], "artmesh")
    return os.path.join(os.path.expanduser("~"), ".cache", "artmesh")
