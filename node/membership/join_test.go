package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// testClock is a clock that moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// joinServer is a Manager that only answers joins, over a fake catalog,
// counting the requests it passes on to the leader.
type joinServer struct {
	m      *Manager
	cat    *fakeCatalog
	clock  *testClock
	passed int
}

func newJoinServer(leader bool) *joinServer {
	js := &joinServer{cat: newFakeCatalog(leader), clock: &testClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}}
	js.m = New(Config{
		Catalog: js.cat,
		Now:     js.clock.Now,
		CallLeader: func(context.Context, protocol.ID, []byte) ([]byte, error) {
			js.passed++
			return []byte("the leader's answer"), nil
		},
	})
	return js
}

func joinRequestOf(t *testing.T, p peer.ID, secret string) []byte {
	t.Helper()
	data, err := json.Marshal(joinRequest{PeerID: p.String(), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestServeJoinChecksBeforeProposing: a join that ConsumeInvite would
// refuse is refused from the catalog's state, on the leader and on a
// member that would pass it on, with no proposal and nothing passed on.
func TestServeJoinChecksBeforeProposing(t *testing.T) {
	for _, leader := range []bool{true, false} {
		js := newJoinServer(leader)
		now := js.clock.Now()
		other := newPeer(t)
		js.cat.invites[acl.HashKey("used")] = catalog.Invite{SecretHash: acl.HashKey("used"), ExpiresAt: now.Add(time.Hour), UsedBy: other.String()}
		js.cat.invites[acl.HashKey("old")] = catalog.Invite{SecretHash: acl.HashKey("old"), ExpiresAt: now}
		js.cat.invites[acl.HashKey("good")] = catalog.Invite{SecretHash: acl.HashKey("good"), ExpiresAt: now.Add(time.Hour)}
		for _, tt := range []struct {
			secret string
			kind   artmesh.Kind
			msg    string
		}{
			{"bogus", artmesh.PermissionDenied, "join refused: the invite is not known to this mesh"},
			{"used", artmesh.Conflict, "join refused: the invite was already used"},
			{"old", artmesh.Expired, "join refused: the invite expired at 2026-05-01T12:00:00Z"},
		} {
			stranger := newPeer(t)
			resp, err := js.m.ServeJoin(context.Background(), stranger, joinRequestOf(t, stranger, tt.secret))
			if resp != nil || !errors.Is(err, tt.kind) || artmesh.Message(err) != tt.msg {
				t.Fatalf("leader %v, secret %q: %q, %v (kind %v); want %v %q", leader, tt.secret, resp, err, artmesh.KindOf(err), tt.kind, tt.msg)
			}
		}
		if n := js.cat.proposed(); n != 0 || js.passed != 0 {
			t.Fatalf("leader %v: refused joins made %d proposals and %d were passed on, want none", leader, n, js.passed)
		}
		if leader {
			continue
		}
		// A join that will succeed is passed on, still with no proposal
		// here.
		joiner := newPeer(t)
		resp, err := js.m.ServeJoin(context.Background(), joiner, joinRequestOf(t, joiner, "good"))
		if string(resp) != "the leader's answer" || err != nil || js.passed != 1 || js.cat.proposed() != 0 {
			t.Fatalf("a good join on a follower: %q %v, passed on %d times, %d proposals", resp, err, js.passed, js.cat.proposed())
		}
	}
}

// TestServeJoinRateLimited: a stranger's attempts past its burst are
// refused as too many, until its limiter refills; a member passing on
// requests is not limited.
func TestServeJoinRateLimited(t *testing.T) {
	js := newJoinServer(true)
	ctx := context.Background()
	stranger := newPeer(t)
	req := joinRequestOf(t, stranger, "bogus")
	for i := range joinPeerBurst + 2 {
		_, err := js.m.ServeJoin(ctx, stranger, req)
		want := artmesh.PermissionDenied
		if i >= joinPeerBurst {
			want = artmesh.Unavailable
		}
		if !errors.Is(err, want) {
			t.Fatalf("attempt %d: %v (kind %v), want %v", i+1, err, artmesh.KindOf(err), want)
		}
		if i >= joinPeerBurst && !strings.Contains(err.Error(), "too many join attempts") {
			t.Fatalf("attempt %d refused as %v", i+1, err)
		}
	}
	js.clock.Add(time.Second)
	if _, err := js.m.ServeJoin(ctx, stranger, req); !errors.Is(err, artmesh.PermissionDenied) {
		t.Fatalf("a second later: %v, want the invite's refusal", err)
	}
	if _, err := js.m.ServeJoin(ctx, stranger, req); !errors.Is(err, artmesh.Unavailable) {
		t.Fatalf("a second attempt in that second: %v, want too many", err)
	}

	member := newPeer(t)
	js.cat.setMembers(catalog.Member{PeerID: member.String()})
	for i := range joinTotalBurst + 5 {
		if _, err := js.m.ServeJoin(ctx, member, req); !errors.Is(err, artmesh.PermissionDenied) {
			t.Fatalf("a member's pass-on %d: %v, want the invite's refusal", i+1, err)
		}
	}
	if n := js.cat.proposed(); n != 0 {
		t.Fatalf("%d proposals", n)
	}
}

// TestJoinLimiter: the per-peer and total limits, in exact counts.
func TestJoinLimiter(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	peers := make([]peer.ID, joinTotalBurst+1)
	for i := range peers {
		peers[i] = newPeer(t)
	}
	allowed := func(l *joinLimiter, p peer.ID, at time.Time, n int) int {
		ok := 0
		for range n {
			if _, err := l.allow(p, at); err == nil {
				ok++
			} else if !errors.Is(err, artmesh.Unavailable) {
				t.Fatalf("refused as %v", err)
			}
		}
		return ok
	}

	t.Run("per peer", func(t *testing.T) {
		l := newJoinLimiter()
		if got := allowed(l, peers[0], t0, 10); got != joinPeerBurst {
			t.Fatalf("%d of 10 at once allowed, want the burst of %d", got, joinPeerBurst)
		}
		if got := allowed(l, peers[0], t0.Add(999*time.Millisecond), 1); got != 0 {
			t.Fatal("allowed again before a second passed")
		}
		if got := allowed(l, peers[0], t0.Add(time.Second), 5); got != 1 {
			t.Fatalf("%d allowed a second later, want 1", got)
		}
	})

	t.Run("total", func(t *testing.T) {
		l := newJoinLimiter()
		// A peer over its own limit uses up none of the total.
		got := allowed(l, peers[0], t0, 10)
		for _, p := range peers[1:] {
			got += allowed(l, p, t0, 1)
		}
		if got != joinTotalBurst {
			t.Fatalf("%d attempts of %d peers allowed at once, want the total burst of %d", got, len(peers), joinTotalBurst)
		}
		// 20 a second: one more every 50 ms.
		if got := allowed(l, peers[len(peers)-1], t0.Add(49*time.Millisecond), 1); got != 0 {
			t.Fatal("the total allowed one more within 49 ms")
		}
		if got := allowed(l, peers[len(peers)-1], t0.Add(50*time.Millisecond), 1); got != 1 {
			t.Fatal("the total did not allow one more after 50 ms")
		}
	})

	t.Run("bounded", func(t *testing.T) {
		l := newJoinLimiter()
		// The limiter only keys on peer ids: any distinct strings do.
		for i := range joinMaxPeers {
			_, _ = l.allow(peer.ID("p"+strconv.Itoa(i)), t0)
		}
		p := peer.ID("new")
		if _, err := l.allow(p, t0.Add(joinPeerIdle-time.Millisecond)); err == nil || len(l.peers) != joinMaxPeers {
			t.Fatalf("a new peer while %d busy ones are kept: %v, %d kept", joinMaxPeers, err, len(l.peers))
		}
		if _, err := l.allow(p, t0.Add(joinPeerIdle)); err != nil || len(l.peers) != 1 {
			t.Fatalf("a new peer once the others idled: %v, %d kept; want allowed and 1 kept", err, len(l.peers))
		}
	})
}

// TestJoinLimiterBans: a peer that goes on past its own limit is marked
// for a ban after joinBanAfter refusals in a row, and one allowed attempt
// in between starts the count again.
func TestJoinLimiterBans(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	p := newPeer(t)
	l := newJoinLimiter()
	for i := range joinPeerBurst {
		if ban, err := l.allow(p, t0); err != nil || ban {
			t.Fatalf("attempt %d of the burst: %v, ban %v", i, err, ban)
		}
	}
	for i := 1; i <= joinBanAfter; i++ {
		ban, err := l.allow(p, t0)
		if err == nil || ban != (i == joinBanAfter) {
			t.Fatalf("refusal %d: %v, ban %v; want a ban at %d", i, err, ban, joinBanAfter)
		}
	}
	// A second later one attempt is allowed again, and the count starts over.
	t1 := t0.Add(time.Second)
	if ban, err := l.allow(p, t1); err != nil || ban {
		t.Fatalf("an attempt a second later: %v, ban %v", err, ban)
	}
	if ban, err := l.allow(p, t1); err == nil || ban {
		t.Fatalf("the next at once: %v, ban %v; want a refusal and no ban", err, ban)
	}
}

// TestServeJoinKeepsOthersAgents: a joiner whose agent name is taken by an
// agent that is not its node's (an admin from before node agents, or a
// peer id ground to collide) is refused before anything is proposed, and
// gets no key.
func TestServeJoinKeepsOthersAgents(t *testing.T) {
	js := newJoinServer(true)
	now := js.clock.Now()
	js.cat.invites[acl.HashKey("one")] = catalog.Invite{SecretHash: acl.HashKey("one"), ExpiresAt: now.Add(time.Hour)}
	squatted := newPeer(t)
	js.cat.agents[joinAgent(squatted.String())] = "old key"
	resp, err := js.m.ServeJoin(context.Background(), squatted, joinRequestOf(t, squatted, "one"))
	if resp != nil || !errors.Is(err, artmesh.Conflict) || js.cat.proposed() != 0 {
		t.Fatalf("a join whose agent name is another's: %q, %v, %d proposals", resp, err, js.cat.proposed())
	}
	if js.cat.agents[joinAgent(squatted.String())] != "old key" {
		t.Fatal("the other agent was given a new key")
	}
}

// TestJoinLeaders: a joiner takes from the join answer, which a member
// relays, only the voters that its ticket names too; an answer that names
// others (the relay itself) adds nobody.
func TestJoinLeaders(t *testing.T) {
	v1, v2, v3, relay := newPeer(t), newPeer(t), newPeer(t), newPeer(t)
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/" + relay.String()
	withLeaders := &repo.Ticket{Addrs: []string{addr}, Leaders: []string{v1.String(), v2.String(), v3.String()}}
	older := &repo.Ticket{Addrs: []string{addr}}
	set := func(ps ...peer.ID) map[peer.ID]struct{} {
		out := map[peer.ID]struct{}{}
		for _, p := range ps {
			out[p] = struct{}{}
		}
		return out
	}
	tests := []struct {
		name     string
		t        *repo.Ticket
		answered []peer.ID
		want     map[peer.ID]struct{}
	}{
		{"the answer agrees", withLeaders, []peer.ID{v1, v2, v3}, set(v1, v2, v3)},
		{"the answer narrows", withLeaders, []peer.ID{v1, v2}, set(v1, v2)},
		{"the relay names itself too", withLeaders, []peer.ID{v1, relay}, set(v1)},
		{"the relay names only itself", withLeaders, []peer.ID{relay}, set(v1, v2, v3)},
		{"no voters in the answer", withLeaders, nil, set(v1, v2, v3)},
		{"an older ticket: its peers", older, []peer.ID{relay, v1}, set(relay)},
		{"an older ticket, others named", older, []peer.ID{v1}, set(relay)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var answered []string
			for _, p := range tt.answered {
				answered = append(answered, p.String())
			}
			if got := joinLeaders(tt.t, answered); !maps.Equal(got, tt.want) {
				t.Fatalf("joinLeaders = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestServeJoinRefusesOlderBinaries: a joiner that knows fewer command
// types than the members is refused before anything is proposed.
func TestServeJoinRefusesOlderBinaries(t *testing.T) {
	js := newJoinServer(true)
	now := js.clock.Now()
	js.cat.invites[acl.HashKey("one")] = catalog.Invite{SecretHash: acl.HashKey("one"), ExpiresAt: now.Add(time.Hour)}
	js.cat.minCommands = catalog.KnownCommands + 1
	joiner := newPeer(t)
	resp, err := js.m.ServeJoin(context.Background(), joiner, joinRequestOf(t, joiner, "one"))
	if resp != nil || !errors.Is(err, artmesh.Conflict) || js.cat.proposed() != 0 {
		t.Fatalf("an older joiner: %q, %v, %d proposals", resp, err, js.cat.proposed())
	}
}

// TestJoinRetryable checks which failed joins Join asks again: those the
// mesh cannot take now, not refusals.
func TestJoinRetryable(t *testing.T) {
	remote := func(k artmesh.Kind) error {
		return artmesh.E(artmesh.Unavailable, "could not join the mesh with this ticket", &mesh.RemoteError{Kind: k, Message: "x"})
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"no leader (an election)", remote(artmesh.Unavailable), true},
		{"outcome unknown", remote(artmesh.OutcomeUnknown), true},
		{"no member answered", artmesh.E(artmesh.Unavailable, "could not join", fmt.Errorf("%w: %w", errJoinUnanswered, context.DeadlineExceeded)), true},
		{"invite unknown", remote(artmesh.PermissionDenied), false},
		{"name taken", remote(artmesh.Conflict), false},
		{"invite expired", remote(artmesh.Expired), false},
		{"an internal error", remote(artmesh.Other), false},
		{"catching up failed", fmt.Errorf("membership: catching up with the mesh: %w", context.Canceled), false},
	} {
		if got := joinRetryable(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
