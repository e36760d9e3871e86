package catalog

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/artmesh/artmesh"
)

// The event log: what happened to artifacts, recorded by the state machine
// as it applies each command, under the Raft index of that command. Every
// replica records the same events under the same indexes, so a consumer
// resumes from an index on any node and across restarts (the log is part
// of the state and its snapshots). It keeps the last MaxEvents events (up
// to eventsPerPage more); Floor says up to which index events were dropped.
//
// The log is not a memdb table: a row per event cost a radix tree insert
// and a delete per event, which made applying a create half as slow again.
// It is an immutable list of pages of eventsPerPage events, built by the
// state machine's goroutine: a batch's events are kept aside while its
// transaction runs and published with it once it commits, as a new list
// (the last page's array is shared: appends write past the end that older
// lists see). The oldest page goes whole.

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

// recordEventPage is the snapshot record of one page of events.
const recordEventPage byte = 14

// eventsPerPage is how many events one page holds.
const eventsPerPage = 64

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
	// Readers are the owner and the agents of ReadAgents, each as the
	// incarnation it was when the event happened; sorted by id. The
	// members of ReadGroups are not listed: a group may be large, and a
	// membership carries the index at which it began (groupRow's
	// MemberIndex), which says whether a member now was one then. Nil in
	// an event recorded before it existed.
	Readers []Reader `json:"readers,omitempty"`
}

// Reader is one incarnation of an agent that could read an artifact.
type Reader struct {
	ID artmesh.AgentID `json:"id"`
	// Incarnation is the agent's CreatedAt as Unix nanoseconds: an agent
	// deleted and created again under the same id has another.
	Incarnation int64 `json:"inc"`
}

// Incarnation returns what names the incarnation of an agent created at
// createdAt in Reader.Incarnation.
func Incarnation(createdAt time.Time) int64 { return createdAt.UnixNano() }

// RecordsReaders reports whether e records who could read its artifact
// (events recorded before that do not; see Readers).
func (e *Event) RecordsReaders() bool { return e.Readers != nil }

// VisibleTo reports whether the agent id, in the incarnation created at
// createdAt and with the group memberships joined (each group it is a
// member of now, with the index at which it joined, as Catalog.Memberships
// returns them), could read the artifact when e happened: it is one of
// e's Readers, or a member, since e or before, of a group e's artifact was
// shared with then. (A member that has left such a group since, or left
// and joined again, is not shown the group's earlier events: it cannot be
// told from one that joined later.) It is false for every agent when e
// records no readers.
func (e *Event) VisibleTo(id artmesh.AgentID, createdAt time.Time, joined map[string]uint64) bool {
	if !e.RecordsReaders() {
		return false
	}
	i, ok := slices.BinarySearchFunc(e.Readers, id, func(r Reader, id artmesh.AgentID) int { return cmp.Compare(r.ID, id) })
	if ok && e.Readers[i].Incarnation == Incarnation(createdAt) {
		return true
	}
	for _, g := range e.ReadGroups {
		if at, ok := joined[g]; ok && at <= e.Index {
			return true
		}
	}
	return false
}

// readersTxn returns the owner and the agents the artifact of row is
// shared with directly, each in its incarnation as it stands in tx. Its
// cost is an agent lookup per reader, and 24 bytes of memory per reader
// plus the slice's 24 (the id's text is shared with the rows; once
// restored from a snapshot, it is its own) for as long as the event is
// kept; in a snapshot, 36 bytes plus the id's length per reader.
func readersTxn(tx *Txn, row *artifactRow) ([]Reader, error) {
	ids := append([]artmesh.AgentID{row.Owner}, row.GrantAgents...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]Reader, 0, len(ids))
	for _, id := range ids {
		raw, err := tx.First(tableAgents, indexID, id)
		if err != nil {
			return nil, err
		}
		if raw != nil {
			out = append(out, Reader{ID: id, Incarnation: Incarnation(raw.(*agentRow).CreatedAt)})
		}
	}
	return out, nil
}

// eventPage is consecutive events, oldest first.
type eventPage struct {
	No       uint64   `json:"no"`        // pages are numbered from 0 in order
	First    uint64   `json:"first"`     // the index of its first event
	PrevLast uint64   `json:"prev_last"` // the index of the event before its first (0: none)
	Events   []*Event `json:"events"`
}

// eventLog is the event log as of one applied batch. It is never changed
// once published; its zero value is the empty log.
type eventLog struct {
	pages []*eventPage // oldest first; every page but the last is full
}

// held is how many events the log holds.
func (l *eventLog) held() int {
	if len(l.pages) == 0 {
		return 0
	}
	return (len(l.pages)-1)*eventsPerPage + len(l.pages[len(l.pages)-1].Events)
}

// with returns the log with evs appended, dropping the oldest pages while
// the others hold MaxEvents without them: between MaxEvents and
// MaxEvents+eventsPerPage-1 events are held. It runs on the state
// machine's goroutine only.
func (l *eventLog) with(evs []*Event) *eventLog {
	if len(evs) == 0 {
		return l
	}
	next := &eventLog{pages: append(make([]*eventPage, 0, len(l.pages)+len(evs)/eventsPerPage+1), l.pages...)}
	for _, ev := range evs {
		n := len(next.pages)
		switch {
		case n == 0:
			next.pages = append(next.pages, &eventPage{First: ev.Index, Events: append(make([]*Event, 0, eventsPerPage), ev)})
		case len(next.pages[n-1].Events) < eventsPerPage:
			// A new page value whose Events extends the shared array.
			p := *next.pages[n-1]
			p.Events = append(p.Events, ev)
			next.pages[n-1] = &p
		default:
			last := next.pages[n-1]
			next.pages = append(next.pages, &eventPage{No: last.No + 1, First: ev.Index,
				PrevLast: last.Events[len(last.Events)-1].Index, Events: append(make([]*Event, 0, eventsPerPage), ev)})
		}
		for next.held()-len(next.pages[0].Events) >= MaxEvents {
			next.pages = next.pages[1:]
		}
	}
	return next
}

// eventBefore is what eventFor needs to know of the state before a
// command: the artifact it names, as it was.
type eventBefore struct {
	row   *artifactRow
	actor artmesh.AgentID
	// version and at are a DeleteVersion's.
	version int
	at      time.Time
}

// beforeEvent reads, for a command that may make an event, the artifact it
// names as it is before the command; entry is the log entry (an envelope
// is unwrapped: see unwrapEnvelopes). ok is false for commands that make no events.
func beforeEvent(tx *Txn, entry []byte) (b eventBefore, ok bool) {
	if len(entry) == 0 {
		return eventBefore{}, false
	}
	inner := unwrapEnvelopes(entry)
	t, payload := commandType(inner[0]), inner[1:]
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

// eventFor returns the event a command made, now that it applied without
// breaking a rule (nil if it made none): l is its log entry, res its
// result.
func eventFor(tx *Txn, l *raft.Log, b eventBefore, res any) (*Event, error) {
	if f, ok := res.(forwarded); ok {
		res = f.res
	}
	t := innerType(l.Data)
	at := l.AppendedAt.UTC()
	var ev *Event
	var grants *artifactRow // whose grants say who could read
	switch t {
	case createArtifactType, addVersionType, confirmUploadType:
		a, ok := res.(artmesh.Artifact)
		if !ok {
			return nil, nil
		}
		after, err := tx.First(tableArtifacts, indexID, a.ID)
		if err != nil || after == nil {
			return nil, err
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
		grants = row
		if !a.UpdatedAt.IsZero() {
			at = a.UpdatedAt
		}
	case deleteVersionType:
		if b.row == nil {
			return nil, nil
		}
		ev = eventOf(EventVersionDeleted, b.row, b.version, b.row.Owner)
		ev.ReadAgents, ev.ReadGroups = b.row.GrantAgents, b.row.GrantGroups
		grants = b.row
		if !b.at.IsZero() {
			at = b.at
		}
	case deleteArtifactType:
		if b.row == nil {
			return nil, nil
		}
		ev = eventOf(EventDeleted, b.row, b.row.Version, b.row.Owner)
		ev.ReadAgents, ev.ReadGroups = b.row.GrantAgents, b.row.GrantGroups
		grants = b.row
	case shareType, unshareType:
		if b.row == nil {
			return nil, nil
		}
		raw, err := tx.First(tableArtifacts, indexID, b.row.ID)
		if err != nil || raw == nil {
			return nil, err
		}
		after := raw.(*artifactRow)
		kind, from, to := EventShared, b.row, after
		if t == unshareType {
			kind, from, to = EventUnshared, after, b.row
		}
		agents := without(to.GrantAgents, from.GrantAgents...)
		groups := without(to.GrantGroups, from.GrantGroups...)
		if len(agents) == 0 && len(groups) == 0 {
			return nil, nil // nothing changed
		}
		ev = eventOf(kind, after, after.Version, after.Owner)
		ev.Agents, ev.Groups = agents, groups
		// Visible to those who can read after a share, and to those who
		// could before an unshare: to.
		ev.ReadAgents, ev.ReadGroups = to.GrantAgents, to.GrantGroups
		grants = to
	default:
		return nil, nil
	}
	// Who could read it then, by the grants above.
	readers, err := readersTxn(tx, grants)
	if err != nil {
		return nil, err
	}
	ev.Readers = readers
	ev.Index, ev.At = l.Index, at
	// Empty lists are nil, as a snapshot restores them.
	ev.Agents, ev.Groups = cloneOrNil(ev.Agents), cloneOrNil(ev.Groups)
	ev.ReadAgents, ev.ReadGroups = cloneOrNil(ev.ReadAgents), cloneOrNil(ev.ReadGroups)
	return ev, nil
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
	page := EventPage{Through: max(applied, after)}
	log := s.eventLog()
	if len(log.pages) == 0 {
		return page, nil
	}
	page.Floor = log.pages[0].PrevLast
	// The first event after after is in the last page that starts at or
	// before after+1, or in the first page.
	start := max(sort.Search(len(log.pages), func(i int) bool { return log.pages[i].First > after+1 })-1, 0)
	for _, p := range log.pages[start:] {
		for _, ev := range p.Events {
			switch {
			case ev.Index <= after:
				continue
			case ev.Index > applied:
				return page, nil
			case len(page.Events) == limit:
				page.Through = page.Events[len(page.Events)-1].Index
				return page, nil
			}
			page.Events = append(page.Events, *ev)
		}
	}
	return page, nil
}

// eventLog returns the published event log.
func (s *store) eventLog() *eventLog {
	if l := s.evlog.Load(); l != nil {
		return l
	}
	return &eventLog{}
}

// The event log is also kept in the state file (bucketEvents: each event
// under its index, and the floor in the meta bucket), written in the
// batch that made its events, so that a restart finds it as it was.

// persistEvents writes to tx what turning prev into next changed: the
// events evs appended, and the events of the pages next dropped.
func persistEvents(tx *Txn, prev, next *eventLog, evs []*Event) error {
	b := tx.btx.Bucket(bucketEvents)
	b.FillPercent = appendFill // keyed by index: each event comes last
	for _, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, ev.Index), data); err != nil {
			return err
		}
	}
	if len(prev.pages) == 0 || len(next.pages) == 0 || next.pages[0].First == prev.pages[0].First {
		return nil
	}
	first := next.pages[0].First
	var drop [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < first; k, _ = c.Next() {
		drop = append(drop, bytes.Clone(k))
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return tx.btx.Bucket(bucketMeta).Put(metaEventFloor, binary.BigEndian.AppendUint64(nil, next.pages[0].PrevLast))
}

// loadEvents reads the event log from the state file.
func (s *store) loadEvents() error {
	tx := s.db.Txn(false)
	defer tx.Abort()
	if tx.err != nil {
		return tx.err
	}
	log := &eventLog{}
	floor := tx.metaUint(metaEventFloor)
	err := tx.btx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
		ev := &Event{}
		if err := json.Unmarshal(v, ev); err != nil {
			return fmt.Errorf("decode event %x: %w", k, err)
		}
		n := len(log.pages)
		switch {
		case n == 0:
			log.pages = append(log.pages, &eventPage{First: ev.Index, PrevLast: floor, Events: make([]*Event, 0, eventsPerPage)})
		case len(log.pages[n-1].Events) == eventsPerPage:
			last := log.pages[n-1]
			log.pages = append(log.pages, &eventPage{No: last.No + 1, First: ev.Index,
				PrevLast: last.Events[len(last.Events)-1].Index, Events: make([]*Event, 0, eventsPerPage)})
		}
		p := log.pages[len(log.pages)-1]
		p.Events = append(p.Events, ev)
		return nil
	})
	if err != nil {
		return err
	}
	s.evlog.Store(log)
	return nil
}
