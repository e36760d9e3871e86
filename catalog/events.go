package catalog

import (
	"encoding/json"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/artmesh/artmesh"
)

// The event log: what happened to artifacts, recorded by the state machine
// as it applies each command, under the Raft index of that command. Every
// replica records the same events under the same indexes, so a consumer
// resumes from an index on any node and across restarts (the log is part
// of the state and its snapshots). It keeps the last MaxEvents events;
// Floor says up to which index events were dropped.

// The kinds of events.
const (
	EventCreated        = "artifact.created"
	EventUpdated        = "artifact.updated"
	EventDeleted        = "artifact.deleted"
	EventVersionDeleted = "version.deleted"
	EventShared         = "artifact.shared"
	EventUnshared       = "artifact.unshared"
)

// MaxEvents is how many events the catalog keeps.
const MaxEvents = 10000

const (
	tableEvents   = "events"
	tableEventLog = "eventlog"

	recordEventRow byte = 14
	recordEventLog byte = 15
)

// Event is one change to an artifact.
type Event struct {
	Index      uint64             `json:"index"` // of the command that made it
	Type       string             `json:"type"`
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Name       string             `json:"name"`
	Owner      artmesh.AgentID    `json:"owner"`
	// Version is the version made (created, updated) or deleted; for the
	// other kinds, the current version at the time.
	Version int             `json:"version,omitempty"`
	Actor   artmesh.AgentID `json:"actor"` // the agent that made the change
	At      time.Time       `json:"at"`
	// Agents and Groups are the grants a share added or an unshare took
	// away.
	Agents []artmesh.AgentID `json:"agents,omitempty"`
	Groups []string          `json:"groups,omitempty"`
	// ReadAgents and ReadGroups are the grants of the artifact that the
	// event is visible through, besides its owner: those after a share,
	// those before an unshare or a deletion, the current ones otherwise.
	ReadAgents []artmesh.AgentID `json:"read_agents,omitempty"`
	ReadGroups []string          `json:"read_groups,omitempty"`
}

// eventLog is the single row of the eventlog table.
type eventLog struct {
	ID    string `json:"id"`    // always "log"
	Count int    `json:"count"` // events held
	Floor uint64 `json:"floor"` // the highest index of a dropped event
}

func eventTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableEvents: {
			Name: tableEvents,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Index"}},
			},
		},
		tableEventLog: {
			Name: tableEventLog,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			},
		},
	}
}

// eventBefore is what recordEvent needs to know of the state before a
// command: the artifact it names, as it was.
type eventBefore struct {
	row   *artifactRow
	actor artmesh.AgentID
	// version and at are a DeleteVersion's.
	version int
	at      time.Time
}

// beforeEvent reads, for a command that may make an event, the artifact it
// names as it is before the command; entry is the log entry (a forwarded
// one is unwrapped). ok is false for commands that make no events.
func beforeEvent(tx *memdb.Txn, entry []byte) (b eventBefore, ok bool) {
	t, payload := commandType(entry[0]), entry[1:]
	if t == forwardedType {
		_, _, inner := unwrapForwarded(payload)
		t, payload = commandType(inner[0]), inner[1:]
	}
	var id artmesh.ArtifactID
	switch t {
	case createArtifactType:
		return eventBefore{}, true
	case addVersionType, deleteVersionType:
		var cmd struct {
			ArtifactID artmesh.ArtifactID `json:"artifact_id"`
			By         artmesh.AgentID    `json:"by"`      // AddVersion
			Version    int                `json:"version"` // DeleteVersion
			At         time.Time          `json:"at"`
		}
		if json.Unmarshal(payload, &cmd) != nil {
			return eventBefore{}, false
		}
		id, b.actor, b.version, b.at = cmd.ArtifactID, cmd.By, cmd.Version, cmd.At
	case deleteArtifactType, shareType, unshareType:
		var cmd struct {
			ID artmesh.ArtifactID `json:"id"`
		}
		if json.Unmarshal(payload, &cmd) != nil {
			return eventBefore{}, false
		}
		id = cmd.ID
	case confirmUploadType:
		var cmd struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(payload, &cmd) != nil {
			return eventBefore{}, false
		}
		raw, err := tx.First(tableUploads, indexID, cmd.ID)
		if err != nil || raw == nil {
			return eventBefore{}, false
		}
		u := raw.(*Upload)
		id, b.actor = u.ArtifactID, u.Owner
		if id == "" {
			return b, true
		}
	default:
		return eventBefore{}, false
	}
	raw, err := tx.First(tableArtifacts, indexID, id)
	if err != nil || raw == nil {
		return eventBefore{}, false
	}
	b.row = raw.(*artifactRow)
	return b, true
}

// recordEvent records the event a command made, now that it applied
// without breaking a rule: l is its log entry, res its result.
func recordEvent(tx *memdb.Txn, l *raft.Log, b eventBefore, res any) error {
	if f, ok := res.(forwarded); ok {
		res = f.res
	}
	t := innerType(l.Data)
	at := l.AppendedAt.UTC()
	var ev *Event
	switch t {
	case createArtifactType, addVersionType, confirmUploadType:
		a, ok := res.(artmesh.Artifact)
		if !ok {
			return nil
		}
		after, err := tx.First(tableArtifacts, indexID, a.ID)
		if err != nil || after == nil {
			return err
		}
		row := after.(*artifactRow)
		kind := EventUpdated
		actor := b.actor
		if b.row == nil {
			kind, actor = EventCreated, row.Owner
		}
		if actor == "" {
			actor = row.Owner
		}
		ev = eventOf(kind, row, row.Version, actor)
		ev.ReadAgents, ev.ReadGroups = row.GrantAgents, row.GrantGroups
		if !a.UpdatedAt.IsZero() {
			at = a.UpdatedAt
		}
	case deleteVersionType:
		if b.row == nil {
			return nil
		}
		ev = eventOf(EventVersionDeleted, b.row, b.version, b.row.Owner)
		ev.ReadAgents, ev.ReadGroups = b.row.GrantAgents, b.row.GrantGroups
		if !b.at.IsZero() {
			at = b.at
		}
	case deleteArtifactType:
		if b.row == nil {
			return nil
		}
		ev = eventOf(EventDeleted, b.row, b.row.Version, b.row.Owner)
		ev.ReadAgents, ev.ReadGroups = b.row.GrantAgents, b.row.GrantGroups
	case shareType, unshareType:
		if b.row == nil {
			return nil
		}
		raw, err := tx.First(tableArtifacts, indexID, b.row.ID)
		if err != nil || raw == nil {
			return err
		}
		after := raw.(*artifactRow)
		kind, from, to := EventShared, b.row, after
		if t == unshareType {
			kind, from, to = EventUnshared, after, b.row
		}
		agents := without(to.GrantAgents, from.GrantAgents...)
		groups := without(to.GrantGroups, from.GrantGroups...)
		if len(agents) == 0 && len(groups) == 0 {
			return nil // nothing changed
		}
		ev = eventOf(kind, after, after.Version, after.Owner)
		ev.Agents, ev.Groups = agents, groups
		// Visible to those who can read after a share, and to those who
		// could before an unshare: to.
		ev.ReadAgents, ev.ReadGroups = to.GrantAgents, to.GrantGroups
	default:
		return nil
	}
	ev.Index, ev.At = l.Index, at
	// Empty lists are nil, as a snapshot restores them.
	ev.Agents, ev.Groups = cloneOrNil(ev.Agents), cloneOrNil(ev.Groups)
	ev.ReadAgents, ev.ReadGroups = cloneOrNil(ev.ReadAgents), cloneOrNil(ev.ReadGroups)
	return insertEventTxn(tx, ev)
}

// isDuplicate reports whether res is that of a forwarded write applied
// before, which changed nothing this time.
func isDuplicate(res any) bool {
	_, ok := res.(duplicate)
	return ok
}

func eventOf(kind string, row *artifactRow, version int, actor artmesh.AgentID) *Event {
	return &Event{Type: kind, ArtifactID: row.ID, Name: row.Name, Owner: row.Owner, Version: version, Actor: actor}
}

// insertEventTxn adds ev and drops the oldest event beyond MaxEvents.
func insertEventTxn(tx *memdb.Txn, ev *Event) error {
	const op = artmesh.Op("catalog.recordEvent")
	log, err := eventLogTxn(tx)
	if err != nil {
		return internal(op, err)
	}
	if err := tx.Insert(tableEvents, ev); err != nil {
		return internal(op, err)
	}
	next := *log
	next.Count++
	for next.Count > MaxEvents {
		raw, err := tx.First(tableEvents, indexID)
		if err != nil {
			return internal(op, err)
		}
		oldest := raw.(*Event)
		if err := tx.Delete(tableEvents, oldest); err != nil {
			return internal(op, err)
		}
		next.Count--
		next.Floor = oldest.Index
	}
	if err := tx.Insert(tableEventLog, &next); err != nil {
		return internal(op, err)
	}
	return nil
}

func eventLogTxn(tx *memdb.Txn) (*eventLog, error) {
	raw, err := tx.First(tableEventLog, indexID, "log")
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return &eventLog{ID: "log"}, nil
	}
	return raw.(*eventLog), nil
}

// EventPage is a run of events after an index.
type EventPage struct {
	Events []Event
	// Through is the index the state had applied when the events were
	// read: every event up to it is in Events or was not there to see. A
	// reader goes on from Through, not from the last event's index.
	Through uint64
	// Floor is the highest index of an event that was dropped: a reader
	// that asks for events after an index below Floor has lost some.
	Floor uint64
}

// Events returns up to limit events with an index above after, oldest
// first.
func (c *Catalog) Events(after uint64, limit int) (EventPage, error) {
	// The state may move on while it is read; the page stops at the index
	// applied before, so that Through never skips an event.
	applied := c.fsm.applied.Load()
	return c.fsm.state().events(applied, after, limit)
}

// events returns up to limit events with an index in (after, applied].
func (s *store) events(applied, after uint64, limit int) (EventPage, error) {
	const op = artmesh.Op("catalog.Events")
	return read(s, func(tx *memdb.Txn) (EventPage, error) {
		log, err := eventLogTxn(tx)
		if err != nil {
			return EventPage{}, internal(op, err)
		}
		page := EventPage{Through: max(applied, after), Floor: log.Floor}
		it, err := tx.LowerBound(tableEvents, indexID, after+1)
		if err != nil {
			return EventPage{}, internal(op, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			ev := raw.(*Event)
			if ev.Index > applied {
				break
			}
			if len(page.Events) == limit {
				page.Through = page.Events[len(page.Events)-1].Index
				break
			}
			page.Events = append(page.Events, *ev)
		}
		return page, nil
	})
}
