package node

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/repo"
)

// TestFetchingRowsFollowFetches: a node that fetches a large DAG from a
// member is recorded as fetching it, on every node (others may take from
// it what it has), and stays so for a while after it finished.
func TestFetchingRowsFollowFetches(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1})
	inv, err := a.CreateInvite(ctx, admin, 600)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := repo.ParseTicket(inv.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	repoB := t.TempDir()
	if err := repo.Init(ctx, repoB, repo.InitOptions{Listen: testListen, Join: ticket}); err != nil {
		t.Fatal(err)
	}
	b, _ := openTestNode(t, Config{Repo: repoB, GCDelay: -1})
	if err := b.Consistent(ctx); err != nil {
		t.Fatal(err)
	}
	im, err := a.content.Import(ctx, bytes.NewReader(randomBytes(9, 48<<20)), -1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer im.Release()
	if err := a.cat.AddHolder(ctx, im.CID.String(), a.peerID.String()); err != nil {
		t.Fatal(err)
	}
	if err := b.Consistent(ctx); err != nil {
		t.Fatal(err)
	}
	fe := b.fetcher.Ensure(im.CID)
	<-fe.Done()
	if fe.Err() != nil {
		t.Fatal(fe.Err())
	}
	// Finished a moment ago: still serving, so recorded, on every node.
	waitFor(t, 10*time.Second, "b recorded as fetching on a", func() bool {
		got, _ := a.cat.Fetchers(im.CID.String())
		return slices.Equal(got, []string{b.peerID.String()})
	})

}

// TestFetchingPlan: which rows a node puts, drops, and (as the leader)
// drops as stale.
func TestFetchingPlan(t *testing.T) {
	now := time.Now()
	row := func(cid, peer string, age time.Duration) catalog.Fetching {
		return catalog.Fetching{CID: cid, Peer: peer, Seen: now.Add(-age)}
	}
	for _, tc := range []struct {
		name             string
		serving          []string
		rows             []catalog.Fetching
		put, drop, stale []catalog.Fetching
	}{
		{name: "a new fetch is recorded", serving: []string{"c1"}, put: []catalog.Fetching{row("c1", "me", 0)}},
		{name: "a fresh row stays as it is", serving: []string{"c1"}, rows: []catalog.Fetching{row("c1", "me", time.Second)}},
		{name: "an old row is renewed", serving: []string{"c1"}, rows: []catalog.Fetching{row("c1", "me", 2*fetchingRenew)},
			put: []catalog.Fetching{row("c1", "me", 0)}},
		{name: "a fetch that ended is dropped", rows: []catalog.Fetching{row("c1", "me", time.Second)},
			drop: []catalog.Fetching{row("c1", "me", time.Second)}},
		{name: "another's fresh row is left alone", rows: []catalog.Fetching{row("c1", "them", time.Second)}},
		{name: "another's stale row is for the leader to drop", rows: []catalog.Fetching{row("c1", "them", 2*catalog.FetchingStale)},
			stale: []catalog.Fetching{row("c1", "them", 2*catalog.FetchingStale)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serving := make(map[string]bool)
			for _, c := range tc.serving {
				serving[c] = true
			}
			put, drop, stale := fetchingPlan("me", serving, tc.rows, now)
			if !slices.Equal(put, tc.put) || !slices.Equal(drop, tc.drop) || !slices.Equal(stale, tc.stale) {
				t.Fatalf("put %v drop %v stale %v, want %v %v %v", put, drop, stale, tc.put, tc.drop, tc.stale)
			}
		})
	}
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
