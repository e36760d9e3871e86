package mcpserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// notified collects the URIs of notifications/resources/updated, and the
// acknowledgements of subscriptions/listen.
type notified struct {
	uris  chan string
	acked chan struct{}
}

func newNotified() (*notified, *mcp.ClientOptions) {
	n := &notified{uris: make(chan string, 100), acked: make(chan struct{}, 100)}
	return n, &mcp.ClientOptions{ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
		n.uris <- req.Params.URI
	}}
}

// ackMiddleware signals each notifications/subscriptions/acknowledged: in
// the 2026 revision it is what says that a subscription is in place.
func (n *notified) ackMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "notifications/subscriptions/acknowledged" {
			n.acked <- struct{}{}
		}
		return next(ctx, method, req)
	}
}

// next returns the URI of the next notification, failing after a deadline.
func (n *notified) next(t *testing.T) string {
	t.Helper()
	select {
	case uri := <-n.uris:
		return uri
	case <-time.After(20 * time.Second):
		t.Fatal("no notifications/resources/updated within 20s")
		return ""
	}
}

func (n *notified) waitAck(t *testing.T) {
	t.Helper()
	select {
	case <-n.acked:
	case <-time.After(20 * time.Second):
		t.Fatal("subscriptions/listen was not acknowledged within 20s")
	}
}

func update(t *testing.T, c *client.Client, id artmesh.ArtifactID, data string) {
	t.Helper()
	if _, err := c.UpdateArtifact(t.Context(), id, strings.NewReader(data), client.UpdateOptions{Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
}

// waitFeedStopped waits, up to a deadline, until the server runs no feed.
func waitFeedStopped(t *testing.T, h *handlers) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		done, ok := h.subs.running()
		if !ok {
			return
		}
		select {
		case <-done:
		case <-time.After(time.Until(deadline)):
			t.Fatal("the change feed still runs 20s after its last subscription ended")
		}
	}
}

// TestSubscribe2025: with resources/subscribe (the 2025-11-25 revision),
// a change to a subscribed artifact is notified, a version's URI hears
// only what changes that version, an unsubscribed URI hears nothing more,
// and the feed stops when the session ends.
func TestSubscribe2025(t *testing.T) {
	c := startNode(t)
	n, opts := newNotified()
	cs, h := connect(t, c, "2025-11-25", opts)
	ctx := t.Context()
	a := create(t, c, "a.txt", []byte("a1"), "text/plain")
	b := create(t, c, "b.txt", []byte("b1"), "text/plain")
	if _, ok := h.subs.running(); ok {
		t.Fatal("a feed runs before any subscription")
	}
	for _, uri := range []string{ResourceURI(a.ID, 0), ResourceURI(b.ID, 0), ResourceURI(a.ID, 1)} {
		if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
			t.Fatalf("subscribe %s: %v", uri, err)
		}
	}

	// A new version of a: its current URI hears it, its version 1 does not.
	update(t, c, a.ID, "a2")
	if got := n.next(t); got != ResourceURI(a.ID, 0) {
		t.Fatalf("notified %s, want %s", got, ResourceURI(a.ID, 0))
	}
	// Deleting version 1: both of a's URIs hear it (the current one first:
	// they are sent sorted).
	if err := c.DeleteVersion(ctx, a.ID, 1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ResourceURI(a.ID, 0), ResourceURI(a.ID, 1)} {
		if got := n.next(t); got != want {
			t.Fatalf("notified %s, want %s", got, want)
		}
	}

	// Unsubscribed from a: a's next change is not notified, b's is (the
	// feed notifies in the order of events, so a's would come first).
	for _, uri := range []string{ResourceURI(a.ID, 0), ResourceURI(a.ID, 1)} {
		if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri}); err != nil {
			t.Fatal(err)
		}
	}
	update(t, c, a.ID, "a3")
	update(t, c, b.ID, "b2")
	if got := n.next(t); got != ResourceURI(b.ID, 0) {
		t.Fatalf("notified %s after unsubscribing from a; want only %s", got, ResourceURI(b.ID, 0))
	}

	// The session ends: the feed stops.
	if _, ok := h.subs.running(); !ok {
		t.Fatal("no feed runs while b is subscribed")
	}
	cs.Close()
	waitFeedStopped(t, h)
}

// TestSubscribe2026: with subscriptions/listen (the 2026-07-28 revision,
// the SDK client's default), a subscription is notified of a change, and
// cancelling it (Unsubscribe) ends it and the feed.
func TestSubscribe2026(t *testing.T) {
	c := startNode(t)
	n, opts := newNotified()
	cl := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts)
	cl.AddReceivingMiddleware(n.ackMiddleware)
	s, h := newServer(c, Options{Version: "test"})
	st, ct := mcp.NewInMemoryTransports()
	ctx := t.Context()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cl.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cs.Close(); ss.Wait() }()
	if v := cs.InitializeResult().ProtocolVersion; v < "2026-07-28" {
		t.Fatalf("negotiated %s, want the 2026 revision", v)
	}
	a := create(t, c, "a.txt", []byte("a1"), "text/plain")
	uri := ResourceURI(a.ID, 0)
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	n.waitAck(t)
	update(t, c, a.ID, "a2")
	if got := n.next(t); got != uri {
		t.Fatalf("notified %s, want %s", got, uri)
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	waitFeedStopped(t, h)
}
