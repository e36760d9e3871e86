package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestWriteRetries: a write that failed in a way that may pass is sent
// again with the same Idempotency-Key and the same body, waiting as the
// answer's Retry-After says; a write whose body cannot be sent again, or
// that was refused for what it is, is not.
func TestWriteRetries(t *testing.T) {
	type attempt struct{ key, body string }
	for _, tc := range []struct {
		name     string
		fail     int // attempts that fail before one passes
		failWith func(w http.ResponseWriter)
		body     func() io.Reader
		key      string // the caller's own key
		wantN    int    // attempts the server sees
		wantErr  artmesh.Kind
		wantWait []time.Duration
	}{
		{name: "outcome unknown, then created", fail: 1, failWith: answer(503, "outcome_unknown", "2"),
			body: func() io.Reader { return strings.NewReader("hello") }, wantN: 2, wantWait: []time.Duration{2 * time.Second}},
		{name: "unavailable twice", fail: 2, failWith: answer(503, "unavailable", ""),
			body: func() io.Reader { return strings.NewReader("hello") }, wantN: 3, wantWait: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}},
		{name: "the connection broke", fail: 1, failWith: hangUp,
			body: func() io.Reader { return strings.NewReader("hello") }, wantN: 2, wantWait: []time.Duration{100 * time.Millisecond}},
		{name: "the caller's own key", fail: 1, failWith: answer(503, "outcome_unknown", ""), key: "mine",
			body: func() io.Reader { return strings.NewReader("hello") }, wantN: 2, wantWait: []time.Duration{100 * time.Millisecond}},
		{name: "a body that cannot be sent again", fail: 1, failWith: answer(503, "outcome_unknown", ""),
			body: func() io.Reader { return io.MultiReader(strings.NewReader("hello")) }, wantN: 1, wantErr: artmesh.OutcomeUnknown},
		{name: "a refusal is final", fail: 1, failWith: answer(409, "conflict", ""),
			body: func() io.Reader { return strings.NewReader("hello") }, wantN: 1, wantErr: artmesh.Conflict},
		{name: "every attempt fails", fail: 99, failWith: answer(503, "unavailable", ""),
			body: func() io.Reader { return strings.NewReader("hello") }, wantN: 1 + DefaultRetries, wantErr: artmesh.Unavailable,
			wantWait: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []attempt
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				seen = append(seen, attempt{r.Header.Get(IdempotencyKeyHeader), string(body)})
				n := len(seen)
				mu.Unlock()
				if n <= tc.fail {
					tc.failWith(w)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(201)
				io.WriteString(w, `{"id":"a1","name":"x"}`)
			}))
			defer srv.Close()
			c := New(srv.URL, "k")
			var waits []time.Duration
			c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			ctx := context.Background()
			if tc.key != "" {
				ctx = WithIdempotencyKey(ctx, tc.key)
			}
			_, err := c.CreateArtifact(ctx, tc.body(), CreateOptions{Name: "x", ContentType: "text/plain"})
			if tc.wantErr != artmesh.Other {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(seen) != tc.wantN {
				t.Fatalf("%d attempts, want %d", len(seen), tc.wantN)
			}
			for _, a := range seen {
				if a.key == "" || a.key != seen[0].key || a.body != "hello" {
					t.Fatalf("attempts %+v: want one key and the whole body in each", seen)
				}
			}
			if tc.key != "" && seen[0].key != tc.key {
				t.Fatalf("key %q, want the caller's %q", seen[0].key, tc.key)
			}
			if len(waits) != len(tc.wantWait) {
				t.Fatalf("waits %v, want %v", waits, tc.wantWait)
			}
			for i := range waits {
				if waits[i] != tc.wantWait[i] {
					t.Fatalf("waits %v, want %v", waits, tc.wantWait)
				}
			}
		})
	}
}

// TestWritesGetFreshKeys: two calls are two requests, with two keys.
func TestWritesGetFreshKeys(t *testing.T) {
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get(IdempotencyKeyHeader))
		w.WriteHeader(204)
	}))
	defer srv.Close()
	c := New(srv.URL, "k")
	for range 2 {
		if err := c.DeleteArtifact(context.Background(), "a1"); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys) != 2 || keys[0] == "" || keys[0] == keys[1] {
		t.Fatalf("keys %q, want two different keys", keys)
	}
}

func answer(status int, code, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"error":{"code":"`+code+`","message":"m"}}`)
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}
