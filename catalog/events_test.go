package catalog

import (
	"reflect"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// brief is what the event tests compare of an event.
type brief struct {
	Index      uint64
	Type       string
	ID         artmesh.ArtifactID
	Version    int
	Actor      artmesh.AgentID
	Agents     []artmesh.AgentID
	Groups     []string
	ReadAgents []artmesh.AgentID
	ReadGroups []string
}

func briefs(evs []Event) []brief {
	out := make([]brief, len(evs))
	for i, e := range evs {
		out[i] = brief{e.Index, e.Type, e.ArtifactID, e.Version, e.Actor, e.Agents, e.Groups, e.ReadAgents, e.ReadGroups}
	}
	return out
}

// allEvents returns every event the state holds after index after.
func allEvents(t *testing.T, h *testFSM, after uint64) EventPage {
	t.Helper()
	p, err := h.st().events(h.index, after, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEventsOfArtifactCommands(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob", "team")
	start := h.index
	a := h.create("alice", "a.bin", "", nil)
	created := h.index
	h.must(AddVersion{ArtifactID: a.ID, By: "alice", CID: "v2", At: testBase.Add(time.Second)})
	updated := h.index
	h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}, Groups: []string{"team"}})
	shared := h.index
	// Sharing again what is shared already changes nothing: no event.
	h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}})
	h.must(unshareCmd{ID: a.ID, Groups: []string{"team"}})
	unshared := h.index
	h.must(DeleteVersion{ArtifactID: a.ID, Version: 1, At: testBase.Add(2 * time.Second)})
	versionDeleted := h.index
	// A command that breaks a rule makes no event.
	if _, err := h.apply(DeleteVersion{ArtifactID: a.ID, Version: 2}); err == nil {
		t.Fatal("deleting the only version succeeded")
	}
	h.must(deleteArtifactCmd{ID: a.ID})
	deleted := h.index

	page := allEvents(t, h, start)
	want := []brief{
		{created, EventCreated, a.ID, 1, "alice", nil, nil, nil, nil},
		{updated, EventUpdated, a.ID, 2, "alice", nil, nil, nil, nil},
		{shared, EventShared, a.ID, 2, "alice", []artmesh.AgentID{"bob"}, []string{"team"}, []artmesh.AgentID{"bob"}, []string{"team"}},
		{unshared, EventUnshared, a.ID, 2, "alice", nil, []string{"team"}, []artmesh.AgentID{"bob"}, []string{"team"}},
		{versionDeleted, EventVersionDeleted, a.ID, 1, "alice", nil, nil, []artmesh.AgentID{"bob"}, nil},
		{deleted, EventDeleted, a.ID, 2, "alice", nil, nil, []artmesh.AgentID{"bob"}, nil},
	}
	if got := briefs(page.Events); !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got  %+v\n want %+v", got, want)
	}
	if page.Through != h.index || page.Floor != 0 {
		t.Fatalf("through %d floor %d, want %d and 0", page.Through, page.Floor, h.index)
	}
	if got := page.Events[0]; got.Name != "a.bin" || got.Owner != "alice" || !got.At.Equal(a.CreatedAt) {
		t.Fatalf("created event: %+v (artifact %+v)", got, a)
	}
	// A page ends at its limit, and Through says where to go on from.
	p, err := h.st().events(h.index, start, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || p.Through != updated {
		t.Fatalf("page of 2: %+v", p)
	}
	if rest := allEvents(t, h, p.Through); len(rest.Events) != 4 || rest.Events[0].Index != shared {
		t.Fatalf("the rest after %d: %+v", p.Through, briefs(rest.Events))
	}
}

func TestEventsOfUploadsAndForwardedWrites(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	a := h.create("alice", "a.bin", "", nil)
	start := h.index
	// A forwarded update, applied twice (a retry): one event.
	inner, err := encodeCommand(AddVersion{ArtifactID: a.ID, By: "alice", CID: "v2", At: testBase.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	env := wrapForwarded(inner, testBase.Add(time.Second))
	h.index++
	h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: env})
	first := h.index
	h.index++
	h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: env})
	// An upload that makes a new artifact, then one that updates it.
	exp := testBase.Add(time.Hour)
	newID, at := h.nextID()
	h.must(CreateUpload{Upload: Upload{ID: "up1", Owner: "alice", Name: "u.bin", SizeBytes: 3, ExpiresAt: exp}, At: at})
	h.must(UploadReceived{ID: "up1", CID: "cu", SHA256: "s", Size: 3, Holder: "p", At: at})
	h.must(ConfirmUpload{ID: "up1", NewID: newID, At: at})
	confirmedNew := h.index
	h.must(CreateUpload{Upload: Upload{ID: "up2", Owner: "alice", ArtifactID: newID, SizeBytes: 3, ExpiresAt: exp}, At: at})
	h.must(UploadReceived{ID: "up2", CID: "cu2", SHA256: "s2", Size: 3, Holder: "p", At: at})
	h.must(ConfirmUpload{ID: "up2", At: at.Add(time.Second)})
	confirmedUpdate := h.index
	got := briefs(allEvents(t, h, start).Events)
	want := []brief{
		{first, EventUpdated, a.ID, 2, "alice", nil, nil, nil, nil},
		{confirmedNew, EventCreated, newID, 1, "alice", nil, nil, nil, nil},
		{confirmedUpdate, EventUpdated, newID, 2, "alice", nil, nil, nil, nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got  %+v\n want %+v", got, want)
	}
}

func TestEventsKeepTheLastMaxEvents(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	a := h.create("alice", "a.bin", "", nil)
	firstIndex := h.index
	const made = MaxEvents + 100 // with the create: MaxEvents+101 events, at consecutive indexes
	for i := range made {
		h.must(AddVersion{ArtifactID: a.ID, By: "alice", CID: "c", At: testBase.Add(time.Duration(i+1) * time.Millisecond)})
	}
	page := allEvents(t, h, 0)
	// Whole pages go, as soon as the others hold MaxEvents: the first
	// page went, the next would leave fewer than MaxEvents.
	if n := len(page.Events); n != made+1-eventsPerPage {
		t.Fatalf("%d events held, want %d", n, made+1-eventsPerPage)
	}
	if page.Floor != firstIndex+eventsPerPage-1 || page.Events[0].Index != page.Floor+1 {
		t.Fatalf("floor %d, oldest %d; want %d and the one after", page.Floor, page.Events[0].Index, firstIndex+eventsPerPage-1)
	}
	if last := page.Events[len(page.Events)-1]; last.Index != h.index || last.Version != made+1 {
		t.Fatalf("newest event %+v, want index %d version %d", last, h.index, made+1)
	}
	// Reading after any index gives exactly the events after it.
	for _, after := range []uint64{page.Floor, page.Floor + 1, page.Floor + eventsPerPage, h.index - 1, h.index} {
		p := allEvents(t, h, after)
		if want := int(h.index - after); len(p.Events) != want || (want > 0 && p.Events[0].Index != after+1) {
			t.Fatalf("after %d: %d events from %v, want %d from %d", after, len(p.Events), p.Events[:min(1, len(p.Events))], want, after+1)
		}
	}

	// A snapshot keeps the events and the floor.
	r := h.restored()
	restored := allEvents(t, r, 0)
	if !reflect.DeepEqual(briefs(restored.Events), briefs(page.Events)) || restored.Floor != page.Floor {
		t.Fatalf("restored events differ: %d events, floor %d", len(restored.Events), restored.Floor)
	}
	// And goes on: two pages more of events drop two pages.
	for i := range 2 * eventsPerPage {
		r.must(AddVersion{ArtifactID: a.ID, By: "alice", CID: "c", At: testBase.Add(time.Hour + time.Duration(i)*time.Millisecond)})
	}
	p := allEvents(t, r, 0)
	if p.Floor != page.Floor+2*eventsPerPage || len(p.Events) != len(page.Events) {
		t.Fatalf("after %d more: %d events, floor %d", 2*eventsPerPage, len(p.Events), p.Floor)
	}
}

// TestEventsReadWhileApplied reads the log while the state machine goes
// on appending to it (run with -race): every read sees a gapless run of
// the events published so far.
func TestEventsReadWhileApplied(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	a := h.create("alice", "a.bin", "", nil)
	first := h.index
	const n = 3 * eventsPerPage
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if _, err := h.apply(AddVersion{ArtifactID: a.ID, By: "alice", CID: "c", At: testBase.Add(time.Duration(i+1) * time.Millisecond)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for finished := false; !finished; reads++ {
		select {
		case <-done:
			finished = true
		default:
		}
		p, err := h.st().events(^uint64(0), first, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range p.Events {
			if e.Index != first+1+uint64(i) || e.Version != i+2 {
				t.Fatalf("read %d: event %d is %+v", reads, i, e)
			}
		}
	}
	if p := allEvents(t, h, first); len(p.Events) != n {
		t.Fatalf("%d events after the writes, want %d", len(p.Events), n)
	}
}
