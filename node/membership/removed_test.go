package membership

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/repo"
)

func TestRemovedBy(t *testing.T) {
	tests := []struct {
		name    string
		a       statusAnswer
		own     uint64
		removed string // a part of the reason; "" when not removed
	}{
		{"listed by the leader", statusAnswer{Listed: true, Member: true, Leader: true, ConfigIndex: 9}, 5, ""},
		{"listed by a newer configuration", statusAnswer{Listed: true, ConfigIndex: 9}, 5, ""},
		{"not listed by the leader", statusAnswer{Leader: true, ConfigIndex: 1, CommitIndex: 30}, 5, "leader p no longer lists"},
		{"not listed by a newer configuration", statusAnswer{ConfigIndex: 9, CommitIndex: 9}, 5, "index 9, this node's is 5"},
		// A configuration above the answerer's commit index may be
		// dropped by the next leader: no proof, from the leader either.
		{"not listed by a newer configuration not committed", statusAnswer{ConfigIndex: 9, CommitIndex: 8}, 5, ""},
		{"not listed by the leader, not committed", statusAnswer{Leader: true, ConfigIndex: 9, CommitIndex: 8}, 5, ""},
		// A peer that is behind (its configuration is older than this
		// node's own) does not know of this node yet: no proof.
		{"not listed by an older configuration", statusAnswer{ConfigIndex: 3}, 5, ""},
		{"not listed by the same configuration", statusAnswer{ConfigIndex: 5}, 5, ""},
		{"a peer without state", statusAnswer{}, 5, ""},
		// Never seen listed in this run (its state was moved aside): only
		// the leader's word counts.
		{"not seen listed, a newer configuration", statusAnswer{ConfigIndex: 9}, 0, ""},
		{"not seen listed, the leader", statusAnswer{Leader: true, ConfigIndex: 9, CommitIndex: 12}, 0, "leader p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := removedBy("p", tt.a, tt.own)
			if tt.removed == "" && got != "" || tt.removed != "" && !strings.Contains(got, tt.removed) {
				t.Fatalf("removedBy = %q, want %q", got, tt.removed)
			}
		})
	}
}

// TestCheckRemoved: a member that is behind asks the members it knows
// about itself over StatusProtocol, a peer that is not a member any more
// may ask, and a newer configuration without it is proof of its removal;
// once marked, the removal is in the repo config and Raft is stopped.
func TestCheckRemoved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dirA := t.TempDir()
	writeConfig(t, dirA, repo.Config{Member: true})
	catA := newFakeCatalog(false)
	a := newTestNode(t, catA, dirA)
	a.m.member.Store(true)
	catB := newFakeCatalog(false)
	b := newTestNode(t, catB, t.TempDir())
	catA.servers = []catalog.Server{{ID: a.id.String(), Voter: true}, {ID: b.id.String(), Voter: true}}
	catA.confIndex = 10
	catA.setMembers(a.member(), b.member())
	a.m.addMembers([]catalog.Member{b.member()})
	a.roster.SetMembers([]string{b.id.String()})
	// B has since taken A out: A is no longer admitted there.
	catB.servers = []catalog.Server{{ID: b.id.String(), Voter: true, Leader: true}}
	catB.confIndex = 20
	catB.setMembers(b.member())
	b.roster.SetMembers(nil)

	var rc removalCheck
	if why := a.m.checkRemoved(ctx, &rc); !strings.Contains(why, "index 20, this node's is 10") {
		t.Fatalf("checkRemoved = %q, want the newer configuration as the reason", why)
	}
	if time.Since(rc.lastAsk) > time.Minute || rc.listedAt != 10 {
		t.Fatalf("the check's memory: %+v", rc)
	}
	// Asked a moment ago: not again before statusEvery.
	if why := a.m.checkRemoved(ctx, &rc); why != "" {
		t.Fatalf("asked again at once: %q", why)
	}
	// B still lists A: no proof.
	catB.servers = append(catB.servers, catalog.Server{ID: a.id.String(), Voter: true})
	rc.lastAsk = time.Time{}
	if why := a.m.checkRemoved(ctx, &rc); why != "" {
		t.Fatalf("removed while the peer lists it: %q", why)
	}
	// A caught up, with a leader: it asks nobody.
	catB.servers = catB.servers[:1]
	a.caughtUp = true
	catA.servers[1].Leader = true
	rc.lastAsk = time.Time{}
	if why := a.m.checkRemoved(ctx, &rc); why != "" || !rc.lastAsk.IsZero() {
		t.Fatalf("a caught-up node with a leader asked (%v): %q", rc.lastAsk, why)
	}
	// A configuration without it, older than one that listed it, is what
	// a node catching up from the start of the log goes through: no
	// proof, and neither is one without it when it was never seen listed.
	catA.servers = catA.servers[1:]
	catA.confIndex = 3
	if why := a.m.checkRemoved(ctx, &rc); why != "" {
		t.Fatalf("an older configuration without it: %q", why)
	}
	if why := a.m.checkRemoved(ctx, &removalCheck{lastAsk: time.Now()}); why != "" {
		t.Fatalf("never seen listed: %q", why)
	}
	// A newer configuration of its own without it is proof enough, once
	// it is committed: appended only, a new leader may drop it.
	catA.confIndex = 11
	catA.uncommitted = true
	if why := a.m.checkRemoved(ctx, &removalCheck{listedAt: rc.listedAt, lastAsk: time.Now()}); why != "" {
		t.Fatalf("a newer own configuration without it, not committed: %q", why)
	}
	catA.uncommitted = false
	why := a.m.checkRemoved(ctx, &rc)
	if !strings.Contains(why, "(index 11) no longer lists it") {
		t.Fatalf("checkRemoved with a newer own configuration without it: %q", why)
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a.m.markRemoved(why, at)
	a.m.markRemoved("again", at.Add(time.Hour)) // once only
	r, gone := a.m.Removed()
	if !gone || r.Reason != why || !r.At.Equal(at) {
		t.Fatalf("Removed = %+v %v", r, gone)
	}
	if !catA.stopped {
		t.Fatal("a removed node's Raft was not stopped")
	}
	conf, err := repo.ReadConfig(dirA)
	if err != nil || conf.Removed == nil || *conf.Removed != r || !conf.Member {
		t.Fatalf("the repo config after the removal: %+v %v", conf, err)
	}
	// The next start knows at once.
	m := New(Config{Removed: conf.Removed})
	if got, gone := m.Removed(); !gone || got != r {
		t.Fatalf("a Manager started with the record: %+v %v", got, gone)
	}
}

// TestSingleNodeNeverRemoved: a node that was never a mesh's member asks
// nobody and is never removed.
func TestSingleNodeNeverRemoved(t *testing.T) {
	cat := newFakeCatalog(false)
	n := newTestNode(t, cat, t.TempDir())
	cat.servers = []catalog.Server{{ID: "someone-else", Voter: true}}
	var rc removalCheck
	if why := n.m.checkRemoved(context.Background(), &rc); why != "" || !rc.lastAsk.IsZero() {
		t.Fatalf("a single node: %q, asked at %v", why, rc.lastAsk)
	}
}

// TestLeaveFoundOutFirst: a node that leaves may find out it was removed
// (and stop its Raft) before the leader's answer reaches it; the leave
// then succeeds at once instead of asking a leader it no longer knows.
func TestLeaveFoundOutFirst(t *testing.T) {
	self, other := newPeer(t).String(), newPeer(t).String()
	cat := newFakeCatalog(false, catalog.Server{ID: self, Voter: true}, catalog.Server{ID: other, Voter: true, Leader: true})
	cat.members[self] = catalog.Member{PeerID: self}
	var m *Manager
	calls := 0
	m = New(Config{Self: mustDecode(t, self), Catalog: cat, Repo: t.TempDir(), CallLeader: func(context.Context, protocol.ID, []byte) ([]byte, error) {
		calls++
		m.markRemoved("this node's copy of the catalog's Raft configuration no longer lists it", time.Now())
		return nil, errors.New("stream reset")
	}})
	start := time.Now()
	if err := m.Remove(context.Background(), self); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if calls != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("the leader was asked %d times, for %s", calls, time.Since(start))
	}
}
