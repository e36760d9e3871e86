package node

import (
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
)

// TestEventPasses checks who the feed shows an event to: the incarnations
// the catalog recorded as its readers and the members, since it or
// before, of the groups it carries, whatever their admin flag; and, for
// an event recorded before readers were, the grants it carries, to
// agents created no later than it.
func TestEventPasses(t *testing.T) {
	then := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	later := then.Add(time.Hour)
	at := then.Add(time.Minute)
	recorded := catalog.Event{Index: 5, Type: catalog.EventUpdated, ArtifactID: "x", Name: "x.bin", Owner: "alice", At: at,
		ReadAgents: []artmesh.AgentID{"bob"}, ReadGroups: []string{"g"},
		Readers: []catalog.Reader{{ID: "alice", Incarnation: catalog.Incarnation(then)}, {ID: "bob", Incarnation: catalog.Incarnation(then)}}}
	joinedBefore := map[string]uint64{"g": 4}
	joinedAfter := map[string]uint64{"g": 6}
	legacy := recorded
	legacy.Readers = nil
	agent := func(id artmesh.AgentID, created time.Time, groups ...string) artmesh.Agent {
		return artmesh.Agent{ID: id, CreatedAt: created, Groups: groups}
	}
	tests := []struct {
		name   string
		caller artmesh.Agent
		joined map[string]uint64
		e      catalog.Event
		f      EventFilter
		want   bool
	}{
		{"the owner", agent("alice", then), nil, recorded, EventFilter{}, true},
		{"a reader then", agent("bob", then), nil, recorded, EventFilter{}, true},
		{"a later agent of a reader's id", agent("bob", later), nil, recorded, EventFilter{}, false},
		{"a member of a shared group since before it", agent("carol", then, "g"), joinedBefore, recorded, EventFilter{}, true},
		{"a member of a shared group that joined after it", agent("carol", then, "g"), joinedAfter, recorded, EventFilter{}, false},
		{"in a shared group by its key's groups, not by the catalog's", agent("carol", then, "g"), nil, recorded, EventFilter{}, false},
		{"an admin that was no reader", artmesh.Agent{ID: "root", CreatedAt: then, Admin: true}, nil, recorded, EventFilter{}, false},
		{"a reader, filtered out: not shared with it", agent("alice", then), nil, recorded, EventFilter{SharedWithMe: true}, false},
		{"a reader, filtered out: another artifact", agent("bob", then), nil, recorded, EventFilter{ArtifactID: "y"}, false},
		{"a reader, filtered out: another name", agent("bob", then), nil, recorded, EventFilter{Name: "y.bin"}, false},
		{"legacy: a grantee created before it", agent("bob", then), nil, legacy, EventFilter{}, true},
		{"legacy: a group member created before it", agent("carol", then, "g"), nil, legacy, EventFilter{}, true},
		{"legacy: a grantee's id created after it", agent("bob", later), nil, legacy, EventFilter{}, false},
		{"legacy: no grant", agent("dave", then), nil, legacy, EventFilter{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventPasses(tt.caller, tt.joined, tt.f, tt.e); got != tt.want {
				t.Fatalf("eventPasses = %v, want %v", got, tt.want)
			}
		})
	}
}
