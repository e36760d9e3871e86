package mcpserver

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// Resource subscriptions (resources/subscribe, or subscriptions/listen
// with resourceSubscriptions in the 2026-07-28 revision, which the SDK
// turns into the same handler calls).
//
// The SDK keeps which session subscribed to which URI and sends
// notifications/resources/updated; this file decides when. One reader of
// the node's change feed (GET /v1/events, as the watch tool reads it)
// serves every subscription of the server, since every session of a
// server acts as the same agent: it runs from the first subscription to
// the end of the last, whether that ends by resources/unsubscribe, by the
// end of the listen request, or by the end of its session, and is then
// cancelled and waited for. A subscription is answered only once the feed
// is open, so a change made after the answer is never missed; a feed that
// breaks is opened again after the last event it saw, and a reset (events
// the node no longer holds) notifies every subscribed URI, since any of
// them may have changed.
//
// Which events notify which URI: artmesh://artifacts/{id} (the current
// version) hears every event of the artifact (a new version, a deleted
// one, the artifact deleted, shared or unshared: an unshare can make it
// unreadable). artmesh://artifacts/{id}/versions/{n}, whose content never
// changes, hears the artifact deleted, version n deleted, and shares and
// unshares.

// Event types of the change feed that a subscription cares about.
const (
	eventUpdated        = "artifact.updated"
	eventVersionDeleted = "version.deleted"
)

// feedRetry bounds the wait before the feed is opened again after it
// failed in a way the client's own reconnecting does not mend.
const (
	feedRetryMin = time.Second
	feedRetryMax = 30 * time.Second
)

// subTarget is what a subscribed URI names.
type subTarget struct {
	id      artmesh.ArtifactID
	version int // 0: the current version
}

// hears reports whether an event of the change feed may have changed the
// resource t.
func (t subTarget) hears(ev client.Event) bool {
	if ev.Reset != nil {
		return true
	}
	if ev.ArtifactID != t.id {
		return false
	}
	if t.version == 0 {
		return true
	}
	switch ev.Type {
	case eventUpdated:
		return false
	case eventVersionDeleted:
		return ev.Version == t.version
	}
	return true
}

// subscriptions holds a server's subscriptions and owns its feed.
type subscriptions struct {
	h *handlers

	mu     sync.Mutex
	server *mcp.Server                                 // set by New before the server serves
	subs   map[*mcp.ServerSession]map[string]subTarget // session -> URI -> target
	feed   *feed                                       // nil when nothing is subscribed
}

// feed is one run of the change feed reader.
type feed struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader has returned
	ready  chan struct{} // closed once the node answered with the stream
	once   sync.Once
	err    error // why the first open failed; read after done
}

func (f *feed) markReady() { f.once.Do(func() { close(f.ready) }) }

func newSubscriptions(h *handlers) *subscriptions {
	return &subscriptions{h: h, subs: map[*mcp.ServerSession]map[string]subTarget{}}
}

// subscribe is the server's SubscribeHandler: it checks that the URI names
// an artifact the agent may read, records the subscription and answers
// once the feed is open.
func (s *subscriptions) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	uri := req.Params.URI
	id, version, _, err := parseURI(uri)
	if err != nil {
		return invalidURI(uri, err)
	}
	if err := s.check(ctx, id, version); err != nil {
		return s.h.rpcError("resources/subscribe", uri, err)
	}
	ss := req.Session
	s.mu.Lock()
	m := s.subs[ss]
	if m == nil {
		m = map[string]subTarget{}
		s.subs[ss] = m
		// Owned by the session: it returns when the session ends, and
		// then drops the session's subscriptions.
		go func() {
			_ = ss.Wait()
			s.dropSession(ss)
		}()
	}
	m[uri] = subTarget{id: id, version: version}
	f := s.feed
	if f == nil {
		f = s.startFeed()
	}
	s.mu.Unlock()
	select {
	case <-f.ready:
		return nil
	case <-f.done:
		s.remove(ss, uri)
		return s.h.rpcError("resources/subscribe", uri, fmt.Errorf("following the change feed: %w", f.err))
	case <-ctx.Done():
		s.remove(ss, uri)
		return ctx.Err()
	}
}

// check returns the error of reading the artifact id (at version, when
// above 0): not_found when it does not exist or the agent may not read
// it.
func (s *subscriptions) check(ctx context.Context, id artmesh.ArtifactID, version int) error {
	if version == 0 {
		_, err := s.h.c.Artifact(ctx, id)
		return err
	}
	vs, err := s.h.c.Versions(ctx, id)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(vs, func(v artmesh.Version) bool { return v.Version == version }) {
		return artmesh.E(artmesh.NotFound, fmt.Sprintf("%s has no version %d", id, version))
	}
	return nil
}

// unsubscribe is the server's UnsubscribeHandler.
func (s *subscriptions) unsubscribe(_ context.Context, req *mcp.UnsubscribeRequest) error {
	s.remove(req.Session, req.Params.URI)
	return nil
}

// remove drops one subscription, and stops the feed when it was the last.
func (s *subscriptions) remove(ss *mcp.ServerSession, uri string) {
	s.mu.Lock()
	if m := s.subs[ss]; m != nil {
		delete(m, uri)
		// The session's map stays until the session ends: its goroutine
		// that waits for the end is already running.
	}
	f := s.stopIfIdle()
	s.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

// dropSession drops the subscriptions of a session that ended.
func (s *subscriptions) dropSession(ss *mcp.ServerSession) {
	s.mu.Lock()
	delete(s.subs, ss)
	f := s.stopIfIdle()
	s.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

// stopIfIdle cancels the feed when nothing is subscribed and returns it,
// for the caller to wait for once s.mu is released (the reader takes
// s.mu). s.mu is held.
func (s *subscriptions) stopIfIdle() *feed {
	for _, m := range s.subs {
		if len(m) > 0 {
			return nil
		}
	}
	f := s.feed
	if f != nil {
		f.cancel()
		s.feed = nil
	}
	return f
}

// startFeed starts the reader of the change feed; s.mu is held.
func (s *subscriptions) startFeed() *feed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	s.feed = f
	go s.run(ctx, f)
	return f
}

// running returns the done channel of the running feed, if one runs.
func (s *subscriptions) running() (<-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feed == nil {
		return nil, false
	}
	return s.feed.done, true
}

// run reads the change feed until ctx ends, and notifies the subscribed
// URIs that each event may have changed.
func (s *subscriptions) run(ctx context.Context, f *feed) {
	defer close(f.done)
	last := ""
	wait := feedRetryMin
	for {
		opts := client.WatchOptions{LastEventID: last, Position: func(id string) {
			last = id
			f.markReady()
		}}
		err := s.h.c.Watch(ctx, opts, func(ev client.Event) error {
			last = ev.ID
			f.markReady()
			s.notify(ev)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		select {
		case <-f.ready:
		default:
			f.err = err // the first open failed: subscribe says why
			return
		}
		s.h.log.Warn("mcp: the change feed failed; opening it again", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, feedRetryMax)
	}
}

// notify sends notifications/resources/updated for every subscribed URI
// that ev may have changed.
func (s *subscriptions) notify(ev client.Event) {
	s.mu.Lock()
	var uris []string
	for _, m := range s.subs {
		for uri, t := range m {
			if t.hears(ev) && !slices.Contains(uris, uri) {
				uris = append(uris, uri)
			}
		}
	}
	server := s.server
	s.mu.Unlock()
	slices.Sort(uris)
	for _, uri := range uris {
		// The SDK sends it to each session subscribed to uri, with a
		// bounded wait of its own.
		if err := server.ResourceUpdated(context.Background(), &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
			s.h.log.Warn("mcp: notifying a resource update", "uri", uri, "err", err)
		}
	}
}
