package mcpserver

import (
	"context"
	"errors"
	"time"

	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/api/client"
)

// The watch tool: a tool call cannot stream, so it waits, for a bounded
// time, for the next events of the change feed and returns them with the
// id to go on from. An agent that wants "the next version of X" calls it
// in a loop, passing last_event_id back.

// Bounds of one watch call.
const (
	defaultWatchWait = 30 * time.Second
	maxWatchWait     = 300 * time.Second
	defaultWatchMax  = 10
	maxWatchMax      = 100
	// watchSettle is how long a call that has an event waits for more
	// that follow at once (a burst) before it returns.
	watchSettle = 200 * time.Millisecond
)

type watchArgs struct {
	ArtifactID   string `json:"artifact_id,omitempty" jsonschema:"only events about this artifact"`
	Name         string `json:"name,omitempty" jsonschema:"only events about artifacts of this exact name"`
	SharedWithMe bool   `json:"shared_with_me,omitempty" jsonschema:"only events about artifacts other agents own"`
	LastEventID  string `json:"last_event_id,omitempty" jsonschema:"the last_event_id of the previous watch call: go on after it, missing nothing (\"0\": every event the node still holds). Default: from now"`
	WaitSeconds  int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait for a first event, 1 to 300 seconds (default 30)"`
	MaxEvents    int    `json:"max_events,omitempty" jsonschema:"return at most this many events, 1 to 100 (default 10)"`
}

type watchResult struct {
	Events []apitype.Event `json:"events" jsonschema:"the events, oldest first; empty when none came within wait_seconds"`
	// LastEventID is where the next call goes on from.
	LastEventID string `json:"last_event_id" jsonschema:"pass this as last_event_id to the next watch call"`
	// Reset says that events were missed (the node no longer holds them).
	Reset bool `json:"reset,omitempty" jsonschema:"true when events after the given last_event_id were missed: list again"`
}

// Why a watch call's own wait ended.
var (
	errWaited  = errors.New("waited wait_seconds")
	errSettled = errors.New("the burst of events ended")
	errFull    = errors.New("max_events reached")
)

func (h *handlers) watch(ctx context.Context, a watchArgs) (watchResult, error) {
	o := client.WatchOptions{Name: a.Name, SharedWithMe: a.SharedWithMe, LastEventID: a.LastEventID}
	if a.ArtifactID != "" {
		id, err := checkID(a.ArtifactID)
		if err != nil {
			return watchResult{}, err
		}
		o.ArtifactID = id
	}
	wait := defaultWatchWait
	if a.WaitSeconds != 0 {
		if a.WaitSeconds < 1 || time.Duration(a.WaitSeconds)*time.Second > maxWatchWait {
			return watchResult{}, invalid("wait_seconds must be 1 to 300, not %d", a.WaitSeconds)
		}
		wait = time.Duration(a.WaitSeconds) * time.Second
	}
	limit := defaultWatchMax
	if a.MaxEvents != 0 {
		if a.MaxEvents < 1 || a.MaxEvents > maxWatchMax {
			return watchResult{}, invalid("max_events must be 1 to 100, not %d", a.MaxEvents)
		}
		limit = a.MaxEvents
	}
	waitCtx, stopWaiting := context.WithTimeoutCause(ctx, wait, errWaited)
	defer stopWaiting()
	wctx, settle := context.WithCancelCause(waitCtx)
	defer settle(nil)
	res := watchResult{Events: []apitype.Event{}, LastEventID: a.LastEventID}
	o.Position = func(id string) { res.LastEventID = id }
	var timer *time.Timer
	err := h.c.Watch(wctx, o, func(ev client.Event) error {
		res.LastEventID = ev.ID
		if ev.Reset != nil {
			res.Reset = true
			return nil
		}
		res.Events = append(res.Events, ev.Event)
		if len(res.Events) >= limit {
			return errFull
		}
		if timer == nil {
			// An event came: return soon, with those that follow at once.
			timer = time.AfterFunc(watchSettle, func() { settle(errSettled) })
		}
		return nil
	})
	if timer != nil {
		timer.Stop()
	}
	if err != nil && !errors.Is(err, errFull) {
		cause := context.Cause(wctx)
		if ctx.Err() != nil || !(errors.Is(cause, errWaited) || errors.Is(cause, errSettled)) {
			return watchResult{}, err
		}
	}
	return res, nil
}
