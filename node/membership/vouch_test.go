package membership

import (
	"context"
	"testing"
	"time"

	"github.com/artmesh/artmesh/catalog"
)

// TestVouchFrom: a peer may lead a node catching up only when a majority
// of the voters of its configuration name it, up to the lowest term they
// name; answers of peers that are not voters do not count.
func TestVouchFrom(t *testing.T) {
	n := newPeer(t)
	ns := n.String()
	voters := []string{"self", "a", "b"}
	five := []string{"self", "a", "b", "c", "d"}
	names := func(term uint64) statusAnswer { return statusAnswer{LeaderID: ns, Term: term} }
	other := statusAnswer{LeaderID: "a", Term: 9}
	tests := []struct {
		name    string
		voters  []string
		answers map[string]statusAnswer
		term    uint64 // 0: not vouched
	}{
		{"two of three voters", voters, map[string]statusAnswer{"a": names(7), "b": names(7)}, 7},
		{"two of three, the lower term", voters, map[string]statusAnswer{"a": names(7), "b": names(8)}, 7},
		{"one of three", voters, map[string]statusAnswer{"a": names(7), "b": other}, 0},
		{"one of three, the other silent", voters, map[string]statusAnswer{"a": names(7)}, 0},
		{"its own word", voters, map[string]statusAnswer{"a": names(7), ns: names(7)}, 0},
		{"nonvoters do not count", voters, map[string]statusAnswer{"a": names(7), "x": names(7), "y": names(7)}, 0},
		{"no term", voters, map[string]statusAnswer{"a": names(0), "b": names(0)}, 0},
		{"two of five", five, map[string]statusAnswer{"a": names(7), "b": names(7), "c": other}, 0},
		{"three of five", five, map[string]statusAnswer{"a": names(7), "b": names(9), "c": names(8)}, 7},
		{"no voters", nil, map[string]statusAnswer{"a": names(7)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := vouchFrom(tt.voters, tt.answers)
			if ok != (tt.term > 0) || ok && (v.peer != n || v.term != tt.term) {
				t.Fatalf("vouchFrom = %+v %v, want term %d", v, ok, tt.term)
			}
		})
	}
}

// TestVouchedLeader: the gate's question never waits; it starts a round
// of questions to the voters, and once a majority named the nonvoter,
// it may lead up to their term, not above.
func TestVouchedLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	catA, catB, catC := newFakeCatalog(false), newFakeCatalog(false), newFakeCatalog(false)
	a := newTestNode(t, catA, t.TempDir())
	b := newTestNode(t, catB, t.TempDir())
	c := newTestNode(t, catC, t.TempDir())
	n := newPeer(t)
	catA.servers = []catalog.Server{{ID: a.id.String(), Voter: true}, {ID: b.id.String(), Voter: true},
		{ID: c.id.String(), Voter: true}, {ID: n.String()}}
	a.m.addMembers([]catalog.Member{b.member(), c.member()})
	a.roster.SetMembers([]string{b.id.String(), c.id.String()})
	catB.leaderID, catB.term = n.String(), 7
	catC.leaderID, catC.term = b.id.String(), 7 // C follows someone else
	done := make(chan struct{})
	go func() { defer close(done); a.m.runVouches(ctx) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	if a.m.VouchedLeader(n, 7) {
		t.Fatal("vouched before anyone was asked")
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatalf("VouchedLeader waited %s", time.Since(start))
	}
	// Only B names N: not a majority of three.
	time.Sleep(2 * vouchEvery)
	if a.m.VouchedLeader(n, 7) {
		t.Fatal("vouched by one voter of three")
	}
	catC.mu.Lock()
	catC.leaderID = n.String()
	catC.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !a.m.VouchedLeader(n, 7) {
		if time.Now().After(deadline) {
			t.Fatal("never vouched by two voters of three")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !a.m.VouchedLeader(n, 6) || !a.m.VouchedLeader(n, 0) || a.m.VouchedLeader(n, 8) || a.m.VouchedLeader(b.id, 7) {
		t.Fatal("the vouch holds for another term or peer")
	}
}
