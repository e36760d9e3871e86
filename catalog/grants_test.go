package catalog

import (
	"reflect"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// agentAt creates an agent created at the given time, in the groups.
func (h *testFSM) agentAt(id artmesh.AgentID, at time.Time, groups ...string) {
	h.t.Helper()
	h.must(CreateAgent{Agent: artmesh.Agent{ID: id, Groups: groups, CreatedAt: at}, KeyHash: "hash-" + string(id) + at.String()})
}

// eventAt returns the event recorded at index i.
func eventAt(t *testing.T, h *testFSM, i uint64) Event {
	t.Helper()
	for _, e := range allEvents(t, h, i-1).Events {
		if e.Index == i {
			return e
		}
	}
	t.Fatalf("no event at index %d", i)
	return Event{}
}

// TestEventReaders checks that each event records who could read its
// artifact when it happened, in its incarnation, and whom it is visible
// to: an agent deleted and created again under its id is another reader,
// and a member that joined a group after an unshare is none.
func TestEventReaders(t *testing.T) {
	h := newTestFSM(t)
	first, second := testBase, testBase.Add(time.Hour)
	h.agentAt("alice", first)
	h.agentAt("bob", first)
	h.agentAt("carol", first)
	h.agentAt("dave", first, "g")
	h.agentAt("erin", first, "g")
	x := h.create("alice", "x", "", nil)
	xCreated := h.index
	h.must(shareCmd{ID: x.ID, Agents: []artmesh.AgentID{"bob"}})
	xShared := h.index
	h.must(AddVersion{ArtifactID: x.ID, By: "alice", CID: "x2", At: testBase.Add(time.Second)})
	xUpdated := h.index
	h.must(deleteAgentCmd{ID: "bob"})
	h.agentAt("bob", second)
	h.must(AddVersion{ArtifactID: x.ID, By: "alice", CID: "x3", At: testBase.Add(2 * time.Second)})
	xAfter := h.index
	h.must(shareCmd{ID: x.ID, Agents: []artmesh.AgentID{"bob"}})
	xReshared := h.index

	y := h.create("alice", "y", "", nil)
	h.must(shareCmd{ID: y.ID, Groups: []string{"g"}})
	yShared := h.index
	h.must(unshareCmd{ID: y.ID, Groups: []string{"g"}})
	yUnshared := h.index
	// carol joins g, erin leaves it; dave stays.
	h.must(putGroupCmd{Name: "g", Members: []artmesh.AgentID{"carol", "dave"}})
	h.must(shareCmd{ID: y.ID, Groups: []string{"g"}})
	yReshared := h.index
	h.must(deleteArtifactCmd{ID: y.ID})
	yDeleted := h.index

	alice, oldBob, newBob := Reader{"alice", Incarnation(first)}, Reader{"bob", Incarnation(first)}, Reader{"bob", Incarnation(second)}
	r := h.restored()
	for _, tt := range []struct {
		name  string
		index uint64
		want  []Reader
		// who sees it, of alice, bob (the second), carol, dave, erin
		visible []artmesh.AgentID
	}{
		{"x created: its owner", xCreated, []Reader{alice}, []artmesh.AgentID{"alice"}},
		{"x shared with the first bob", xShared, []Reader{alice, oldBob}, []artmesh.AgentID{"alice"}},
		{"x updated while shared", xUpdated, []Reader{alice, oldBob}, []artmesh.AgentID{"alice"}},
		{"x updated after bob was deleted and made again", xAfter, []Reader{alice}, []artmesh.AgentID{"alice"}},
		{"x shared with the second bob", xReshared, []Reader{alice, newBob}, []artmesh.AgentID{"alice", "bob"}},
		{"y shared with g", yShared, []Reader{alice}, []artmesh.AgentID{"alice", "dave"}},
		{"y unshared: who could read it before", yUnshared, []Reader{alice}, []artmesh.AgentID{"alice", "dave"}},
		{"y shared with g again, carol in it", yReshared, []Reader{alice}, []artmesh.AgentID{"alice", "carol", "dave"}},
		{"y deleted", yDeleted, []Reader{alice}, []artmesh.AgentID{"alice", "carol", "dave"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, fsm := range []*testFSM{h, r} {
				e := eventAt(t, fsm, tt.index)
				if !reflect.DeepEqual(e.Readers, tt.want) {
					t.Fatalf("readers %+v, want %+v", e.Readers, tt.want)
				}
				var visible []artmesh.AgentID
				for _, id := range []artmesh.AgentID{"alice", "bob", "carol", "dave", "erin"} {
					a, err := fsm.st().agent(id)
					if err != nil {
						t.Fatal(err)
					}
					joined, err := (&Catalog{fsm: fsm.f}).Memberships(id)
					if err != nil {
						t.Fatal(err)
					}
					if e.VisibleTo(id, a.CreatedAt, joined) {
						visible = append(visible, id)
					}
				}
				if !reflect.DeepEqual(visible, tt.visible) {
					t.Fatalf("visible to %v, want %v", visible, tt.visible)
				}
			}
		})
	}
	// The first bob, were he asked, could see what was shared with him.
	if e := eventAt(t, h, xShared); !e.VisibleTo("bob", first, nil) || e.VisibleTo("bob", second, nil) {
		t.Fatal("x's share: by bob's incarnation, visible to the first and not the second")
	}
	if (&Event{Owner: "alice"}).VisibleTo("alice", first, nil) {
		t.Fatal("an event without readers is visible to alice")
	}
}

// TestReadGrantSince checks the grant identities: a token issued at index
// i works through a grant that has stood since i, and not through one
// removed and made again after i.
func TestReadGrantSince(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob")
	h.agent("carol", "g")
	h.agent("dave")
	a := h.create("alice", "a", "", nil)
	h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}, Groups: []string{"g"}})
	shared := h.index
	h.must(unshareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}})
	bobUnshared := h.index
	h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}})
	bobReshared := h.index
	// carol leaves g and joins again; dave joins.
	h.must(putGroupCmd{Name: "g", Members: nil})
	h.must(putGroupCmd{Name: "g", Members: []artmesh.AgentID{"carol", "dave"}})
	carolRejoined := h.index
	// A share that changes nothing keeps the stamps.
	h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}, Groups: []string{"g"}})

	tests := []struct {
		name   string
		agent  artmesh.AgentID
		issued uint64
		want   bool
	}{
		{"the owner, always", "alice", 0, true},
		{"bob, issued under the first share", "bob", shared, false},
		{"bob, issued while unshared", "bob", bobUnshared, false},
		{"bob, issued under the second share", "bob", bobReshared, true},
		{"bob, issued later", "bob", h.index, true},
		{"carol, issued before she left g", "carol", shared, false},
		{"carol, issued after she joined again", "carol", carolRejoined, true},
		{"dave, issued before he joined", "dave", shared, false},
		{"dave, issued after he joined", "dave", carolRejoined, true},
		{"an agent with no grant", "erin", h.index, false},
	}
	r := h.restored()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, st := range []*store{h.st(), r.st()} {
				got, err := st.readGrantSince(tt.agent, a.ID, tt.issued)
				if err != nil || got != tt.want {
					t.Fatalf("readGrantSince(%s, %d) = %v, %v; want %v", tt.agent, tt.issued, got, err, tt.want)
				}
			}
		})
	}
	if _, err := h.st().readGrantSince("alice", "nosuch", 1); !isKind(err, artmesh.NotFound) {
		t.Fatalf("unknown artifact: %v", err)
	}
}

// TestGrantStamps checks the stamps themselves: new grants and members
// get the index of the command, those there before keep theirs or their
// lack of one (a grant made before stamps existed), removed ones lose it,
// and a forwarded write applied twice stamps once.
func TestGrantStamps(t *testing.T) {
	tests := []struct {
		name        string
		now, before []artmesh.AgentID
		was         map[artmesh.AgentID]uint64
		want        map[artmesh.AgentID]uint64
	}{
		{"new", []artmesh.AgentID{"a", "b"}, nil, nil, map[artmesh.AgentID]uint64{"a": 9, "b": 9}},
		{"kept and new", []artmesh.AgentID{"a", "b"}, []artmesh.AgentID{"a"}, map[artmesh.AgentID]uint64{"a": 3}, map[artmesh.AgentID]uint64{"a": 3, "b": 9}},
		{"unstamped stays unstamped", []artmesh.AgentID{"a", "b"}, []artmesh.AgentID{"a"}, nil, map[artmesh.AgentID]uint64{"b": 9}},
		{"removed and stale ones go", []artmesh.AgentID{"b"}, []artmesh.AgentID{"a", "b"}, map[artmesh.AgentID]uint64{"a": 3, "b": 4, "c": 5}, map[artmesh.AgentID]uint64{"b": 4}},
		{"none", nil, []artmesh.AgentID{"a"}, map[artmesh.AgentID]uint64{"a": 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stamps(tt.now, tt.before, tt.was, 9); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("stamps %v, want %v", got, tt.want)
			}
		})
	}

	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob")
	a := h.create("alice", "a", "", nil)
	inner, err := encodeCommand(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	env := wrapForwarded(inner, testBase)
	h.index++
	h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: env})
	first := h.index
	h.must(unshareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}})
	h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}})
	reshared := h.index
	h.index++
	h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: env}) // the retry: a duplicate
	tx := h.st().db.Txn(false)
	raw, _ := tx.First(tableArtifacts, indexID, a.ID)
	tx.Abort()
	if raw.(*artifactRow).AgentGrantIndex["bob"] != reshared {
		t.Fatalf("bob's grant stamped %d, want %d (first share at %d)", raw.(*artifactRow).AgentGrantIndex["bob"], reshared, first)
	}

	// IssueToken: the record gets the index of its command, whatever the
	// issuer said.
	h.must(issueTokenCmd{Token: Token{ID: "t1", Agent: "bob", Target: string(a.ID), ExpiresAt: testBase.Add(time.Hour), IssuedIndex: 1}})
	rec, err := (&Catalog{fsm: h.f}).Token("t1")
	if err != nil || rec.IssuedIndex != h.index {
		t.Fatalf("token record %+v, %v; want issued index %d", rec, err, h.index)
	}
}
