package catalog

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/artmesh/artmesh"
)

// replicasOf returns the replica of cid as the state reports it.
func replicasOf(t *testing.T, h *testFSM, cid string) (Replica, bool) {
	t.Helper()
	c := &Catalog{fsm: h.f}
	rs, err := c.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.CID == cid {
			return r, true
		}
	}
	return Replica{}, false
}

func TestPolicyAndFactor(t *testing.T) {
	h := newTestFSM(t)
	c := &Catalog{fsm: h.f}
	if p, _ := c.Policy(); p != DefaultPolicy {
		t.Fatalf("policy of a new mesh %+v, want %+v", p, DefaultPolicy)
	}
	for _, bad := range []Policy{{ReplicationFactor: 0, WriteReplicas: 1}, {ReplicationFactor: MaxReplicationFactor + 1, WriteReplicas: 1}, {ReplicationFactor: 2, WriteReplicas: 0}} {
		if _, err := h.apply(setPolicyCmd{Policy: bad}); !errors.Is(err, artmesh.Invalid) {
			t.Fatalf("policy %+v: %v, want Invalid", bad, err)
		}
	}
	h.must(setPolicyCmd{Policy: Policy{ReplicationFactor: 3, WriteReplicas: 2}})
	if p, _ := c.Policy(); p != (Policy{ReplicationFactor: 3, WriteReplicas: 2}) {
		t.Fatalf("policy %+v", p)
	}
	h.agent("alice")
	a, at := h.nextID()
	b, _ := h.nextID()
	h.must(CreateArtifact{ID: a, Name: "a", Owner: "alice", CID: "shared", SizeBytes: 10, At: at, Holder: "p1"})
	h.must(CreateArtifact{ID: b, Name: "b", Owner: "alice", CID: "shared", SizeBytes: 10, At: at, Holder: "p1"})
	if r, _ := replicasOf(t, h, "shared"); r.Factor != 3 {
		t.Fatalf("factor %d, want the policy's 3", r.Factor)
	}
	// The highest factor of the artifacts that share content wins.
	h.must(setReplicationCmd{ID: b, Factor: 5})
	if r, _ := replicasOf(t, h, "shared"); r.Factor != 5 {
		t.Fatalf("factor %d, want 5", r.Factor)
	}
	if _, err := h.apply(setReplicationCmd{ID: a, Factor: -1}); !errors.Is(err, artmesh.Invalid) {
		t.Fatalf("negative factor: %v", err)
	}
	if _, err := h.apply(setReplicationCmd{ID: "art_01JD0000000000000000000000", Factor: 2}); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("factor of a missing artifact: %v", err)
	}
	// An update keeps the artifact's own factor.
	h.must(AddVersion{ArtifactID: b, By: "alice", CID: "v2", At: at, Holder: "p1"})
	if r, _ := replicasOf(t, h, "v2"); r.Factor != 5 {
		t.Fatalf("factor of the new version %d, want 5", r.Factor)
	}
}

func TestAllocationsAndDeletes(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	for _, p := range []string{"p1", "p2", "p3"} {
		h.must(PutMember{Member: Member{PeerID: p}})
	}
	id, at := h.nextID()
	h.must(CreateArtifact{ID: id, Name: "a", Owner: "alice", CID: "c1", At: at, Holder: "p1", Holders: []string{"p2"}})
	r, _ := replicasOf(t, h, "c1")
	if !reflect.DeepEqual(r.Holders, []string{"p1", "p2"}) {
		t.Fatalf("holders of a write with replicas %v", r.Holders)
	}
	// Allocations name members only and skip deleted content.
	h.must(PlacementUpdate{Allocations: []Allocation{
		{CID: "c1", Peers: []string{"p3", "p1", "stranger", "p1"}},
		{CID: "gone", Peers: []string{"p1"}},
	}})
	r, _ = replicasOf(t, h, "c1")
	if !reflect.DeepEqual(r.Allocated, []string{"p1", "p3"}) {
		t.Fatalf("allocated %v", r.Allocated)
	}
	if _, ok := replicasOf(t, h, "gone"); ok {
		t.Fatal("an allocation made content that no version references live")
	}
	// A holder record is dropped only while another remains.
	h.must(PlacementUpdate{DropHolders: []HolderRef{{CID: "c1", Peer: "p1"}, {CID: "c1", Peer: "p2"}}})
	r, _ = replicasOf(t, h, "c1")
	if !reflect.DeepEqual(r.Holders, []string{"p2"}) {
		t.Fatalf("holders after dropping both %v, want the last one kept", r.Holders)
	}
	// Removing a member takes it out of allocations and pins.
	h.must(putPinCmd{Pin: Pin{Node: "p3", ArtifactID: id, By: "alice", At: at}})
	h.must(deleteMemberCmd{PeerID: "p3"})
	r, _ = replicasOf(t, h, "c1")
	if !reflect.DeepEqual(r.Allocated, []string{"p1"}) {
		t.Fatalf("allocated after p3 left %v", r.Allocated)
	}
	c := &Catalog{fsm: h.f}
	if pins, _ := c.Pins("p3"); len(pins) != 0 {
		t.Fatalf("pins of a removed member %v", pins)
	}
	// Deleting the artifact forgets its placement.
	h.must(deleteArtifactCmd{ID: id})
	if _, ok := replicasOf(t, h, "c1"); ok {
		t.Fatal("placement of a deleted artifact")
	}
	tx := h.st().db.Txn(false)
	defer tx.Abort()
	if raw, _ := tx.First(tablePlacement, indexID, "c1"); raw != nil {
		t.Fatalf("placement row of deleted content %+v", raw)
	}
}

func TestPins(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.must(PutMember{Member: Member{PeerID: "p1"}})
	id, at := h.nextID()
	h.must(CreateArtifact{ID: id, Name: "a", Owner: "alice", CID: "c1", SizeBytes: 7, At: at, Holder: "p1"})
	h.must(AddVersion{ArtifactID: id, By: "alice", CID: "c2", SizeBytes: 9, At: at, Holder: "p1"})
	p := h.must(putPinCmd{Pin: Pin{Node: "p1", ArtifactID: id, By: "alice", At: at}}).(Pin)
	if p.Version != 2 || p.CID != "c2" || p.SizeBytes != 9 {
		t.Fatalf("pin of the current version %+v", p)
	}
	h.must(putPinCmd{Pin: Pin{Node: "p1", ArtifactID: id, Version: 1, By: "alice", At: at}})
	// Pinning again keeps the first pin.
	again := h.must(putPinCmd{Pin: Pin{Node: "p1", ArtifactID: id, Version: 1, By: "bob", At: at}}).(Pin)
	if again.By != "alice" {
		t.Fatalf("second pin replaced the first: %+v", again)
	}
	if _, err := h.apply(putPinCmd{Pin: Pin{Node: "p1", ArtifactID: id, Version: 7, By: "alice", At: at}}); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("pin of a missing version: %v", err)
	}
	c := &Catalog{fsm: h.f}
	if pins, _ := c.Pins("p1"); len(pins) != 2 {
		t.Fatalf("pins %v", pins)
	}
	// Deleting a version drops its pins; deleting the artifact drops the rest.
	h.must(DeleteVersion{ArtifactID: id, Version: 1, At: at})
	if pins, _ := c.Pins("p1"); len(pins) != 1 || pins[0].Version != 2 {
		t.Fatalf("pins after deleting version 1: %v", pins)
	}
	if _, err := h.apply(deletePinCmd{Node: "p1", ArtifactID: id, Version: 1}); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("unpin of a dropped pin: %v", err)
	}
	h.must(deleteArtifactCmd{ID: id})
	if pins, _ := c.Pins(""); len(pins) != 0 {
		t.Fatalf("pins after deleting the artifact: %v", pins)
	}
}

func TestWatch(t *testing.T) {
	h := newTestFSM(t)
	c := &Catalog{fsm: h.f}
	idx, ch := c.Watch()
	h.agent("alice")
	select {
	case <-ch:
	default:
		t.Fatal("the watch channel was not closed by an apply")
	}
	if c.ChangedSince(idx, TopicContent) {
		t.Fatal("creating an agent reported as new content")
	}
	if !c.ChangedSince(idx, TopicGrants) {
		t.Fatal("creating an agent not reported as a grants change")
	}
	mid, _ := c.Watch()
	id, at := h.nextID()
	h.must(CreateArtifact{ID: id, Name: "a", Owner: "alice", CID: "c1", At: at})
	if !c.ChangedSince(mid, TopicContent) || c.ChangedSince(mid, TopicDeletes) {
		t.Fatal("a create is content, not a delete")
	}
	now, _ := c.Watch()
	if c.ChangedSince(now, TopicAll) {
		t.Fatal("a change reported at the current index")
	}
	if cids, ok := c.ChangedCIDs(mid); !ok || len(cids) != 1 || cids[0] != "c1" {
		t.Fatalf("changed CIDs since the create: %v %v, want [c1]", cids, ok)
	}
	h.must(addHolderCmd{CID: "c1", Peer: "p9"})
	if cids, ok := c.ChangedCIDs(now); !ok || len(cids) != 1 || cids[0] != "c1" {
		t.Fatalf("changed CIDs after a holder was added: %v %v", cids, ok)
	}
	// A consumer further behind than the history is told everything
	// may have changed.
	for range historySize + 1 {
		h.must(noopCmd{})
	}
	if !c.ChangedSince(mid, TopicDeletes) {
		t.Fatal("a consumer behind the history was not told to look")
	}
	if _, ok := c.ChangedCIDs(mid); ok {
		t.Fatal("changed CIDs claimed complete beyond the history")
	}
}

func TestLostHolderRecordGoesEvenWhenLast(t *testing.T) {
	h := newTestFSM(t)
	holders := func() []string {
		hs, err := read(h.st(), func(tx *Txn) ([]string, error) {
			raw, err := tx.First(tablePlacement, indexID, "c1")
			if err != nil || raw == nil {
				return nil, err
			}
			return raw.(*Placement).Holders, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	h.must(addHolderCmd{CID: "c1", Peer: "A"})
	h.must(addHolderCmd{CID: "c1", Peer: "B"})
	for _, tc := range []struct {
		cmd  command
		want []string
	}{
		{removeHolderCmd{CID: "c1", Peer: "A"}, []string{"B"}},
		// The last record is not given up by a member that merely no
		// longer wants the copy...
		{removeHolderCmd{CID: "c1", Peer: "B"}, []string{"B"}},
		// ... but it goes when the copy is lost.
		{removeHolderCmd{CID: "c1", Peer: "B", Lost: true}, []string{}},
	} {
		h.must(tc.cmd)
		if got := holders(); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Fatalf("after %+v: holders %v, want %v", tc.cmd, got, tc.want)
		}
	}
}
