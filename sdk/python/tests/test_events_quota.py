"""client.artifact.watch against a fake node: a reconnect refused for the stream quota is waited for."""

from __future__ import annotations

import http.server
import threading
import unittest
from unittest import mock

import artmesh
from artmesh import _events


class _Feed(http.server.BaseHTTPRequestHandler):
    """The first stream gives one event and breaks; the next open is 429 (the broken one still counted); then a stream with the next event."""

    calls: list[str] = []
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            n = len(self.calls)
            self.calls.append(self.headers.get("Last-Event-ID") or "")
        if n == 1:
            body = b'{"error":{"code":"too_many","message":"1 stream, the limit"}}'
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        index = 7 if n == 0 else 8
        ev = '{"id":"%d","type":"artifact.created","artifact_id":"art_%d","name":"f","owner":"bob","version":1,"actor":"bob","at":"2026-01-01T00:00:00Z"}' % (index, index)
        self.wfile.write(("retry: 2000\n\nid: %d\nevent: artifact.created\ndata: %s\n\n" % (index, ev)).encode())
        self.wfile.flush()
        if n == 0:
            self.close_connection = True
            return  # the stream breaks
        threading.Event().wait(30)  # then stays open


class WatchQuota(unittest.TestCase):
    def setUp(self) -> None:
        _Feed.calls = []
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]

    def test_reconnect_waits_out_too_many(self) -> None:
        c = artmesh.Client(api_key="amk_" + "a" * 52, base_url=self.url)
        self.addCleanup(c.close)
        with mock.patch.object(_events, "RECONNECT_FIRST", 0.01):
            s = c.artifact.watch()
            self.addCleanup(s.close)
            self.assertEqual(next(s).artifact_id, "art_7")
            self.assertEqual(next(s).artifact_id, "art_8")
        # The 429 open went on from the last event, as did the one after it.
        self.assertEqual(_Feed.calls[:3], ["", "7", "7"])

    def test_first_open_raises_too_many(self) -> None:
        _Feed.calls = ["taken"]  # the next open is the 429
        c = artmesh.Client(api_key="amk_" + "a" * 52, base_url=self.url)
        self.addCleanup(c.close)
        with self.assertRaises(artmesh.TooManyError) as cm:
            c.artifact.watch()
        self.assertEqual((cm.exception.status, cm.exception.code), (429, "too_many"))


if __name__ == "__main__":
    unittest.main()
