package catalog

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/artmesh/artmesh"
)

// Grant identities. A read grant (an artifact shared with an agent or a
// group) and a membership (an agent in a group) carry the Raft index of
// the command that made them: removed and made again, they carry a later
// one. A token's record carries the index of the command that issued it.
// A grant that stands now and whose index is not above a token's was
// standing, unbroken, when the token was issued (a grant is stamped when
// it is made and its stamp goes when it is removed).
//
// The stamps are written after the command applied, by stampGrants, from
// the entry's index and the rows the command changed: the commands
// themselves stay as they were. A grant made before the stamps existed,
// and known to a replica from an older snapshot, has none (index 0): it
// has stood since before any token that carries an index was issued, for
// any removal and remaking since would have stamped it.

// grantsBefore is what stampGrants needs to know of the state before a
// command that may make or remove grants.
type grantsBefore struct {
	t commandType
	// artifact is the row before a share or an unshare.
	artifact *artifactRow
	id       artmesh.ArtifactID
	// groups are the rows, before a PutGroup or a CreateAgent, of the
	// groups it names (nil for one that did not exist).
	groups map[string]*groupRow
	// token is the id of the token an IssueToken records.
	token string
}

// beforeGrants reads, for a command that may make or remove grants, what
// stampGrants needs; entry is the log entry (an envelope is unwrapped:
// see unwrapEnvelopes). ok is false for the other commands.
func beforeGrants(tx *Txn, entry []byte) (b grantsBefore, ok bool) {
	if len(entry) == 0 {
		return b, false
	}
	inner := unwrapEnvelopes(entry)
	t, payload := commandType(inner[0]), inner[1:]
	b.t = t
	var names []string
	switch t {
	case shareType, unshareType:
		var cmd grantCmd
		if json.Unmarshal(payload, &cmd) != nil {
			return grantsBefore{}, false
		}
		b.id = cmd.ID
		if raw, err := tx.First(tableArtifacts, indexID, cmd.ID); err == nil && raw != nil {
			b.artifact = raw.(*artifactRow)
		}
		return b, true
	case putGroupType:
		var cmd putGroupCmd
		if json.Unmarshal(payload, &cmd) != nil {
			return grantsBefore{}, false
		}
		names = []string{cmd.Name}
	case createAgentType:
		var cmd CreateAgent
		if json.Unmarshal(payload, &cmd) != nil {
			return grantsBefore{}, false
		}
		names = cmd.Agent.Groups
	case issueTokenType:
		var cmd issueTokenCmd
		if json.Unmarshal(payload, &cmd) != nil {
			return grantsBefore{}, false
		}
		b.token = cmd.Token.ID
		return b, true
	default:
		return grantsBefore{}, false
	}
	b.groups = make(map[string]*groupRow, len(names))
	for _, name := range names {
		var g *groupRow
		if raw, err := tx.First(tableGroups, indexID, name); err == nil && raw != nil {
			g = raw.(*groupRow)
		}
		b.groups[name] = g
	}
	return b, true
}

// stampGrants stamps, with index, the grants and memberships a command
// that applied without breaking a rule made, drops the stamps of those it
// removed, and stamps the token an IssueToken recorded.
func stampGrants(tx *Txn, index uint64, b grantsBefore) error {
	switch b.t {
	case shareType, unshareType:
		raw, err := tx.First(tableArtifacts, indexID, b.id)
		if err != nil || raw == nil {
			return err
		}
		after := raw.(*artifactRow)
		var was artifactRow
		if b.artifact != nil {
			was = *b.artifact
		}
		agents := stamps(after.GrantAgents, was.GrantAgents, was.AgentGrantIndex, index)
		groups := stamps(after.GrantGroups, was.GrantGroups, was.GroupGrantIndex, index)
		if maps.Equal(agents, after.AgentGrantIndex) && maps.Equal(groups, after.GroupGrantIndex) {
			return nil
		}
		next := *after
		next.AgentGrantIndex, next.GroupGrantIndex = agents, groups
		return tx.Insert(tableArtifacts, &next)
	case putGroupType, createAgentType:
		// In name order, so that every replica writes alike.
		for _, name := range slices.Sorted(maps.Keys(b.groups)) {
			raw, err := tx.First(tableGroups, indexID, name)
			if err != nil {
				return err
			}
			if raw == nil {
				continue
			}
			after := raw.(*groupRow)
			var was groupRow
			if g := b.groups[name]; g != nil {
				was = *g
			}
			members := stamps(after.Members, was.Members, was.MemberIndex, index)
			if maps.Equal(members, after.MemberIndex) {
				continue
			}
			next := *after
			next.MemberIndex = members
			if err := tx.Insert(tableGroups, &next); err != nil {
				return err
			}
		}
		return nil
	case issueTokenType:
		raw, err := tx.First(tableTokens, indexID, b.token)
		if err != nil || raw == nil {
			return err
		}
		next := *raw.(*Token)
		next.IssuedIndex = index
		return tx.Insert(tableTokens, &next)
	}
	return nil
}

// stamps returns the stamps of the sorted set now, given the set before
// and its stamps: an element that was there keeps its stamp (or its lack
// of one), a new one gets index. Nil if there are none.
func stamps[K ~string](now, before []K, was map[K]uint64, index uint64) map[K]uint64 {
	var out map[K]uint64
	for _, k := range now {
		v, ok := index, true
		if _, in := slices.BinarySearch(before, k); in {
			v, ok = was[k]
		}
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[K]uint64, len(now))
		}
		out[k] = v
	}
	return out
}

// readGrantSince reports whether agent owns artifact id, or may read it
// through a grant that stands now and was made at or before index issued:
// a direct share, or a share with a group together with the agent's
// membership of it. NotFound if the artifact does not exist.
func (s *store) readGrantSince(agent artmesh.AgentID, id artmesh.ArtifactID, issued uint64) (bool, error) {
	return read(s, func(tx *Txn) (bool, error) {
		const op = artmesh.Op("catalog.ReadGrantSince")
		row, err := artifactTxn(tx, op, id)
		if err != nil {
			return false, err
		}
		if row.Owner == agent {
			return true, nil
		}
		if _, ok := slices.BinarySearch(row.GrantAgents, agent); ok && row.AgentGrantIndex[agent] <= issued {
			return true, nil
		}
		for _, name := range row.GrantGroups {
			if row.GroupGrantIndex[name] > issued {
				continue
			}
			raw, err := tx.First(tableGroups, indexID, name)
			if err != nil {
				return false, internal(op, err)
			}
			if raw == nil {
				continue
			}
			g := raw.(*groupRow)
			if _, ok := slices.BinarySearch(g.Members, agent); ok && g.MemberIndex[agent] <= issued {
				return true, nil
			}
		}
		return false, nil
	})
}

// ReadGrantSince reports whether agent owns artifact id or may read it
// through a grant that has stood, unbroken, since index issued or before
// (a share with the agent, or a share with a group and the agent's
// membership of it; one removed and made again since does not count).
// NotFound if the artifact does not exist.
func (c *Catalog) ReadGrantSince(agent artmesh.AgentID, id artmesh.ArtifactID, issued uint64) (bool, error) {
	return c.fsm.state().readGrantSince(agent, id, issued)
}

// Memberships returns the groups agent is a member of, each with the
// Raft index at which it joined (0: before joins were stamped).
func (c *Catalog) Memberships(agent artmesh.AgentID) (map[string]uint64, error) {
	return read(c.fsm.state(), func(tx *Txn) (map[string]uint64, error) {
		groups, err := collect[*groupRow](tx.Get(tableGroups, indexMembers, agent))
		if err != nil {
			return nil, internal("catalog.Memberships", err)
		}
		out := make(map[string]uint64, len(groups))
		for _, g := range groups {
			out[g.Name] = g.MemberIndex[agent]
		}
		return out, nil
	})
}
