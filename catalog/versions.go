package catalog

import (
	"github.com/artmesh/artmesh"
)

// Version gating for rolling upgrades. A replica that meets a command
// type it does not know can only skip the entry (see errMalformedEntry),
// and then its state is no longer the others'. So each member records in
// its member row the highest command type its binary knows
// (Member.Commands), and the leader proposes a command only when every
// member knows its type: a mesh is upgraded node by node before a new
// command is used. Types with ignoreUnknownTypeFlag are exempt, as an
// older replica skips them by design.

// KnownCommands is the highest catalog command type this binary knows,
// ignoreUnknownTypeFlag aside. A node records it in its member row
// (Member.Commands). Raise it with each new command type.
const KnownCommands = 37

// baselineCommands is the highest command type that every binary from
// before members recorded theirs knows (all the types up to
// dropFetchingType): a member row without Commands knows these. It never
// changes.
const baselineCommands = 34

// commandLevel returns the Commands value a member needs to know t.
func commandLevel(t commandType) int { return int(t &^ ignoreUnknownTypeFlag) }

// knownCommands returns the highest command type a member knows.
func (m Member) knownCommands() int {
	if m.Commands == 0 {
		return baselineCommands
	}
	return m.Commands
}

// memberLevel is the lowest Commands of the members and one member that
// has it, cached in the store: the leader checks it at every write.
type memberLevel struct {
	commands int
	peer     string
}

// refreshMemberLevel recomputes the lowest Commands of the members from
// the committed state; the state machine calls it when member rows
// changed, and Restore.
func (s *store) refreshMemberLevel() {
	tx := s.db.Txn(false)
	defer tx.Abort()
	it, err := tx.Get(tableMembers, indexID)
	if err != nil {
		return // cannot happen (a read of a table of the schema); the cache keeps its value
	}
	var lowest *memberLevel
	for raw := it.Next(); raw != nil; raw = it.Next() {
		m := raw.(*Member)
		if k := m.knownCommands(); lowest == nil || k < lowest.commands {
			lowest = &memberLevel{commands: k, peer: m.PeerID}
		}
	}
	s.level.Store(lowest)
}

// checkKnown refuses, with Unavailable, a command of type t (the write
// an envelope carries, for a forwarded one: the envelope's own type is in
// the baseline, which every member knows) that a member does not know.
// The commands by which a member records its version or is removed, the
// two ways to lift the gate, are never refused (every binary knows them:
// they are older than the gate).
func (s *store) checkKnown(op artmesh.Op, t commandType) error {
	if t&ignoreUnknownTypeFlag != 0 || t == putMemberType || t == deleteMemberType {
		return nil
	}
	lowest := s.level.Load()
	if lowest == nil || commandLevel(t) <= lowest.commands {
		return nil
	}
	return errorf(op, artmesh.Unavailable,
		"member %s runs an older version that does not know command %s (type %d; it knows types up to %d); upgrade it first",
		lowest.peer, t, uint8(t), lowest.commands)
}

// CheckJoiner refuses, with Conflict, a node that asks to join while its
// binary knows fewer command types (commands, its KnownCommands; 0 for a
// binary from before members recorded theirs) than every member does: the
// log may hold an entry it cannot apply. Upgrade it first.
func (c *Catalog) CheckJoiner(commands int) error {
	known := Member{Commands: commands}.knownCommands()
	lowest := c.fsm.state().level.Load()
	if lowest == nil || known >= lowest.commands {
		return nil
	}
	return errorf("catalog.CheckJoiner", artmesh.Conflict,
		"the joining node knows catalog command types up to %d, and every member knows up to %d: upgrade it first", known, lowest.commands)
}
