package node

import (
	"context"
	"fmt"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
)

// The change feed: the catalog's event log, seen by one agent. Every
// event has the catalog index of the command that made it, so a reader
// that saw index i goes on after i on any node, across restarts, as long
// as the catalog still holds the events after i (the last
// catalog.MaxEvents of them).

// Event is one change to an artifact, as an agent that may read it sees it.
type Event struct {
	Index      uint64             // the catalog index: the event's id
	Type       string             // catalog.EventCreated, ...
	ArtifactID artmesh.ArtifactID //
	Name       string             //
	Owner      artmesh.AgentID    //
	Version    int                // made, deleted, or current
	Actor      artmesh.AgentID    // who made the change
	At         time.Time          //
	// Agents and Groups are the grants a share added or an unshare took
	// away; only the owner is shown them.
	Agents []artmesh.AgentID
	Groups []string
}

// EventFilter narrows the feed. The zero value passes every event the
// caller may see.
type EventFilter struct {
	ArtifactID   artmesh.ArtifactID // only this artifact
	Name         string             // only artifacts of this name
	SharedWithMe bool               // only artifacts others own
}

// EventBatch is what the feed has after an index.
type EventBatch struct {
	Events []Event
	// Next is where the reader goes on from: the index up to which it has
	// now seen everything, events it may not see included.
	Next uint64
	// Reset says that events after the index asked for are gone (or that
	// index is not one this node's catalog has reached): the reader may
	// have missed changes, and goes on from Next.
	Reset bool
}

// eventBatchLimit bounds the events of one batch.
const eventBatchLimit = 512

// EventsNow is the index a feed that starts now goes on from: what the
// local catalog has applied.
func (n *Node) EventsNow() uint64 { return n.cat.AppliedIndex() }

// Events returns the events after index after that caller may read and
// that pass f, oldest first. A reader loops: Events, then WaitEvents(Next).
func (n *Node) Events(_ context.Context, caller artmesh.Agent, f EventFilter, after uint64) (EventBatch, error) {
	if f.ArtifactID != "" && !artmesh.ValidArtifactID(string(f.ArtifactID)) {
		return EventBatch{}, artmesh.E(artmesh.Invalid, fmt.Sprintf("artifact_id %q is not an artifact id", f.ArtifactID))
	}
	var b EventBatch
	if last := n.cat.LastIndex(); after > last {
		// Not an index this node's log has reached: the reader's place is
		// unknown here.
		b.Reset, after = true, n.cat.AppliedIndex()
	}
	page, err := n.cat.Events(after, eventBatchLimit)
	if err != nil {
		return EventBatch{}, err
	}
	if after < page.Floor {
		b.Reset = true
	}
	b.Next = page.Through
	joined, err := n.cat.Memberships(caller.ID)
	if err != nil {
		return EventBatch{}, err
	}
	for _, e := range page.Events {
		if !eventPasses(caller, joined, f, e) {
			continue
		}
		ev := Event{Index: e.Index, Type: e.Type, ArtifactID: e.ArtifactID, Name: e.Name, Owner: e.Owner,
			Version: e.Version, Actor: e.Actor, At: e.At}
		if e.Owner == caller.ID {
			ev.Agents, ev.Groups = e.Agents, e.Groups
		}
		b.Events = append(b.Events, ev)
	}
	return b, nil
}

// eventPasses reports whether caller may see e and e passes f. Caller
// may see e if it, this incarnation of its id, could read the artifact
// when e happened, by the grants and group memberships in force then
// (catalog.Event.VisibleTo; joined are caller's memberships now, with the
// index each began at); admins are no exception. An event recorded
// before events recorded their readers (restored from an older snapshot)
// is shown as it was before: to an agent that can read through the
// grants it carries with its groups of now; and, to keep a later agent of
// the same id out, only if the agent was created no later than the event.
func eventPasses(caller artmesh.Agent, joined map[string]uint64, f EventFilter, e catalog.Event) bool {
	if e.RecordsReaders() {
		if !e.VisibleTo(caller.ID, caller.CreatedAt, joined) {
			return false
		}
	} else if caller.CreatedAt.After(e.At) ||
		!acl.Can(caller.ID, caller.Groups, artmesh.Read, acl.Subject{Owner: e.Owner, Agents: e.ReadAgents, Groups: e.ReadGroups}) {
		return false
	}
	switch {
	case f.ArtifactID != "" && e.ArtifactID != f.ArtifactID:
		return false
	case f.Name != "" && e.Name != f.Name:
		return false
	case f.SharedWithMe && e.Owner == caller.ID:
		return false
	}
	return true
}

// WaitEvents waits until the local catalog has applied an index above
// after, or up to max; it reports whether it has.
func (n *Node) WaitEvents(ctx context.Context, after uint64, max time.Duration) bool {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		applied, next := n.cat.Watch()
		if applied > after {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return false
		case <-next:
		}
	}
}
