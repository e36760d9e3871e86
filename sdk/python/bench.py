#!/usr/bin/env python3
"""Benchmark the Python SDK against curl on the same node: 1 GiB upload_file and download_file.

Starts its own node (bin/artmesh, or $ARTMESH_BIN) in a temporary repo on
free 127.0.0.1 ports, writes a 1 GiB file of random bytes next to it, and
measures, on that one node:

- upload_file (upload URL, streamed from disk, SHA-256 while streaming,
  confirm) against curl doing the same (POST /v1/uploads, ``curl -T`` to the
  upload URL, confirm); the artifact is deleted and the store collected
  after each, so that both start from the same empty store;
- download_file (to a temporary file, fsync, rename) against ``curl -o``,
  once as is and once followed by an fsync of its file, the same
  durability download_file gives;

each SDK transfer in a fresh Python process whose peak RSS
(``resource.getrusage``) is printed. The targets: at least 0.7 x curl's
throughput, and under 64 MiB of RSS.

    make bench-sdk        (or: python3 sdk/python/bench.py [--size-mib N] [--runs N])
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MiB = 1 << 20


def child(argv: list[str]) -> None:
    """One SDK transfer in this process: print seconds and peak RSS as JSON."""
    sys.path.insert(0, HERE)
    import artmesh

    op, url, key, path = argv[:4]
    with artmesh.Client(api_key=key, base_url=url) as c:
        c.artifact.list(limit=1)
        t0 = time.perf_counter()
        if op == "upload":
            a = c.artifact.upload_file(path, name="bench.bin")
            result = a.id
        else:
            c.artifact.download_file(argv[4], path)
            result = path
        secs = time.perf_counter() - t0
    print(json.dumps({"seconds": secs, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "result": result}))


def sdk(op: str, url: str, key: str, path: str, artifact_id: str = "") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", op, url, key, path, artifact_id],
        capture_output=True, text=True, check=True, env=dict(os.environ, ARTMESH_CACHE_DIR=tempfile.gettempdir() + "/artmesh-bench-cache"),
    )
    return json.loads(out.stdout)


def call(url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Authorization": "Bearer " + key})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def curl_upload(url: str, key: str, path: str, size: int) -> tuple[float, str]:
    t0 = time.perf_counter()
    up = call(url, key, "POST", "/v1/uploads", {"name": "bench.bin", "content_type": "application/octet-stream", "size_bytes": size})
    subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-H", "Content-Type: application/octet-stream", "-T", path, up["url"]], check=True)
    a = call(url, key, "POST", f"/v1/uploads/{up['id']}/confirm", {})
    return time.perf_counter() - t0, a["id"]


def curl_download(url: str, key: str, artifact_id: str, path: str, fsync: bool) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        ["curl", "-sS", "--fail", "-o", path, "-H", "Authorization: Bearer " + key, f"{url}/v1/artifacts/{artifact_id}/content"],
        check=True,
    )
    if fsync:
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return time.perf_counter() - t0


def forget(url: str, key: str, artifact_id: str) -> None:
    call(url, key, "DELETE", f"/v1/artifacts/{artifact_id}")
    call(url, key, "POST", "/v1/repo/gc")


def start_node(repo: str) -> tuple[subprocess.Popen[bytes], str, str]:
    binary = os.environ.get("ARTMESH_BIN") or os.path.join(ROOT, "bin", "artmesh")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no artmesh binary at {binary}: run `make build` first")
    env = dict(os.environ, ARTMESH_PATH=repo)
    env.pop("ARTMESH_API", None)
    proc = subprocess.Popen(
        [binary, "daemon", "--init", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(repo + ".log", "wb"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(os.path.join(repo, "api.addr")) as f:
                addr = f.read().strip()
            if addr:
                url = "http://" + addr
                with urllib.request.urlopen(url + "/readyz", timeout=2):
                    pass
                with open(os.path.join(repo, "api.key")) as f:
                    return proc, url, f.read().strip()
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the node did not start: " + open(repo + ".log").read())


def write_random(path: str, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(4 * MiB, left)
            f.write(os.urandom(n))
            left -= n


def disk_write_fsync(path: str, size: int) -> float:
    """Seconds to write size bytes to path and fsync them, starting the
    writeback every 16 MiB as download_file does: what the disk allows a
    durable download, whatever the network does."""
    buf = os.urandom(8 * MiB)
    advise = getattr(os, "POSIX_FADV_DONTNEED", None)
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        written = flushed = 0
        while written < size:
            n = min(len(buf), size - written)
            f.write(buf[:n])
            written += n
            if advise is not None and written - flushed >= 16 * MiB:
                f.flush()
                os.posix_fadvise(f.fileno(), 0, written, advise)
                flushed = written
        f.flush()
        os.fsync(f.fileno())
    secs = time.perf_counter() - t0
    os.remove(path)
    return secs


def rate(size: int, secs: float) -> str:
    return f"{size / MiB / secs:7.1f} MiB/s"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=1024, help="the file's size (default 1024: 1 GiB)")
    p.add_argument("--runs", type=int, default=2, help="runs of each measurement; the best is kept")
    args = p.parse_args()
    size = args.size_mib * MiB
    have_curl = shutil.which("curl") is not None

    work = tempfile.mkdtemp(prefix="artmesh-sdk-bench-")
    proc: Optional[subprocess.Popen[bytes]] = None
    try:
        proc, url, key = start_node(os.path.join(work, "node"))
        src = os.path.join(work, "src.bin")
        write_random(src, size)
        print(f"sdk bench: {args.size_mib} MiB through one node at {url}, best of {args.runs} (Python {sys.version.split()[0]})")

        up_sdk, up_curl, rss_up = float("inf"), float("inf"), 0
        for _ in range(args.runs):
            if have_curl:
                secs, aid = curl_upload(url, key, src, size)
                up_curl = min(up_curl, secs)
                forget(url, key, aid)
            r = sdk("upload", url, key, src)
            up_sdk, rss_up = min(up_sdk, r["seconds"]), max(rss_up, r["maxrss_kib"])
            forget(url, key, r["result"])

        r = sdk("upload", url, key, src)
        aid = r["result"]
        down = os.path.join(work, "down.bin")
        down_sdk, down_curl, down_curl_sync, rss_down = float("inf"), float("inf"), float("inf"), 0
        if have_curl:
            curl_download(url, key, aid, os.devnull, False)  # warm the node's cache for both
        for _ in range(args.runs):
            if have_curl:
                down_curl = min(down_curl, curl_download(url, key, aid, down, False))
                os.remove(down)
                down_curl_sync = min(down_curl_sync, curl_download(url, key, aid, down, True))
                os.remove(down)
            r = sdk("download", url, key, down, aid)
            down_sdk, rss_down = min(down_sdk, r["seconds"]), max(rss_down, r["maxrss_kib"])
            os.remove(down)

        def line(what: str, secs: float, ref: float, ref_what: str, rss_kib: int) -> None:
            ratio = f"{ref / secs:4.2f} x {ref_what}" if have_curl else "curl not installed"
            print(
                f"  {what:<14} {secs:6.2f} s {rate(size, secs)}   {ref_what} {ref:6.2f} s {rate(size, ref)}   "
                f"ratio {ratio} (target >= 0.70: {'ok' if have_curl and ref / secs >= 0.7 else 'MISSED'})   "
                f"peak RSS {rss_kib / 1024:5.1f} MiB (target < 64: {'ok' if rss_kib < 64 * 1024 else 'MISSED'})"
            )

        line("upload_file", up_sdk, up_curl, "curl", rss_up)
        line("download_file", down_sdk, down_curl, "curl", rss_down)
        if have_curl:
            print(f"  {'':<14} curl -o followed by an fsync (download_file's durability): {down_curl_sync:6.2f} s {rate(size, down_curl_sync)}, "
                  f"ratio {down_curl_sync / down_sdk:4.2f}")
            # download_file makes the file durable before it appears, curl
            # -o does not: a durable download can go no faster than the
            # slower of curl and the disk's write+fsync.
            disk = min(disk_write_fsync(down, size) for _ in range(args.runs))
            ceiling = max(down_curl, disk)
            ok = "ok" if ceiling / down_sdk >= 0.7 else "MISSED"
            print(f"  {'':<14} the disk's write+fsync of {args.size_mib} MiB (writeback started as it goes): {disk:6.2f} s {rate(size, disk)}; download_file = "
                  f"{ceiling / down_sdk:4.2f} x the ceiling of a durable download, max(curl, disk) (target >= 0.70: {ok})")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
