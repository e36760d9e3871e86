"""upload_file and download_file: large content streamed from and to disk, resumably.

upload_file declares the file's size in an upload session (``POST
/v1/uploads``), PUTs the bytes to the upload URL in one stream and, when
the connection breaks or the node answers with a server error, asks the
node how many bytes it holds (``HEAD`` on the upload URL, ``Upload-Offset``)
and continues from there with ``Content-Range``. The SHA-256 of the file is
computed while its bytes stream out (bytes a resume skips are read for it
once); the confirm sends it, and the node checks it before it creates the
artifact. A session that a call could not finish (an exception, a crash) is
remembered in a small record under the cache folder (``$ARTMESH_CACHE_DIR``,
else ``~/.cache/artmesh``), so that calling upload_file again with the same
file and arguments continues it.

download_file streams the content into a hidden file next to ``path``
(``.<name>.<cid>.artmesh-part``), resuming with ``Range`` and ``If-Range``
after a broken connection, and also in a later call after an exception;
once every byte is there it fsyncs the file, renames it to ``path`` and
fsyncs the folder. ``path`` itself only ever appears complete.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import errno
import hashlib
import http.client
import json
import mimetypes
import os
import re
import stat
import threading
from typing import IO, TYPE_CHECKING, Any, Callable, Mapping, Optional

from ._config import cache_dir
from ._errors import (
    ArtmeshConnectionError,
    ArtmeshError,
    ChecksumMismatchError,
    ConflictError,
    ExpiredError,
    InvalidArgumentError,
    NotFoundError,
    OutcomeUnknownError,
    RangeNotSatisfiableError,
)
from ._models import Artifact, Upload
from ._transport import CHUNK, Response, file_chunks, q

if TYPE_CHECKING:
    from ._client import Artifacts

#: ``progress(bytes_done, bytes_total)``: called as a transfer moves on.
Progress = Callable[[int, int], Any]

#: Failures in a row, without progress, after which a transfer gives up.
RETRIES = 5
_BACKOFF = 0.25
_MAX_BACKOFF = 4.0

PART_SUFFIX = ".artmesh-part"

# How many bytes a download writes between two nudges to the kernel to write them out.
_WRITEBACK = 16 << 20
_FADVISE: Optional[int] = getattr(os, "POSIX_FADV_DONTNEED", None) if hasattr(os, "posix_fadvise") else None
_CID = re.compile(r"^[A-Za-z0-9]{8,128}$")

#: Set by AsyncClient for the worker thread of one call: set when the awaiting task is cancelled.
cancel_event: contextvars.ContextVar[Optional[threading.Event]] = contextvars.ContextVar("artmesh_cancel", default=None)


class Cancelled(Exception):
    """The async call that ran this transfer was cancelled."""


def check_cancelled() -> None:
    """Raise Cancelled when the awaiting task was cancelled."""
    ev = cancel_event.get()
    if ev is not None and ev.is_set():
        raise Cancelled("cancelled")


def backoff(failures: int) -> float:
    """The wait before retry number ``failures`` (from 1)."""
    return float(min(_BACKOFF * (2 ** (failures - 1)), _MAX_BACKOFF))


def retryable(e: BaseException) -> bool:
    """Whether a failed transfer step may work when tried again: the connection broke or the node failed.

    A full disk (507) is not retried: trying again does not free space.
    """
    if isinstance(e, ArtmeshConnectionError):
        return True
    if isinstance(e, (OSError, http.client.HTTPException)):
        return True
    if isinstance(e, ArtmeshError):
        return e.status is not None and e.status >= 500 and e.status != 507
    return False


def guess_type(name: str) -> Optional[str]:
    """The content type for a file name's extension, or None."""
    t, _ = mimetypes.guess_type(name, strict=False)
    return t


# -- upload records -----------------------------------------------------------


class UploadRecords:
    """Unfinished upload sessions, one small JSON file each, so a later call can resume one."""

    def __init__(self, folder: Optional[str] = None) -> None:
        self.folder = os.path.join(folder or cache_dir(), "uploads")

    @staticmethod
    def key(base_url: str, api_key: Optional[str], path: str, st: os.stat_result, fields: Mapping[str, Any]) -> str:
        """The record's name: what makes a second call the same upload as the first."""
        ident = json.dumps(
            [
                base_url,
                hashlib.sha256((api_key or "").encode()).hexdigest(),
                os.path.realpath(path),
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
                dict(fields),
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(ident.encode()).hexdigest()[:40]

    def load(self, key: str) -> Optional[dict[str, Any]]:
        try:
            with open(os.path.join(self.folder, key + ".json"), encoding="utf-8") as f:
                rec = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or not isinstance(rec.get("url"), str):
            return None
        return rec

    def save(self, key: str, rec: Mapping[str, Any]) -> None:
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            tmp = os.path.join(self.folder, f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(dict(rec), f)
            os.replace(tmp, os.path.join(self.folder, key + ".json"))
        except OSError:
            pass  # resuming in a later call is a convenience; the upload goes on without it

    def drop(self, key: str) -> None:
        try:
            os.remove(os.path.join(self.folder, key + ".json"))
        except OSError:
            pass


class _PrefixHash:
    """SHA-256 of a file's first n bytes, grown in file order as a (maybe resumed) upload reads them."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.n = 0

    def catch_up(self, f: Any, upto: int) -> None:
        """Hash the file's bytes up to ``upto`` that are not hashed yet."""
        if upto <= self.n:
            return
        f.seek(self.n)
        buf = bytearray(CHUNK)
        mv = memoryview(buf)
        while self.n < upto:
            k = f.readinto(mv[: min(CHUNK, upto - self.n)])
            if not k:
                raise ArtmeshError(f"the file ended at {self.n} bytes: it changed during the upload", None, "file_changed")
            self.h.update(mv[:k])
            self.n += k

    def see(self, piece: memoryview, pos: int) -> None:
        """Hash the part of a piece read at ``pos`` that lies past what is hashed."""
        end = pos + len(piece)
        if pos <= self.n < end:
            self.h.update(piece[self.n - pos :])
            self.n = end


def upload_file(
    arts: "Artifacts",
    path: "os.PathLike[str] | str",
    name: Optional[str],
    content_type: Optional[str],
    metadata: Optional[Mapping[str, Any]],
    progress: Optional[Progress],
    replicas: Optional[int],
    records: Optional[UploadRecords] = None,
) -> Artifact:
    """The body of Artifacts.upload_file (see there)."""
    t = arts._t
    path = os.fspath(path)
    records = records or UploadRecords()
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file: upload_file needs a file whose size is known (use create for streams)")
        size = st.st_size
        name = name or os.path.basename(path)
        ctype = content_type or guess_type(name) or "application/octet-stream"
        meta = dict(metadata) if metadata is not None else None
        key = UploadRecords.key(t.base_url, t.api_key, path, st, {"name": name, "content_type": ctype, "metadata": meta})

        session: Optional[Upload] = None
        offset = 0
        rec = records.load(key)
        if rec is not None:
            session, offset, done = _resume_session(arts, rec, size)
            if done is not None:
                records.drop(key)
                return done
            if session is None:
                records.drop(key)
        if session is None:
            session = arts.get_upload_url(name, ctype, size, meta)
            assert session.url is not None
            records.save(key, {"id": session.id, "url": session.url, "size": size, "expires_at": session.expires_at.isoformat()})
        url = session.url
        assert url is not None

        hs = _PrefixHash()
        _send(arts, f, url, size, offset, hs, progress)
        hs.catch_up(f, size)
        if progress is not None:
            progress(size, size)
        digest = hs.h.hexdigest()
        try:
            art = _confirm(arts, session.id, digest, replicas)
        except InvalidArgumentError:
            # The node's SHA-256 differs: the file changed while it was sent.
            records.drop(key)
            try:
                arts.abort_upload(session.id)
            except ArtmeshError:
                pass
            raise
        records.drop(key)
        return art


def _resume_session(arts: "Artifacts", rec: Mapping[str, Any], size: int) -> tuple[Optional[Upload], int, Optional[Artifact]]:
    """An unfinished session from a record: (session, offset, None), or (None, 0, artifact) when it was confirmed, or (None, 0, None)."""
    try:
        st = arts.get_upload(rec["id"])
    except (NotFoundError, ExpiredError):
        return None, 0, None
    if st.state == "confirmed" and st.artifact_id:
        try:
            return None, 0, arts.get(st.artifact_id)
        except NotFoundError:
            return None, 0, None
    if st.size_bytes != size:
        return None, 0, None
    session = Upload(
        id=st.id, url=rec["url"], expires_at=st.expires_at, name=st.name, content_type=st.content_type,
        size_bytes=st.size_bytes, received_bytes=st.received_bytes, state=st.state,
        artifact_id=st.artifact_id, cid=st.cid,
    )
    if st.state == "received":
        return session, size, None
    try:
        return session, _upload_offset(arts, rec["url"], size), None
    except (NotFoundError, ExpiredError):
        return None, 0, None


def _upload_offset(arts: "Artifacts", url: str, size: int) -> int:
    """How many bytes of the upload the node holds (HEAD on the upload URL)."""
    resp = arts._t.request("HEAD", url=url, auth=False, ok=(409,))
    if resp.status == 409:
        return size  # confirmed already: the confirm will tell
    v = resp.header("Upload-Offset")
    if v is None or not v.strip().isdigit():
        raise ArtmeshError(f"the node's answer to HEAD {url.split('?')[0]} has no Upload-Offset", resp.status, "bad_answer")
    return int(v)


def _send(arts: "Artifacts", f: Any, url: str, size: int, offset: int, hs: _PrefixHash, progress: Optional[Progress]) -> None:
    """Send the bytes from ``offset`` on, resuming after retryable failures; give up after RETRIES in a row without progress."""
    t = arts._t
    failures = 0
    while True:
        check_cancelled()
        if offset >= size and size > 0:
            return
        err: Optional[BaseException] = None
        try:
            got = _put(arts, f, url, size, offset, hs, progress)
        except Exception as e:  # noqa: BLE001 - classified below
            if not retryable(e):
                raise
            err, got = e, None
        if got is not None:
            done, have = got
            if done:
                return
            if have is not None and have > offset:
                failures = 0
                offset = have
                continue
        # Wait, ask the node where it is, and go on from there.
        while True:
            failures += 1
            if failures > RETRIES:
                if err is not None:
                    raise err
                raise ArtmeshError(f"the upload made no progress after {RETRIES} tries", None, "no_progress")
            t.sleep(backoff(failures))
            check_cancelled()
            try:
                have = _upload_offset(arts, url, size)
            except Exception as e:  # noqa: BLE001
                if not retryable(e):
                    raise
                err = e
                continue
            if have > offset:
                failures = 0
            if have > size:
                raise ArtmeshError(f"the node says it holds {have} bytes of an upload of {size}", None, "bad_answer")
            offset = have
            break


def _put(
    arts: "Artifacts", f: Any, url: str, size: int, offset: int, hs: _PrefixHash, progress: Optional[Progress]
) -> tuple[bool, Optional[int]]:
    """One PUT of the bytes from ``offset`` to the end: (every byte is there, the node's offset)."""
    hs.catch_up(f, offset)
    if progress is not None:
        progress(offset, size)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size - offset)}
    if size > 0:
        headers["Content-Range"] = f"bytes {offset}-{size - 1}/{size}"
    sent = [offset]

    def on_chunk(piece: memoryview, pos: int) -> None:
        check_cancelled()
        hs.see(piece, pos)
        sent[0] = pos + len(piece)

    def body() -> Any:
        for piece in file_chunks(f, offset, size - offset, on_chunk):
            yield piece
            if progress is not None:
                progress(sent[0], size)

    resp = arts._t.request("PUT", url=url, body=body, headers=headers, auth=False, retry_503=False, ok=(409,))
    have_h = resp.header("Upload-Offset")
    have = int(have_h) if have_h and have_h.strip().isdigit() else None
    if resp.status == 409:
        if have is None:
            return True, size  # every byte is there already (received or confirmed)
        return False, have
    try:
        state = json.loads(resp.data).get("state")
    except (ValueError, AttributeError):
        state = None
    return state in ("received", "confirmed"), have


def _confirm(arts: "Artifacts", upload_id: str, sha256: str, replicas: Optional[int]) -> Artifact:
    """Confirm, retrying when the node cannot be reached or the outcome is unknown.

    A confirm whose answer was lost, or that answered ``outcome_unknown``
    and took effect, is recognised by the upload's state: the next one is
    refused as a conflict, and the upload names its artifact. So, unlike
    other writes, a confirm is safe to send again.
    """
    failures = 0
    while True:
        check_cancelled()
        try:
            return arts.confirm_upload(upload_id, sha256, replicas=replicas)
        except ConflictError:
            st = arts.get_upload(upload_id)
            if st.state == "confirmed" and st.artifact_id:
                return arts.get(st.artifact_id)
            raise
        except ArtmeshError as e:
            if not isinstance(e, (ArtmeshConnectionError, OutcomeUnknownError)) or failures >= RETRIES:
                raise
            failures += 1
            arts._t.sleep(backoff(failures))


# -- download -----------------------------------------------------------------


def _part_name(base: str, cid: str) -> str:
    return "." + base[:120] + "." + cid + PART_SUFFIX


def _find_part(folder: str, base: str) -> Optional[tuple[str, str]]:
    """The newest resumable partial download for ``base`` in folder: (file name, cid)."""
    prefix = "." + base[:120] + "."
    best: Optional[tuple[float, str, str]] = None
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for n in names:
        if not (n.startswith(prefix) and n.endswith(PART_SUFFIX)):
            continue
        cid = n[len(prefix) : -len(PART_SUFFIX)]
        if not _CID.match(cid):
            continue
        try:
            m = os.stat(os.path.join(folder, n)).st_mtime
        except OSError:
            continue
        if best is None or m > best[0]:
            best = (m, n, cid)
    return (best[1], best[2]) if best else None


def _etag_cid(resp: Response) -> Optional[str]:
    v = resp.header("ETag")
    if not v:
        return None
    v = v.strip()
    if v.startswith("W/"):
        v = v[2:]
    return v.strip('"') or None


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def download_file(
    arts: "Artifacts",
    artifact_id: str,
    path: "os.PathLike[str] | str",
    version: Optional[int],
    progress: Optional[Progress],
    overwrite: bool = False,
) -> str:
    """The body of Artifacts.download_file (see there); returns the path written."""
    t = arts._t
    path = os.path.abspath(os.fspath(path))
    folder, base = os.path.split(path)
    if not base:
        raise ValueError(f"{path!r} names a folder, not a file")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "download_file writes a file; this is a folder", path)
    if not overwrite and os.path.lexists(path):
        # As the CLI's get -o without --force: an existing file is kept.
        raise FileExistsError(errno.EEXIST, "the file exists; pass overwrite=True to replace it", path)
    os.makedirs(folder, exist_ok=True)

    found = _find_part(folder, base)
    part: Optional[str] = os.path.join(folder, found[0]) if found else None
    cid: Optional[str] = found[1] if found else None
    pinned = version
    failures = 0
    # The content's SHA-256 when the node recorded one (Repr-Digest), and
    # a hash of it as it arrives when the download starts from the first
    # byte (after a resume, the file is hashed from disk at the end).
    digest: Optional[bytes] = None
    hasher: Any = None
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    while True:
        check_cancelled()
        offset = os.path.getsize(part) if part and os.path.exists(part) else 0
        if part and not os.path.exists(part):
            part, cid = None, None
        query = [("version", str(pinned))] if pinned else []
        headers: dict[str, str] = {}
        if part and offset > 0 and cid:
            headers = {"Range": f"bytes={offset}-", "If-Range": f'"{cid}"'}
        try:
            resp = t.request("GET", f"/v1/artifacts/{q(artifact_id)}/content", query=query, headers=headers, stream=True)
        except RangeNotSatisfiableError:
            # The partial file is as long as the content (or longer): finish it, or start again.
            if part and cid and _complete(arts, artifact_id, query, cid, offset):
                return _finish(part, path, folder)
            if part:
                os.remove(part)
            part, cid = None, None
            continue
        except Exception as e:  # noqa: BLE001
            if not retryable(e):
                raise
            failures += 1
            if failures > RETRIES:
                raise
            t.sleep(backoff(failures))
            continue
        n, start, total = -1, offset, -1
        fh: IO[bytes]
        try:
            new_cid = _etag_cid(resp)
            digest = _repr_digest(resp)
            hasher = hashlib.sha256() if digest is not None and resp.status == 200 else None
            v = resp.header("Artifact-Version")
            if v and v.isdigit():
                pinned = int(v)  # resumes ask for exactly this version
            if resp.status == 206:
                total = _range_total(resp, offset)
                if part is None or new_cid != cid:
                    raise ArtmeshError("the node sent a range of other content than asked for", resp.status, "bad_answer")
                fh = open(part, "r+b")
                fh.seek(offset)
            else:
                total = int(resp.header("Content-Length") or -1)
                if new_cid is None or not _CID.match(new_cid):
                    raise ArtmeshError("the node's answer has no usable ETag", resp.status, "bad_answer")
                new_part = os.path.join(folder, _part_name(base, new_cid))
                if part and part != new_part and os.path.exists(part):
                    os.remove(part)  # a partial copy of other content
                part, cid, offset = new_part, new_cid, 0
                fh = open(part, "wb")
            start = flushed = offset
            with fh:
                if progress is not None:
                    progress(offset, total)
                while True:
                    check_cancelled()
                    try:
                        n = resp.readinto(mv)
                    except (OSError, http.client.HTTPException):
                        n = -1  # the stream broke off
                    if n <= 0:
                        break
                    fh.write(mv[:n])
                    if hasher is not None:
                        hasher.update(mv[:n])
                    offset += n
                    if offset - flushed >= _WRITEBACK:
                        flushed = _start_writeback(fh, flushed, offset)
                    if progress is not None:
                        progress(offset, total)
        finally:
            if resp_unread(resp):
                resp.abandon()
            else:
                resp.close()
        if n == 0 and (total < 0 or offset == total):
            _check_digest(part, digest, hasher)
            return _finish(part, path, folder)
        # The stream broke off: go on from where the file ends.
        if offset > start:
            failures = 0
        failures += 1
        if failures > RETRIES:
            raise ArtmeshConnectionError(
                f"the download of {artifact_id} broke off {RETRIES} times in a row; "
                f"{offset} of {total} bytes are kept in {part} for the next call",
                t.base_url,
            )
        t.sleep(backoff(failures))


def resp_unread(resp: Response) -> bool:
    """Whether the answer's body was not read to its end (its connection cannot be reused)."""
    return not resp._resp.isclosed()


def _start_writeback(fh: Any, start: int, end: int) -> int:
    """Have the kernel start writing the bytes from start to end to disk now, without waiting.

    The final fsync then waits only for the last of them, so writing to
    disk overlaps receiving instead of following it (POSIX_FADV_DONTNEED
    starts the writeback of a range's dirty pages on Linux, and drops its
    clean ones from the page cache: a large download does not push
    everything else out of it). Elsewhere this does nothing.
    """
    if _FADVISE is None:
        return end
    try:
        fh.flush()
        os.posix_fadvise(fh.fileno(), 0, end, _FADVISE)
    except OSError:
        pass
    return end


def _range_total(resp: Response, offset: int) -> int:
    cr = resp.header("Content-Range") or ""
    m = re.match(r"^bytes (\d+)-(\d+)/(\d+)$", cr.strip())
    if not m or int(m.group(1)) != offset:
        raise ArtmeshError(f"the node's Content-Range {cr!r} does not start at {offset}", resp.status, "bad_answer")
    return int(m.group(3))


def _complete(arts: "Artifacts", artifact_id: str, query: list[tuple[str, str]], cid: str, have: int) -> bool:
    """Whether a partial file of ``have`` bytes of cid is the whole content (HEAD)."""
    resp = arts._t.request("HEAD", f"/v1/artifacts/{q(artifact_id)}/content", query=query)
    return _etag_cid(resp) == cid and int(resp.header("Content-Length") or -1) == have


def _repr_digest(resp: Response) -> Optional[bytes]:
    """The SHA-256 of the whole content from the answer's Repr-Digest (RFC 9530), or None."""
    for member in (resp.header("Repr-Digest") or "").split(","):
        alg, _, val = member.strip().partition("=")
        if alg.strip().lower() == "sha-256":
            try:
                raw = base64.b64decode(val.strip().strip(":"), validate=True)
            except (ValueError, binascii.Error):
                return None
            return raw if len(raw) == 32 else None
    return None


def _check_digest(part: str, digest: Optional[bytes], hasher: Any) -> None:
    """Raise ChecksumMismatchError, removing the file, when the downloaded content is not what the node recorded."""
    if digest is None:
        return
    if hasher is None:
        hasher = hashlib.sha256()
        with open(part, "rb") as fh:
            while chunk := fh.read(CHUNK):
                hasher.update(chunk)
    got = hasher.digest()
    if got != digest:
        os.remove(part)
        raise ChecksumMismatchError(
            f"the downloaded content's SHA-256 is {got.hex()}, not the {digest.hex()} the node recorded; the file was not kept",
            None,
            "checksum_mismatch",
        )


def _finish(part: str, path: str, folder: str) -> str:
    """Make the complete partial file the file at path, durably."""
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, path)
    _fsync_dir(folder)
    return path
