package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/artmesh/artmesh/catalog"
)

func replicaCIDs(rs []catalog.Replica) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.CID)
	}
	slices.Sort(out)
	return out
}

// TestAllocViewLooksAtWhatItMust: a run of the allocator looks at what
// changed, at the replicas of members being walked, at the
// under-replicated while that pass is on, and at a page of its sweep;
// with none of them, at nothing.
func TestAllocViewLooksAtWhatItMust(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1})
	var want []string
	for i := range 5 {
		art, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "a", Size: -1}, strings.NewReader(fmt.Sprintf("content %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, art.CID)
	}
	slices.Sort(want)
	self := a.peerID.String()
	end := want[len(want)-1] // a sweep that has just looked at the last one

	v := allocView{started: true, sweep: end}
	if rs, err := v.look(a.cat, nil, 1); err != nil || len(rs) != 0 || v.sweep != "" {
		t.Fatalf("nothing to look at: %v %v, sweep %q", replicaCIDs(rs), err, v.sweep)
	}
	v = allocView{started: true, sweep: end}
	if rs, err := v.look(a.cat, want[1:2], 1); err != nil || !slices.Equal(replicaCIDs(rs), want[1:2]) {
		t.Fatalf("a change: %v %v, want %v", replicaCIDs(rs), err, want[1:2])
	}
	v = allocView{started: true, sweep: end, walks: map[string]string{self: ""}}
	if rs, err := v.look(a.cat, nil, 1); err != nil || !slices.Equal(replicaCIDs(rs), want) || len(v.walks) != 0 {
		t.Fatalf("a member's walk: %v %v, want %v, walks left %v", replicaCIDs(rs), err, want, v.walks)
	}
	// The default factor is 2: with 2 members each version, held by one,
	// is under-replicated; with 1 member, none is.
	v = allocView{started: true, sweep: end, underOn: true}
	if rs, err := v.look(a.cat, nil, 2); err != nil || !slices.Equal(replicaCIDs(rs), want) || v.underOn {
		t.Fatalf("the under-replicated: %v %v, want %v (pass still on: %v)", replicaCIDs(rs), err, want, v.underOn)
	}
	v = allocView{started: true, sweep: end, underOn: true}
	if rs, err := v.look(a.cat, nil, 1); err != nil || len(rs) != 0 {
		t.Fatalf("under-replicated with one member: %v %v", replicaCIDs(rs), err)
	}
	v = allocView{started: true}
	if rs, err := v.look(a.cat, want, 1); err != nil || !slices.Equal(replicaCIDs(rs), want) || len(rs) != len(want) || v.sweep != "" {
		t.Fatalf("a whole sweep and changes: each once: %v %v, want %v, sweep %q", replicaCIDs(rs), err, want, v.sweep)
	}

	// The placement view: changes, extras and its page, each once.
	pv := view{}
	rs, err := pv.look(a.cat, func(after string) ([]catalog.Replica, error) {
		return a.cat.ReplicasOn(self, after, replicaPage)
	}, want[:1])
	if err != nil || !slices.Equal(replicaCIDs(rs), want) {
		t.Fatalf("placement look: %v %v, want %v", replicaCIDs(rs), err, want)
	}
}

// TestReplicationGaugesFromCounters: /metrics' replication gauges come
// from the catalog's counters and say what this node holds.
func TestReplicationGaugesFromCounters(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1})
	var bytes int64
	for i := range 3 {
		body := strings.Repeat("x", 100*(i+1))
		if _, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "a", Size: -1}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		bytes += int64(len(body))
	}
	gauges := map[string]float64{}
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "artmesh_replication_") && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge() != nil {
			gauges[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if gauges["artmesh_replication_held_versions"] != 3 || gauges["artmesh_replication_held_bytes"] != float64(bytes) ||
		gauges["artmesh_replication_allocated_versions"] != 0 || gauges["artmesh_replication_under_replicated_versions"] != 0 {
		t.Fatalf("replication gauges %v, want 3 held, %d bytes, none allocated or under-replicated", gauges, bytes)
	}
	held, under := a.memberPlacement(1)
	if held[a.peerID.String()] != bytes || len(under) != 0 {
		t.Fatalf("member placement: held %v under %v, want %d held and none under", held, under, bytes)
	}
	// Counted as two members, each version (one holder, factor 2) is
	// under-replicated, and charged to the member holding it.
	if _, under := a.memberPlacement(2); under[a.peerID.String()] != 3 {
		t.Fatalf("under-replicated with two members: %v, want 3 here", under)
	}
}

// TestAllocViewWalksGoneMembers: the allocator walks the replicas of a
// member once, when it stops being live or leaves; a new leader walks
// every member not live.
func TestAllocViewWalksGoneMembers(t *testing.T) {
	walking := func(v *allocView) []string {
		var out []string
		for p := range v.walks {
			out = append(out, p)
		}
		slices.Sort(out)
		return out
	}
	v := &allocView{}
	v.walkGone([]string{"a", "b", "c"}, map[string]bool{"a": true, "b": true})
	if got := walking(v); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("first run walks %v, want [c]", got)
	}
	v.started, v.live, v.walks = true, map[string]bool{"a": true, "b": true}, nil
	v.walkGone([]string{"a", "b", "c"}, map[string]bool{"a": true, "b": true})
	if got := walking(v); len(got) != 0 {
		t.Fatalf("nothing changed, yet walks %v", got)
	}
	v.walkGone([]string{"a", "c"}, map[string]bool{"a": false})
	if got := walking(v); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a no longer live and b removed: walks %v, want [a b]", got)
	}
	v.walks["a"] = "cid-9" // under way: its cursor stays
	v.walkGone([]string{"a", "c"}, map[string]bool{"a": false})
	if v.walks["a"] != "cid-9" {
		t.Fatalf("a walk under way restarted: %q", v.walks["a"])
	}
}
