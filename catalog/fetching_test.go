package catalog

import (
	"slices"
	"testing"
	"time"
)

// TestFetchingRows: rows are kept for members only, renewed in place,
// dropped unconditionally or only when not renewed after a time, ignored
// by readers once stale, and gone with their member.
func TestFetchingRows(t *testing.T) {
	h := newTestFSM(t)
	c := &Catalog{fsm: h.f}
	h.must(PutMember{Member: Member{PeerID: "p1"}})
	h.must(PutMember{Member: Member{PeerID: "p2"}})
	now := time.Now()
	old := now.Add(-2 * FetchingStale)
	h.must(putFetchingCmd{Rows: []Fetching{
		{CID: "big", Peer: "p1", Seen: now},
		{CID: "big", Peer: "p2", Seen: old},
		{CID: "big", Peer: "stranger", Seen: now}, // not a member: left out
		{CID: "bigger", Peer: "p1", Seen: now},
	}})
	fetchers := func(cid string) []string {
		t.Helper()
		got, err := c.Fetchers(cid)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	all := func() int {
		t.Helper()
		rows, err := c.AllFetching()
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	if got := fetchers("big"); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("fetchers of big %v, want [p1] (p2's row is stale, a stranger has none)", got)
	}
	if n := all(); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	// Renewed, p2 counts again.
	h.must(putFetchingCmd{Rows: []Fetching{{CID: "big", Peer: "p2", Seen: now}}})
	if got := fetchers("big"); !slices.Equal(got, []string{"p1", "p2"}) {
		t.Fatalf("fetchers after renewal %v", got)
	}
	// A drop of rows not renewed since a time spares a renewed row.
	h.must(dropFetchingCmd{Rows: []Fetching{{CID: "big", Peer: "p2"}}, Before: now.Add(-time.Second)})
	if got := fetchers("big"); !slices.Equal(got, []string{"p1", "p2"}) {
		t.Fatalf("a conditional drop removed a renewed row: %v", got)
	}
	h.must(dropFetchingCmd{Rows: []Fetching{{CID: "big", Peer: "p2"}, {CID: "nothing", Peer: "p2"}}})
	if got := fetchers("big"); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("after dropping p2: %v", got)
	}
	// Removing a member drops its rows.
	h.must(deleteMemberCmd{PeerID: "p1"})
	if n := all(); n != 0 {
		t.Fatalf("%d rows left after p1 was removed", n)
	}
	// The input rules, which the leader also applies to a forwarded put.
	if err := (putFetchingCmd{Rows: []Fetching{{CID: "big", Peer: "p1"}}}).check(); err == nil {
		t.Fatal("a row without a time passed the input rules")
	}
	if err := (putFetchingCmd{Rows: make([]Fetching, maxFetchingRows+1)}).check(); err == nil {
		t.Fatal("too many rows passed the input rules")
	}
	// The commands are known to the envelope check, so a follower's
	// report reaches the log.
	if !putFetchingType.known() || !dropFetchingType.known() || topicOf(putFetchingType) != TopicFetching {
		t.Fatal("fetching commands are not known, or not of their own topic")
	}
}
