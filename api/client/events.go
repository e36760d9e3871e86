package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// WatchOptions says which events Watch follows and from where.
type WatchOptions struct {
	ArtifactID   artmesh.ArtifactID // only this artifact
	Name         string             // only artifacts of this name
	SharedWithMe bool               // only artifacts others own
	// LastEventID goes on after this event id; empty starts at the present.
	LastEventID string
	// Position, when set, is called with the stream's position when it
	// moves without an event (the stream opened, a keep-alive): the id a
	// later Watch would go on from. It runs on Watch's goroutine.
	Position func(id string)
}

// Event is one event of the change feed. A reset (Type "reset") says
// that changes may have been missed; its Reset field says why.
type Event struct {
	apitype.Event
	Reset *apitype.EventReset
}

// EventReset is the Type of a reset event.
const EventReset = "reset"

// Watch follows the change feed (GET /v1/events) and calls fn with each
// event, in order, until ctx ends, fn returns an error (which Watch
// returns), or the stream fails in a way that reconnecting cannot mend.
// A stream that breaks (the node restarts, the connection drops) is
// opened again after the last event seen, so fn sees every event once; a
// node that cannot be reached at the first attempt, or that refuses it for
// the caller's stream quota (artmesh.TooMany), is an error at once.
func (c *Client) Watch(ctx context.Context, o WatchOptions, fn func(Event) error) error {
	last := o.LastEventID
	backoff := 250 * time.Millisecond
	everOpened := false
	for {
		opened, err := c.watchOnce(ctx, o, last, func(ev Event) error {
			last = ev.ID
			if ev.Type == "" {
				if o.Position != nil {
					o.Position(ev.ID)
				}
				return nil
			}
			return fn(ev)
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fnErr callbackError
		if errors.As(err, &fnErr) {
			return fnErr.err
		}
		// A reconnect may find the broken stream still counted against the
		// agent's stream quota (TooMany) until the node notices it is
		// gone: it is waited out like a restart; a first open that meets
		// it fails below.
		if err != nil && !errors.Is(err, artmesh.Unavailable) && !errors.Is(err, errStreamBroke) && !errors.Is(err, artmesh.TooMany) {
			return err
		}
		if !opened && !everOpened {
			return err
		}
		if opened {
			everOpened, backoff = true, 250*time.Millisecond
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// callbackError carries an error of Watch's fn out of the stream reader.
type callbackError struct{ err error }

func (c callbackError) Error() string { return c.err.Error() }

// errStreamBroke is a stream that ended or broke mid-way.
var errStreamBroke = errors.New("the event stream broke")

// watchOnce reads one event stream; opened says whether the node answered
// with one.
func (c *Client) watchOnce(ctx context.Context, o WatchOptions, last string, fn func(Event) error) (opened bool, err error) {
	q := url.Values{}
	if o.ArtifactID != "" {
		q.Set("artifact_id", string(o.ArtifactID))
	}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	if o.SharedWithMe {
		q.Set("shared_with_me", "true")
	}
	h := http.Header{"Accept": {"text/event-stream"}}
	if last != "" {
		h.Set("Last-Event-ID", last)
	}
	resp, err := c.send(ctx, request{op: "client.Watch", method: "GET", path: "/v1/events", query: q, header: h})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	opened = true
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var name, id string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name == "" {
				if id != "" {
					// An id alone: the position moved (Type "").
					if err := fn(Event{Event: apitype.Event{ID: id}}); err != nil {
						return opened, callbackError{err}
					}
				}
				id, data = "", nil
				continue
			}
			ev := Event{}
			if name == EventReset {
				ev.Reset = &apitype.EventReset{}
				if err := json.Unmarshal(data, ev.Reset); err != nil {
					return opened, fmt.Errorf("client.Watch: a malformed reset event: %w", err)
				}
				ev.ID, ev.Type = id, EventReset
			} else if err := json.Unmarshal(data, &ev.Event); err != nil {
				return opened, fmt.Errorf("client.Watch: a malformed %s event: %w", name, err)
			}
			if err := fn(ev); err != nil {
				return opened, callbackError{err}
			}
			name, id, data = "", "", nil
		case strings.HasPrefix(line, ":"):
			// A comment: the keep-alive.
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				name = value
			case "id":
				id = value
			case "data":
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, value...)
			}
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return opened, fmt.Errorf("%w: %w", errStreamBroke, err)
	}
	return opened, errStreamBroke
}
