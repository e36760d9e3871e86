package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/repo"
)

func TestRemovedBy(t *testing.T) {
	tests := []struct {
		name     string
		a        statusAnswer
		listedAt uint64
		removed  bool
	}{
		{"listed by the leader", statusAnswer{Listed: true, Member: true, Leader: true, ConfigIndex: 9, CommitIndex: 9}, 5, false},
		{"listed by a newer configuration", statusAnswer{Listed: true, ConfigIndex: 9, CommitIndex: 9}, 5, false},
		{"not listed by a newer committed configuration", statusAnswer{ConfigIndex: 9, CommitIndex: 9}, 5, true},
		// A configuration above the answerer's commit index may be
		// dropped by the next leader: no proof, from the leader either.
		{"not listed by a newer configuration not committed", statusAnswer{ConfigIndex: 9, CommitIndex: 8}, 5, false},
		{"not listed by the leader, not committed", statusAnswer{Leader: true, ConfigIndex: 9, CommitIndex: 8}, 5, false},
		// Claiming to lead proves nothing: the liar's answer of the
		// attack, a leader without any configuration.
		{"a leader without a configuration", statusAnswer{Leader: true}, 5, false},
		{"not listed by the leader, older configuration", statusAnswer{Leader: true, ConfigIndex: 1, CommitIndex: 30}, 5, false},
		// A peer that is behind (its configuration is older than this
		// node's own) does not know of this node yet: no proof.
		{"not listed by an older configuration", statusAnswer{ConfigIndex: 3, CommitIndex: 3}, 5, false},
		{"not listed by the same configuration", statusAnswer{ConfigIndex: 5, CommitIndex: 5}, 5, false},
		{"a peer without state", statusAnswer{}, 5, false},
		// Never seen listed in this run: nothing counts.
		{"not seen listed, a newer configuration", statusAnswer{ConfigIndex: 9, CommitIndex: 9}, 0, false},
		{"not seen listed, the leader", statusAnswer{Leader: true, ConfigIndex: 9, CommitIndex: 12}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := removedBy(tt.a, tt.listedAt); got != tt.removed {
				t.Fatalf("removedBy = %v, want %v", got, tt.removed)
			}
		})
	}
}

// TestRemovedByMajority: one answer, the leader's or a liar's claiming
// to lead, never retires a node; a majority of the voters of the
// configuration that last listed it does, and peers that were not voters
// there do not count.
func TestRemovedByMajority(t *testing.T) {
	gone := statusAnswer{ConfigIndex: 20, CommitIndex: 20}
	liar := statusAnswer{Leader: true}
	liarNewer := statusAnswer{Leader: true, ConfigIndex: 99, CommitIndex: 99}
	kept := statusAnswer{Listed: true, ConfigIndex: 20, CommitIndex: 20}
	sole := statusAnswer{Leader: true, SoleVoter: true, ConfigIndex: 1, CommitIndex: 30}
	three := &removalCheck{listedAt: 10, voters: []string{"self", "b", "c"}}
	five := &removalCheck{listedAt: 10, voters: []string{"self", "b", "c", "d", "e"}}
	tests := []struct {
		name    string
		rc      *removalCheck
		answers map[string]statusAnswer
		says    int // voters that say so; 0 when not believed, -1 for b leading alone
	}{
		{"one liar claiming to lead", three, map[string]statusAnswer{"b": liar}, 0},
		{"one liar with a newer configuration", three, map[string]statusAnswer{"b": liarNewer}, 0},
		{"one voter of three, the other lists it", three, map[string]statusAnswer{"b": gone, "c": kept}, 0},
		{"one voter of three, the other silent", three, map[string]statusAnswer{"b": gone}, 0},
		{"two voters of three", three, map[string]statusAnswer{"b": gone, "c": gone}, 2},
		{"a minority of five", five, map[string]statusAnswer{"b": gone, "c": liarNewer, "d": kept}, 0},
		{"two of five and a liar", five, map[string]statusAnswer{"b": gone, "c": gone, "d": liar, "e": kept}, 0},
		{"a majority of five", five, map[string]statusAnswer{"b": gone, "c": gone, "d": liarNewer, "e": kept}, 3},
		{"non-voters do not count", three, map[string]statusAnswer{"b": gone, "n1": gone, "n2": gone, "n3": gone}, 0},
		{"its own answer does not count twice", three, map[string]statusAnswer{"b": gone, "self": kept}, 0},
		{"never seen listed", &removalCheck{voters: []string{"b", "c"}}, map[string]statusAnswer{"b": gone, "c": gone}, 0},
		{"no voters known", &removalCheck{listedAt: 10}, map[string]statusAnswer{"b": gone, "c": gone}, 0},
		// An outage recovery (configuration index 1) or one of two voters.
		{"a voter of it leads alone", three, map[string]statusAnswer{"b": sole, "c": kept}, -1},
		{"a member that was no voter leads alone", three, map[string]statusAnswer{"n1": sole}, 0},
		{"alone, but lists it", three, map[string]statusAnswer{"b": {Leader: true, SoleVoter: true, Listed: true}}, 0},
		{"alone, never seen listed", &removalCheck{voters: []string{"b", "c"}}, map[string]statusAnswer{"b": sole}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := removedByMajority(tt.answers, tt.rc)
			if tt.says == 0 {
				if got != "" {
					t.Fatalf("removedByMajority = %q, want not believed", got)
				}
				return
			}
			want := fmt.Sprintf("%d of the %d voters", tt.says, len(tt.rc.voters))
			if tt.says < 0 {
				want = "b, a voter of the catalog's Raft configuration"
			}
			if !strings.HasPrefix(got, want) {
				t.Fatalf("removedByMajority = %q, want it to begin with %q", got, want)
			}
		})
	}
}

// TestCheckRemoved: a member that is behind asks the voters of the
// configuration that last listed it about itself over StatusProtocol (a
// peer that is not a member any more may ask), and believes a newer
// committed configuration without it only from a majority of them; once
// marked, the removal is in the repo config and Raft is stopped.
func TestCheckRemoved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dirA := t.TempDir()
	writeConfig(t, dirA, repo.Config{Member: true})
	catA := newFakeCatalog(false)
	a := newTestNode(t, catA, dirA)
	a.m.member.Store(true)
	catB, catC, catN := newFakeCatalog(false), newFakeCatalog(false), newFakeCatalog(false)
	b := newTestNode(t, catB, t.TempDir())
	c := newTestNode(t, catC, t.TempDir())
	n := newTestNode(t, catN, t.TempDir())
	catA.servers = []catalog.Server{{ID: a.id.String(), Voter: true}, {ID: b.id.String(), Voter: true},
		{ID: c.id.String(), Voter: true}, {ID: n.id.String()}}
	catA.confIndex = 10
	catA.setMembers(a.member(), b.member(), c.member(), n.member())
	a.m.addMembers([]catalog.Member{b.member(), c.member(), n.member()})
	a.roster.SetMembers([]string{b.id.String(), c.id.String(), n.id.String()})
	// B has since taken A out, and says so while claiming to lead; so
	// does the nonvoter N. C still lists A.
	without := []catalog.Server{{ID: b.id.String(), Voter: true, Leader: true}, {ID: c.id.String(), Voter: true}, {ID: n.id.String()}}
	with := append(slices.Clone(without), catalog.Server{ID: a.id.String(), Voter: true})
	catB.servers, catB.confIndex, catB.leader = without, 20, true
	catN.servers, catN.confIndex, catN.leader = slices.Clone(without), 20, true
	catC.servers, catC.confIndex = with, 20
	for _, x := range []*testNode{b, c, n} {
		x.roster.SetMembers(nil)
	}

	var rc removalCheck
	if why := a.m.checkRemoved(ctx, &rc); why != "" {
		t.Fatalf("removed on the word of one voter and a nonvoter: %q", why)
	}
	if time.Since(rc.lastAsk) > time.Minute || rc.listedAt != 10 || !slices.Equal(rc.voters, []string{a.id.String(), b.id.String(), c.id.String()}) {
		t.Fatalf("the check's memory: %+v", rc)
	}
	// C has the removal too: two of the three voters say so.
	catC.mu.Lock()
	catC.servers = slices.Clone(without)
	catC.mu.Unlock()
	// Asked a moment ago: not again before statusEvery.
	if why := a.m.checkRemoved(ctx, &rc); why != "" {
		t.Fatalf("asked again at once: %q", why)
	}
	rc.lastAsk = time.Time{}
	if why := a.m.checkRemoved(ctx, &rc); !strings.HasPrefix(why, "2 of the 3 voters") || !strings.Contains(why, "(index 10)") {
		t.Fatalf("checkRemoved = %q, want two of the three voters as the reason", why)
	}
	// C lists A again: no proof.
	catC.mu.Lock()
	catC.servers = with
	catC.mu.Unlock()
	rc.lastAsk = time.Time{}
	if why := a.m.checkRemoved(ctx, &rc); why != "" {
		t.Fatalf("removed while a voter lists it: %q", why)
	}
	// A caught up, with a leader: it asks nobody.
	a.caughtUp = true
	catA.mu.Lock()
	catA.servers[1].Leader = true
	catA.mu.Unlock()
	rc.lastAsk = time.Time{}
	if why := a.m.checkRemoved(ctx, &rc); why != "" || !rc.lastAsk.IsZero() {
		t.Fatalf("a caught-up node with a leader asked (%v): %q", rc.lastAsk, why)
	}
	// A configuration without it, older than one that listed it, is what
	// a node catching up from the start of the log goes through: no
	// proof, and neither is one without it when it was never seen listed.
	catA.mu.Lock()
	catA.servers = catA.servers[1:]
	catA.confIndex = 3
	catA.mu.Unlock()
	if why := a.m.checkRemoved(ctx, &rc); why != "" {
		t.Fatalf("an older configuration without it: %q", why)
	}
	if why := a.m.checkRemoved(ctx, &removalCheck{lastAsk: time.Now()}); why != "" {
		t.Fatalf("never seen listed: %q", why)
	}
	// A newer configuration of its own without it is proof enough, once
	// it is committed: appended only, a new leader may drop it.
	catA.mu.Lock()
	catA.confIndex = 11
	catA.uncommitted = true
	catA.mu.Unlock()
	if why := a.m.checkRemoved(ctx, &removalCheck{listedAt: rc.listedAt, lastAsk: time.Now()}); why != "" {
		t.Fatalf("a newer own configuration without it, not committed: %q", why)
	}
	catA.mu.Lock()
	catA.uncommitted = false
	catA.mu.Unlock()
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
