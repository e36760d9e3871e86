package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/node"
)

// keepAlive is how often an idle event stream gets a comment line, so
// that proxies and clients see it alive (and the write deadline moves on).
const keepAlive = 15 * time.Second

// events serves GET /v1/events: the change feed as Server-Sent Events,
// from the event after Last-Event-ID (or the last_event_id parameter), or
// from now. It runs until the client goes away or the server shuts down;
// the caller's key is checked again before each batch, so a deleted agent
// or a rotated key ends the stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "artifact_id", "name", "shared_with_me", "last_event_id":
		default:
			return artmesh.E(artmesh.Invalid, fmt.Sprintf("unknown query parameter %q: the filters are artifact_id, name and shared_with_me", k))
		}
	}
	f := node.EventFilter{ArtifactID: artmesh.ArtifactID(q.Get("artifact_id")), Name: q.Get("name")}
	switch v := q.Get("shared_with_me"); v {
	case "", "false":
	case "true":
		f.SharedWithMe = true
	default:
		return artmesh.E(artmesh.Invalid, fmt.Sprintf("shared_with_me must be true or false, not %q", v))
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("last_event_id")
	}
	after := s.n.EventsNow()
	if last != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(last), 10, 64)
		if err != nil {
			return artmesh.E(artmesh.Invalid, fmt.Sprintf("Last-Event-ID %q is not an event id (a catalog index)", last))
		}
		after = n
	}
	// An agent holds at most its Streams limit of streams on this node.
	release, err := s.n.OpenStream(caller)
	if err != nil {
		return err
	}
	defer release()
	key, _ := bearer(r)
	// The stream ends with the request or with the server.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	// The first batch is read before the answer starts, so that a bad
	// filter is an error answer rather than a broken stream.
	batch, err := s.n.Events(r.Context(), caller, f, after)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The stream reads nothing more from the client: no read deadline
	// applies to it (the server's ReadTimeout is for request bodies), and
	// a closed connection still ends it.
	_ = rc.SetReadDeadline(time.Time{})
	bw := bufio.NewWriter(w)
	flush := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamTimeout))
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	// The retry hint, and a first write so that clients see the stream
	// open at once.
	fmt.Fprintf(bw, "retry: 2000\n\n")
	if err := flush(); err != nil {
		return nil
	}
	first := true
	for {
		if batch.Reset {
			writeEvent(bw, "reset", batch.Next, apitype.EventReset{
				ID: strconv.FormatUint(batch.Next, 10), After: strconv.FormatUint(after, 10),
				Message: "the catalog no longer holds the events after that id, or this node has not reached it: changes may have been missed; list again and go on from this event",
			})
		}
		for _, e := range batch.Events {
			writeEvent(bw, e.Type, e.Index, apitype.Event{
				ID: strconv.FormatUint(e.Index, 10), Type: e.Type, ArtifactID: e.ArtifactID, Name: e.Name, Owner: e.Owner,
				Version: e.Version, Actor: e.Actor, At: e.At, Agents: e.Agents, Groups: e.Groups,
			})
		}
		if first && len(batch.Events) == 0 && !batch.Reset {
			// A frame with an id alone moves the reader's position (its
			// Last-Event-ID) without an event: a reader that started "now"
			// and reconnects before any event goes on from here.
			fmt.Fprintf(bw, "id: %d\n\n", batch.Next)
		}
		first = false
		if err := flush(); err != nil {
			return nil // the client went away
		}
		after = batch.Next
		for !s.n.WaitEvents(ctx, after, keepAlive) {
			if ctx.Err() != nil {
				return nil
			}
			// The keep-alive carries the position too.
			fmt.Fprintf(bw, ": keep-alive\nid: %d\n\n", after)
			if err := flush(); err != nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if caller, err = s.n.Authenticate(ctx, key); err != nil {
			return nil // the key no longer works: the stream ends
		}
		if batch, err = s.n.Events(ctx, caller, f, after); err != nil {
			s.log.Warn("event stream", "agent", caller.ID, "err", err)
			return nil
		}
	}
}

// writeEvent writes one SSE event whose data is v as JSON (one line: JSON
// has no raw newlines).
func writeEvent(w *bufio.Writer, name string, id uint64, v any) {
	data, _ := json.Marshal(v)
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, name, data)
}
