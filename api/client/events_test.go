package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/artmesh/artmesh"
)

// TestWatchWaitsOutTooMany: a reconnect refused for the stream quota (the
// broken stream still counted) is tried again; a first open refused so is
// an error at once.
func TestWatchWaitsOutTooMany(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []int // the status of each open, in turn
		want    []string
		kind    artmesh.Kind // of Watch's error; Other: the callback's
	}{
		{"reconnect after 429", []int{200, 429, 200}, []string{"7", "8"}, artmesh.Other},
		{"first open 429", []int{429}, nil, artmesh.TooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var lastIDs []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n := len(lastIDs)
				lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
				mu.Unlock()
				if n >= len(tc.answers) || tc.answers[n] == 429 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(429)
					io.WriteString(w, `{"error":{"code":"too_many","message":"1 stream, the limit"}}`)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				id := 7 + n/2
				fmt.Fprintf(w, "id: %d\nevent: artifact.created\ndata: {\"id\":\"%d\",\"type\":\"artifact.created\",\"artifact_id\":\"art_%d\"}\n\n", id, id, id)
				w.(http.Flusher).Flush()
				if n > 0 {
					<-r.Context().Done() // stays open
				}
			}))
			defer srv.Close()
			c := New(srv.URL, testKey)
			var got []string
			done := errors.New("done")
			err := c.Watch(context.Background(), WatchOptions{}, func(ev Event) error {
				got = append(got, ev.ID)
				if len(got) == 2 {
					return done
				}
				return nil
			})
			if tc.kind == artmesh.Other && !errors.Is(err, done) || tc.kind != artmesh.Other && !errors.Is(err, tc.kind) {
				t.Fatalf("Watch: %v, want %v", err, tc.kind)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			if tc.kind == artmesh.Other && fmt.Sprint(lastIDs) != "[ 7 7]" {
				t.Fatalf("opens with Last-Event-ID %q, want none, then 7 twice", lastIDs)
			}
		})
	}
}
