"""The change feed (``GET /v1/events``, Server-Sent Events) as an iterator of events.

:class:`EventStream` reads the stream line by line, never more than one
event at a time, and opens it again after the last event seen when the
connection breaks or the node restarts, so a reader sees every event once
and in order (the node keeps the last 10000 events; a reader that was away
longer gets a ``reset`` event first).
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from typing import Iterator, Optional

from ._errors import ArtmeshConnectionError, TooManyError, UnavailableError
from ._models import Event
from ._transport import Query, Response, Transport

#: How long a broken stream waits before it is opened again, at first and at most (seconds).
RECONNECT_FIRST = 0.25
RECONNECT_MAX = 5.0

#: The longest line an event stream may send.
MAX_LINE = 1 << 20


class EventStream:
    """The events after ``last_event_id`` (or from now), as an iterator; ``close()`` ends it from any thread.

    The stream is opened when the object is made, so a bad filter or key
    raises there, and "from now" means from then. Iterating blocks until the
    next event. Errors other than a broken connection (a key that no longer
    works) are raised; a node that cannot be reached at first raises
    :class:`artmesh.ConnectionError`, and later (a restart) is waited for,
    as is a reconnect refused for the agent's stream quota
    (:class:`artmesh.TooManyError`) while the node still counts the broken
    stream; the first open raises it.
    """

    def __init__(self, transport: Transport, query: Query, last_event_id: Optional[str]) -> None:
        self._t = transport
        self._query = query
        #: The id of the last event handed out: where a reconnect goes on from.
        self.last_event_id: Optional[str] = last_event_id
        self._lock = threading.Lock()
        self._resp: Optional[Response] = None
        self._closed = False
        # Opened at once, so that "from now" is the moment watch() returns
        # and a bad filter or key raises there.
        self._first: Optional[Response] = self._open()
        self._gen = self._events()

    def __iter__(self) -> "EventStream":
        return self

    def __next__(self) -> Event:
        return next(self._gen)

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End the stream; a ``next`` blocked in another thread returns (StopIteration) soon after."""
        with self._lock:
            self._closed = True
            resp = self._resp
            first, self._first = self._first, None
        if resp is not None:
            resp.interrupt()
        if first is not None:
            first.abandon()

    def _open(self) -> Response:
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        return self._t.request("GET", "/v1/events", query=self._query, headers=headers, stream=True)

    def _events(self) -> Iterator[Event]:
        opened_once = False
        wait = RECONNECT_FIRST
        while not self._closed:
            with self._lock:
                resp, self._first = self._first, None
            try:
                if resp is None:
                    resp = self._open()
            except (ArtmeshConnectionError, UnavailableError, TooManyError):
                # A reconnect may find the broken stream still counted
                # against the agent's stream quota (429) until the node
                # notices it is gone: waited for, like a restart.
                if not opened_once or self._closed:
                    raise
                time.sleep(wait * (1 + random.random() / 4))
                wait = min(2 * wait, RECONNECT_MAX)
                continue
            with self._lock:
                if self._closed:
                    resp.abandon()
                    return
                self._resp = resp
            opened_once, wait = True, RECONNECT_FIRST
            try:
                for ev in _parse(resp):
                    self.last_event_id = ev.id
                    if ev.type:  # else the position moved without an event
                        yield ev
            except (OSError, http.client.HTTPException, ValueError):
                pass  # the stream broke: open it again after the last event
            finally:
                with self._lock:
                    self._resp = None
                resp.abandon()
            if not self._closed:
                time.sleep(wait)


def _parse(resp: Response) -> Iterator[Event]:
    """The events of one stream, until it ends."""
    name = ""
    ev_id = ""
    data: list[str] = []
    while True:
        raw = resp.readline(MAX_LINE + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE:
            raise ValueError("an event stream line is longer than 1 MiB")
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if name:
                yield Event.from_sse(name, ev_id, "\n".join(data))
            elif ev_id:
                yield Event(id=ev_id, type="")  # an id alone: the stream's position
            name, ev_id, data = "", "", []
            continue
        if line.startswith(":"):
            continue  # a comment: the keep-alive
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "id":
            ev_id = value
        elif field == "data":
            data.append(value)

