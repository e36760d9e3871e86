package catalog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/artmesh/artmesh"
)

// walkedReplicas is every replica as a walk of the versions says.
func walkedReplicas(t *testing.T, h *testFSM) []Replica {
	t.Helper()
	rs, err := read(h.st(), func(tx *Txn) ([]Replica, error) {
		it, err := tx.Get(tableVersions, indexVersionCID)
		if err != nil {
			return nil, err
		}
		return replicasTxn(tx, it)
	})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func sameReplicas(a, b []Replica) bool {
	return slices.EqualFunc(a, b, func(x, y Replica) bool {
		return x.CID == y.CID && x.SizeBytes == y.SizeBytes && x.Factor == y.Factor &&
			slices.Equal(x.Holders, y.Holders) && slices.Equal(x.Allocated, y.Allocated)
	})
}

// checkReplicaIndex compares every read of the replica index with what a
// walk of every version computes.
func checkReplicaIndex(t *testing.T, h *testFSM, step string) {
	t.Helper()
	c := &Catalog{fsm: h.f}
	want := walkedReplicas(t, h)
	members, err := c.Members()
	if err != nil {
		t.Fatal(err)
	}
	m := max(1, len(members))

	var paged []Replica
	for after := ""; ; {
		page, err := c.ReplicaPage(after, 3)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].CID
	}
	if !sameReplicas(paged, want) {
		t.Fatalf("%s: replica pages\n%+v\nwant the walk's\n%+v", step, paged, want)
	}

	peers := map[string]bool{"": true}
	wantStats := ReplicaStats{Versions: len(want), Peers: map[string]PeerReplicas{}}
	var wantUnder []Replica
	for _, r := range want {
		alloc := r.Allocated
		if len(alloc) == 0 {
			alloc = r.Holders
		}
		copies := 0
		for _, p := range alloc {
			if slices.Contains(r.Holders, p) {
				copies++
			}
		}
		under := copies < effectiveFactor(r.Factor, m)
		if under {
			wantStats.UnderReplicated++
			wantUnder = append(wantUnder, r)
		}
		for _, p := range union(r.Holders, r.Allocated) {
			peers[p] = true
			s := wantStats.Peers[p]
			if slices.Contains(r.Holders, p) {
				s.Held++
				s.HeldBytes += r.SizeBytes
			}
			if slices.Contains(r.Allocated, p) {
				s.Allocated++
			}
			s.PlacedBytes += r.SizeBytes
			wantStats.Peers[p] = s
		}
		if under {
			for _, p := range alloc {
				s := wantStats.Peers[p]
				s.UnderReplicated++
				wantStats.Peers[p] = s
			}
		}
	}
	st, err := c.ReplicaStats(m)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st) != fmt.Sprint(wantStats) {
		t.Fatalf("%s: stats %+v, want %+v", step, st, wantStats)
	}

	for p := range peers {
		var on, wantOn []Replica
		for _, r := range want {
			if (p == "" && len(r.Holders) == 0 && len(r.Allocated) == 0) || (p != "" && (slices.Contains(r.Holders, p) || slices.Contains(r.Allocated, p))) {
				wantOn = append(wantOn, r)
			}
		}
		for after := ""; ; {
			page, err := c.ReplicasOn(p, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			on = append(on, page...)
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].CID
		}
		if !sameReplicas(on, wantOn) {
			t.Fatalf("%s: replicas on %q\n%+v\nwant\n%+v", step, p, on, wantOn)
		}
	}

	var under []Replica
	for after := ""; ; {
		page, next, err := c.UnderReplicated(m, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		under = append(under, page...)
		if next == "" {
			break
		}
		after = next
	}
	slices.SortFunc(under, func(a, b Replica) int { return compareStrings(a.CID, b.CID) })
	if !sameReplicas(under, wantUnder) {
		t.Fatalf("%s: under-replicated\n%+v\nwant\n%+v", step, under, wantUnder)
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestReplicaIndexFollowsEveryWrite: after each of many random writes
// (content shared between artifacts, factors, policy, allocations,
// holders, members coming and going, deletes), and after a restore, the
// replica index answers what a walk of every version does.
func TestReplicaIndexFollowsEveryWrite(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	rng := rand.New(rand.NewPCG(1, 2))
	peers := []string{"p1", "p2", "p3", "p4"}
	cids := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}
	size := func(c string) int64 { return int64(100 + 10*slices.Index(cids, c)) }
	var arts []artmesh.ArtifactID
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	some := func() []string {
		var out []string
		for _, p := range peers {
			if rng.IntN(3) == 0 {
				out = append(out, p)
			}
		}
		return out
	}
	for _, p := range peers[:3] {
		h.must(PutMember{Member: Member{PeerID: p}})
	}
	for i := range 400 {
		var cmd command
		switch op := rng.IntN(12); {
		case op < 3 || len(arts) == 0:
			id, at := h.nextID()
			c := pick(cids)
			holder := ""
			if rng.IntN(4) > 0 {
				holder = pick(peers)
			}
			cmd = CreateArtifact{ID: id, Name: "a", Owner: "alice", CID: c, SizeBytes: size(c), At: at, Holder: holder}
			arts = append(arts, id)
		case op == 3:
			c := pick(cids)
			_, at := h.nextID()
			cmd = AddVersion{ArtifactID: arts[rng.IntN(len(arts))], By: "alice", CID: c, SizeBytes: size(c), At: at, Holder: pick(peers)}
		case op == 4:
			cmd = DeleteVersion{ArtifactID: arts[rng.IntN(len(arts))], Version: 1 + rng.IntN(2), At: testBase}
		case op == 5:
			cmd = deleteArtifactCmd{ID: arts[rng.IntN(len(arts))]}
		case op == 6:
			cmd = setReplicationCmd{ID: arts[rng.IntN(len(arts))], Factor: rng.IntN(4)}
		case op == 7:
			cmd = setPolicyCmd{Policy: Policy{ReplicationFactor: 1 + rng.IntN(3), WriteReplicas: 1}}
		case op == 8:
			cmd = PlacementUpdate{Allocations: []Allocation{{CID: pick(cids), Peers: some()}}}
		case op == 9:
			cmd = addHolderCmd{CID: pick(cids), Peer: pick(peers)}
		case op == 10:
			cmd = removeHolderCmd{CID: pick(cids), Peer: pick(peers), Lost: rng.IntN(2) == 0}
		default:
			p := pick(peers)
			if rng.IntN(2) == 0 {
				cmd = PutMember{Member: Member{PeerID: p}}
			} else {
				cmd = deleteMemberCmd{PeerID: p}
			}
		}
		_, _ = h.apply(cmd) // a write that breaks a rule changes nothing
		checkReplicaIndex(t, h, fmt.Sprintf("step %d (%T %+v)", i, cmd, cmd))
	}
	if len(walkedReplicas(t, h)) < 3 {
		t.Fatalf("the random writes left too little to check: %+v", walkedReplicas(t, h))
	}
	checkReplicaIndex(t, h.restored(), "after a restore")
}

// TestWatchReportsFactorChanges: a change of an artifact's own factor
// reports the CIDs of its versions, so that reconcilers that follow the
// watch see them.
func TestWatchReportsFactorChanges(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	id, at := h.nextID()
	h.must(CreateArtifact{ID: id, Name: "a", Owner: "alice", CID: "c1", SizeBytes: 1, At: at, Holder: "p1"})
	h.must(AddVersion{ArtifactID: id, By: "alice", CID: "c2", SizeBytes: 1, At: at, Holder: "p1"})
	before, _ := h.f.watch.current()
	h.must(setReplicationCmd{ID: id, Factor: 3})
	got, ok := h.f.watch.changedCIDs(before)
	slices.Sort(got)
	if !ok || !slices.Equal(got, []string{"c1", "c2"}) {
		t.Fatalf("CIDs changed by a factor change: %v %v, want [c1 c2]", got, ok)
	}
}

// TestReceivedUploadsByCID: a received upload's content is live (its
// placement stays when the last version of the same content goes) and
// listed by ReceivedUploadCIDs, through the index of received uploads;
// once confirmed, it is a version's content instead.
func TestReceivedUploadsByCID(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	c := &Catalog{fsm: h.f}
	exp := testBase.Add(time.Hour)
	id, at := h.nextID()
	h.must(CreateArtifact{ID: id, Name: "a", Owner: "alice", CID: "shared", SizeBytes: 10, At: at, Holder: "p1"})
	h.must(CreateUpload{Upload: Upload{ID: "upl_1", Owner: "alice", SizeBytes: 10, ExpiresAt: exp}, At: testBase})
	if got := c.ReceivedUploadCIDs(); len(got) != 0 {
		t.Fatalf("an open upload is listed as received: %v", got)
	}
	h.must(UploadReceived{ID: "upl_1", CID: "shared", Size: 10, At: at, Holder: "p1"})
	if got := c.ReceivedUploadCIDs(); !slices.Equal(got, []string{"shared"}) {
		t.Fatalf("received uploads %v, want [shared]", got)
	}
	h.must(deleteArtifactCmd{ID: id})
	if hs, _ := c.Holders("shared"); !slices.Equal(hs, []string{"p1"}) {
		t.Fatalf("holders of content a received upload references, after its version went: %v", hs)
	}
	newID, _ := h.nextID()
	h.must(ConfirmUpload{ID: "upl_1", NewID: newID, At: at})
	if got := c.ReceivedUploadCIDs(); len(got) != 0 {
		t.Fatalf("a confirmed upload is listed as received: %v", got)
	}
	h.must(deleteArtifactCmd{ID: newID})
	if hs, _ := c.Holders("shared"); len(hs) != 0 {
		t.Fatalf("holders of content nothing references: %v", hs)
	}
}

// BenchmarkReplicaReads100k compares, at 100k versions on 5 members,
// what /metrics and the reconcilers read now (the counters, a page of
// an index) with the walk of every version they used to make.
func BenchmarkReplicaReads100k(b *testing.B) {
	const n = 100_000
	h := newTestFSM(b)
	h.agent("owner")
	peers := []string{"p1", "p2", "p3", "p4", "p5"}
	for _, p := range peers {
		h.must(PutMember{Member: Member{PeerID: p}})
	}
	logs := make([]*raft.Log, 0, 256)
	flush := func() {
		for _, res := range h.f.ApplyBatch(logs) {
			if err, ok := res.(error); ok {
				b.Fatal(err)
			}
		}
		logs = logs[:0]
	}
	for i := range n {
		id, at := h.nextID()
		data, err := encodeCommand(CreateArtifact{ID: id, Name: "f", Owner: "owner", CID: fmt.Sprintf("cid-%07d", i),
			SizeBytes: 1 << 10, At: at, Holder: peers[i%len(peers)]})
		if err != nil {
			b.Fatal(err)
		}
		h.index++
		logs = append(logs, &raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
		if len(logs) == cap(logs) {
			flush()
		}
	}
	flush()
	c := &Catalog{fsm: h.f}
	b.Run("stats", func(b *testing.B) {
		for b.Loop() {
			if st, err := c.ReplicaStats(len(peers)); err != nil || st.Versions != n || st.UnderReplicated != n {
				b.Fatalf("%+v %v", st.Versions, err)
			}
		}
	})
	b.Run("member page", func(b *testing.B) {
		for b.Loop() {
			if rs, err := c.ReplicasOn("p3", "cid-0050000", 2048); err != nil || len(rs) != 2048 {
				b.Fatal(len(rs), err)
			}
		}
	})
	b.Run("under-replicated page", func(b *testing.B) {
		for b.Loop() {
			if rs, _, err := c.UnderReplicated(len(peers), "", 2048); err != nil || len(rs) != 2048 {
				b.Fatal(len(rs), err)
			}
		}
	})
	b.Run("walk of every version", func(b *testing.B) {
		for b.Loop() {
			if rs, err := c.Replicas(); err != nil || len(rs) != n {
				b.Fatal(len(rs), err)
			}
		}
	})
}
