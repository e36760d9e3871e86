package catalog

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/artmesh/artmesh"
)

// store holds the catalog's state in its tables on disk (see db.go), in
// the shape of consul's state store: each read method opens a read
// transaction and calls the xxxTxn helper that does the work within it.
// Writes are xxxTxn helpers that the state machine calls within its write
// transaction, one command at a time in log order; they read no clock,
// randomness or disk outside the state. Reads may run concurrently with
// writes and with each other: each sees one consistent, committed state.
type store struct {
	db     *tables
	recent recentResults // first results of forwarded writes, for their retries
	// evlog is the event log as of the last committed batch (nil: empty),
	// published by the state machine's goroutine.
	evlog atomic.Pointer[eventLog]
	// level is the lowest Commands of the members (nil: no members),
	// recomputed by the state machine's goroutine when member rows change.
	level atomic.Pointer[memberLevel]
}

// openStore opens the state file at path (creating an empty state if
// there is none) and loads what is kept in memory: the event log and the
// members' level.
func openStore(path string) (*store, error) {
	db, err := openTables(path)
	if err != nil {
		return nil, err
	}
	s := &store{db: db}
	if err := s.loadEvents(); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: load the event log: %w", err)
	}
	s.refreshMemberLevel()
	return s, nil
}

// close closes the state file, once its readers are done.
func (s *store) close() error { return s.db.Close() }

// applied returns the index of the last entry the state holds.
func (s *store) applied() uint64 {
	tx := s.db.Txn(false)
	defer tx.Abort()
	return tx.applied()
}

// errorf returns an *artmesh.Error of the given operation and kind.
func errorf(op artmesh.Op, kind artmesh.Kind, format string, args ...any) error {
	return artmesh.E(op, kind, fmt.Sprintf(format, args...))
}

// internal wraps an unexpected failure of the state database.
func internal(op artmesh.Op, err error) error {
	return artmesh.E(op, artmesh.Other, fmt.Errorf("catalog state: %w", err))
}

// read runs fn in a read transaction.
func read[T any](s *store, fn func(tx *Txn) (T, error)) (T, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	if tx.err != nil {
		var zero T
		return zero, internal("catalog.read", tx.err)
	}
	return fn(tx)
}

// ----- writes -----
//
// Each xxxTxn write helper applies one command within the state machine's
// write transaction. It checks every rule of the command before its first
// write, so that a rule violation (an error of any kind but
// artmesh.Other) leaves the transaction as it was; the commands of a batch
// share one transaction (see fsm.ApplyBatch). Only an internal failure of
// the database (kind Other) may leave a helper's writes half done, and then
// the transaction is thrown away.

func createArtifactTxn(tx *Txn, cmd CreateArtifact) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.CreateArtifact")
	existing, err := tx.First(tableArtifacts, indexID, cmd.ID)
	if err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if existing != nil {
		return artmesh.Artifact{}, errorf(op, artmesh.Conflict, "artifact %s already exists", cmd.ID)
	}
	owner, err := tx.First(tableAgents, indexID, cmd.Owner)
	if err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if owner == nil {
		return artmesh.Artifact{}, errorf(op, artmesh.Invalid, "owner %q is not an agent", cmd.Owner)
	}
	md := artmesh.Metadata(nil).Merge(cmd.Metadata)
	row := &artifactRow{
		Artifact: artmesh.Artifact{
			ID:          cmd.ID,
			Name:        cmd.Name,
			Owner:       cmd.Owner,
			ContentType: cmd.ContentType,
			SizeBytes:   cmd.SizeBytes,
			CID:         cmd.CID,
			Version:     1,
			Metadata:    md,
			CreatedAt:   cmd.At,
			UpdatedAt:   cmd.At,
			SHA256:      cmd.SHA256,
		},
		NextVersion: 2,
	}
	v := &versionRow{ArtifactID: cmd.ID, Version: artmesh.Version{
		Version:     1,
		CID:         cmd.CID,
		SizeBytes:   cmd.SizeBytes,
		ContentType: cmd.ContentType,
		Metadata:    md,
		CreatedAt:   cmd.At,
		CreatedBy:   cmd.Owner,
		SHA256:      cmd.SHA256,
	}}
	if err := tx.Insert(tableArtifacts, row); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := tx.Insert(tableVersions, v); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := addOwnedTxn(tx, row.Owner, 1); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := addUsageTxn(tx, row.Owner, usageRow{Bytes: cmd.SizeBytes}); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	for _, h := range append([]string{cmd.Holder}, cmd.Holders...) {
		if err := addHolderTxn(tx, cmd.CID, h); err != nil {
			return artmesh.Artifact{}, err
		}
	}
	return row.artifact(), nil
}

func addVersionTxn(tx *Txn, cmd AddVersion) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.AddVersion")
	row, err := artifactTxn(tx, op, cmd.ArtifactID)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	ct := cmd.ContentType
	if ct == "" {
		ct = row.ContentType
	}
	md := row.Metadata.Merge(cmd.Metadata)
	n := row.NextVersion
	v := &versionRow{ArtifactID: row.ID, Version: artmesh.Version{
		Version:     n,
		CID:         cmd.CID,
		SizeBytes:   cmd.SizeBytes,
		ContentType: ct,
		Metadata:    md,
		CreatedAt:   cmd.At,
		CreatedBy:   cmd.By,
		Parent:      row.Version,
		SHA256:      cmd.SHA256,
	}}
	next := *row
	next.NextVersion = n + 1
	next.setCurrent(v)
	if err := tx.Insert(tableVersions, v); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := tx.Insert(tableArtifacts, &next); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := addUsageTxn(tx, row.Owner, usageRow{Bytes: cmd.SizeBytes}); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	for _, h := range append([]string{cmd.Holder}, cmd.Holders...) {
		if err := addHolderTxn(tx, cmd.CID, h); err != nil {
			return artmesh.Artifact{}, err
		}
	}
	return next.artifact(), nil
}

func deleteVersionTxn(tx *Txn, cmd DeleteVersion) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.DeleteVersion")
	row, err := artifactTxn(tx, op, cmd.ArtifactID)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	v, err := versionTxn(tx, op, row, cmd.Version)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	it, err := tx.Get(tableVersions, indexID, row.ID)
	if err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	// Two versions at least must exist for one to go.
	first := it.Next()
	second := it.Next()
	if first == nil || second == nil {
		return artmesh.Artifact{}, errorf(op, artmesh.Conflict,
			"version %d is the only version of artifact %s; delete the artifact instead", cmd.Version, row.ID)
	}
	if err := tx.Delete(tableVersions, v); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := addUsageTxn(tx, row.Owner, usageRow{Bytes: -v.SizeBytes}); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := dropPinsTxn(tx, op, row.ID, v.Version.Version); err != nil {
		return artmesh.Artifact{}, err
	}
	if err := forgetContentTxn(tx, op, v.CID); err != nil {
		return artmesh.Artifact{}, err
	}
	if v.Version.Version != row.Version {
		return row.artifact(), nil
	}
	// The current version is gone: the highest remaining one takes over.
	// (Not tx.Last: on a unique index it looks up the exact key, not a
	// prefix.)
	rest, err := tx.GetReverse(tableVersions, indexID, row.ID)
	if err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	next := *row
	next.setCurrent(rest.Next().(*versionRow))
	if err := tx.Insert(tableArtifacts, &next); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	return next.artifact(), nil
}

func deleteArtifactTxn(tx *Txn, cmd deleteArtifactCmd) error {
	const op = artmesh.Op("catalog.DeleteArtifact")
	row, err := artifactTxn(tx, op, cmd.ID)
	if err != nil {
		return err
	}
	vs, err := collect[*versionRow](tx.Get(tableVersions, indexID, row.ID))
	if err != nil {
		return internal(op, err)
	}
	if _, err := tx.DeleteAll(tableVersions, indexID, row.ID); err != nil {
		return internal(op, err)
	}
	var cids []string
	var size int64
	for _, v := range vs {
		cids = append(cids, v.CID)
		size += v.SizeBytes
	}
	if err := addUsageTxn(tx, row.Owner, usageRow{Bytes: -size}); err != nil {
		return internal(op, err)
	}
	if err := forgetContentTxn(tx, op, cids...); err != nil {
		return err
	}
	if err := dropPinsTxn(tx, op, row.ID, 0); err != nil {
		return err
	}
	if err := tx.Delete(tableArtifacts, row); err != nil {
		return internal(op, err)
	}
	if err := addOwnedTxn(tx, row.Owner, -1); err != nil {
		return internal(op, err)
	}
	return nil
}

func shareTxn(tx *Txn, cmd shareCmd) (artmesh.Access, error) {
	const op = artmesh.Op("catalog.Share")
	row, err := artifactTxn(tx, op, cmd.ID)
	if err != nil {
		return artmesh.Access{}, err
	}
	var unknown []string
	for _, a := range cmd.Agents {
		if r, err := tx.First(tableAgents, indexID, a); err != nil {
			return artmesh.Access{}, internal(op, err)
		} else if r == nil {
			unknown = append(unknown, "agent "+string(a))
		}
	}
	for _, g := range cmd.Groups {
		if r, err := tx.First(tableGroups, indexID, g); err != nil {
			return artmesh.Access{}, internal(op, err)
		} else if r == nil {
			unknown = append(unknown, "group "+g)
		}
	}
	if len(unknown) > 0 {
		return artmesh.Access{}, errorf(op, artmesh.Invalid, "cannot share with unknown %s", strings.Join(unknown, ", "))
	}
	next := *row
	next.GrantAgents = union(row.GrantAgents, cmd.Agents)
	next.GrantGroups = union(row.GrantGroups, cmd.Groups)
	if err := tx.Insert(tableArtifacts, &next); err != nil {
		return artmesh.Access{}, internal(op, err)
	}
	return next.access(), nil
}

func unshareTxn(tx *Txn, cmd unshareCmd) (artmesh.Access, error) {
	const op = artmesh.Op("catalog.Unshare")
	row, err := artifactTxn(tx, op, cmd.ID)
	if err != nil {
		return artmesh.Access{}, err
	}
	next := *row
	next.GrantAgents = without(row.GrantAgents, cmd.Agents...)
	next.GrantGroups = without(row.GrantGroups, cmd.Groups...)
	if err := tx.Insert(tableArtifacts, &next); err != nil {
		return artmesh.Access{}, internal(op, err)
	}
	return next.access(), nil
}

func createAgentTxn(tx *Txn, cmd CreateAgent) (artmesh.Agent, error) {
	const op = artmesh.Op("catalog.CreateAgent")
	id := cmd.Agent.ID
	existing, err := tx.First(tableAgents, indexID, id)
	if err != nil {
		return artmesh.Agent{}, internal(op, err)
	}
	if existing != nil {
		return artmesh.Agent{}, errorf(op, artmesh.Conflict, "agent %s already exists", id)
	}
	if cmd.NewGroupsOnly {
		for _, name := range cmd.Agent.Groups {
			if raw, err := tx.First(tableGroups, indexID, name); err != nil {
				return artmesh.Agent{}, internal(op, err)
			} else if raw != nil {
				return artmesh.Agent{}, errorf(op, artmesh.PermissionDenied, "group %s exists: only a mesh admin may put an agent in it", name)
			}
		}
	}
	row := &agentRow{ID: id, Admin: cmd.Agent.Admin, Node: cmd.Agent.Node, CreatedAt: cmd.Agent.CreatedAt}
	if cmd.KeyHash != "" {
		if err := keyHashFreeTxn(tx, op, id, cmd.KeyHash); err != nil {
			return artmesh.Agent{}, err
		}
		row.KeyHashes = []string{cmd.KeyHash}
	}
	if err := tx.Insert(tableAgents, row); err != nil {
		return artmesh.Agent{}, internal(op, err)
	}
	for _, name := range union(nil, cmd.Agent.Groups) {
		raw, err := tx.First(tableGroups, indexID, name)
		if err != nil {
			return artmesh.Agent{}, internal(op, err)
		}
		g := &groupRow{Name: name, Members: []artmesh.AgentID{id}}
		if raw != nil {
			old := raw.(*groupRow)
			g.Members = union(old.Members, g.Members)
		}
		if err := tx.Insert(tableGroups, g); err != nil {
			return artmesh.Agent{}, internal(op, err)
		}
	}
	return agentFromRowTxn(tx, op, row)
}

func deleteAgentTxn(tx *Txn, cmd deleteAgentCmd) error {
	const op = artmesh.Op("catalog.DeleteAgent")
	row, err := agentTxn(tx, op, cmd.ID)
	if err != nil {
		return err
	}
	owned, err := ownedTxn(tx, row.ID)
	if err != nil {
		return internal(op, err)
	}
	if owned > 0 {
		return errorf(op, artmesh.Conflict, "agent %s still owns %d artifact(s); delete them first", row.ID, owned)
	}
	groups, err := collect[*groupRow](tx.Get(tableGroups, indexMembers, row.ID))
	if err != nil {
		return internal(op, err)
	}
	for _, g := range groups {
		next := *g
		next.Members = without(g.Members, row.ID)
		if err := tx.Insert(tableGroups, &next); err != nil {
			return internal(op, err)
		}
	}
	shared, err := collect[*artifactRow](tx.Get(tableArtifacts, indexGrantAgent, row.ID))
	if err != nil {
		return internal(op, err)
	}
	for _, a := range shared {
		next := *a
		next.GrantAgents = without(a.GrantAgents, row.ID)
		if err := tx.Insert(tableArtifacts, &next); err != nil {
			return internal(op, err)
		}
	}
	if err := tx.Delete(tableAgents, row); err != nil {
		return internal(op, err)
	}
	return nil
}

func setAgentKeyTxn(tx *Txn, cmd setAgentKeyCmd) error {
	const op = artmesh.Op("catalog.SetAgentKey")
	row, err := agentTxn(tx, op, cmd.ID)
	if err != nil {
		return err
	}
	if err := keyHashFreeTxn(tx, op, row.ID, cmd.KeyHash); err != nil {
		return err
	}
	next := *row
	next.KeyHashes = []string{cmd.KeyHash}
	if err := tx.Insert(tableAgents, &next); err != nil {
		return internal(op, err)
	}
	return nil
}

func putGroupTxn(tx *Txn, cmd putGroupCmd) (artmesh.Group, error) {
	const op = artmesh.Op("catalog.PutGroup")
	if cmd.CreateOnly {
		if raw, err := tx.First(tableGroups, indexID, cmd.Name); err != nil {
			return artmesh.Group{}, internal(op, err)
		} else if raw != nil {
			return artmesh.Group{}, errorf(op, artmesh.PermissionDenied, "group %s exists: only a mesh admin may change it", cmd.Name)
		}
	}
	members := union(nil, cmd.Members)
	var unknown []string
	for _, m := range members {
		if r, err := tx.First(tableAgents, indexID, m); err != nil {
			return artmesh.Group{}, internal(op, err)
		} else if r == nil {
			unknown = append(unknown, string(m))
		}
	}
	if len(unknown) > 0 {
		return artmesh.Group{}, errorf(op, artmesh.Invalid, "group members must be agents; unknown: %s", strings.Join(unknown, ", "))
	}
	g := &groupRow{Name: cmd.Name, Members: members}
	if err := tx.Insert(tableGroups, g); err != nil {
		return artmesh.Group{}, internal(op, err)
	}
	return g.group(), nil
}

func deleteGroupTxn(tx *Txn, cmd deleteGroupCmd) error {
	const op = artmesh.Op("catalog.DeleteGroup")
	row, err := groupTxn(tx, op, cmd.Name)
	if err != nil {
		return err
	}
	shared, err := collect[*artifactRow](tx.Get(tableArtifacts, indexGrantGroup, row.Name))
	if err != nil {
		return internal(op, err)
	}
	for _, a := range shared {
		next := *a
		next.GrantGroups = without(a.GrantGroups, row.Name)
		if err := tx.Insert(tableArtifacts, &next); err != nil {
			return internal(op, err)
		}
	}
	if err := tx.Delete(tableGroups, row); err != nil {
		return internal(op, err)
	}
	return nil
}

// ownedTxn returns how many artifacts owner owns.
func ownedTxn(tx *Txn, owner artmesh.AgentID) (int, error) {
	raw, err := tx.First(tableOwned, indexID, owner)
	if raw == nil || err != nil {
		return 0, err
	}
	return raw.(*ownedRow).Artifacts, nil
}

// addOwnedTxn adds delta to the count of owner's artifacts.
func addOwnedTxn(tx *Txn, owner artmesh.AgentID, delta int) error {
	raw, err := tx.First(tableOwned, indexID, owner)
	if err != nil {
		return err
	}
	n := delta
	if raw != nil {
		n += raw.(*ownedRow).Artifacts
	}
	switch {
	case n > 0:
		return tx.Insert(tableOwned, &ownedRow{Owner: owner, Artifacts: n})
	case raw != nil:
		return tx.Delete(tableOwned, raw)
	}
	return nil
}

// keyHashFreeTxn checks that no agent but id has the key hash.
func keyHashFreeTxn(tx *Txn, op artmesh.Op, id artmesh.AgentID, hash string) error {
	raw, err := tx.First(tableAgents, indexKeyHash, hash)
	if err != nil {
		return internal(op, err)
	}
	if raw != nil && raw.(*agentRow).ID != id {
		return errorf(op, artmesh.Conflict, "the API key hash is already in use by another agent")
	}
	return nil
}

// ----- reads -----

// artifact returns the artifact id.
func (s *store) artifact(id artmesh.ArtifactID) (artmesh.Artifact, error) {
	return read(s, func(tx *Txn) (artmesh.Artifact, error) {
		row, err := artifactTxn(tx, "catalog.Artifact", id)
		if err != nil {
			return artmesh.Artifact{}, err
		}
		return row.artifact(), nil
	})
}

// versions returns the versions of artifact id, oldest first.
func (s *store) versions(id artmesh.ArtifactID) ([]artmesh.Version, error) {
	return read(s, func(tx *Txn) ([]artmesh.Version, error) {
		const op = artmesh.Op("catalog.Versions")
		if _, err := artifactTxn(tx, op, id); err != nil {
			return nil, err
		}
		rows, err := collect[*versionRow](tx.Get(tableVersions, indexID, id))
		if err != nil {
			return nil, internal(op, err)
		}
		out := make([]artmesh.Version, len(rows))
		for i, r := range rows {
			out[i] = r.version()
		}
		return out, nil
	})
}

// version returns version n of artifact id; n == 0 is the current one.
func (s *store) version(id artmesh.ArtifactID, n int) (artmesh.Version, error) {
	return read(s, func(tx *Txn) (artmesh.Version, error) {
		const op = artmesh.Op("catalog.Version")
		row, err := artifactTxn(tx, op, id)
		if err != nil {
			return artmesh.Version{}, err
		}
		if n == 0 {
			n = row.Version
		}
		v, err := versionTxn(tx, op, row, n)
		if err != nil {
			return artmesh.Version{}, err
		}
		return v.version(), nil
	})
}

// access returns who may read artifact id.
func (s *store) access(id artmesh.ArtifactID) (artmesh.Access, error) {
	return read(s, func(tx *Txn) (artmesh.Access, error) {
		row, err := artifactTxn(tx, "catalog.Access", id)
		if err != nil {
			return artmesh.Access{}, err
		}
		return row.access(), nil
	})
}

// canRead reports whether agent owns artifact id, is a grantee of it or
// is a member of a group it is shared with.
func (s *store) canRead(agent artmesh.AgentID, id artmesh.ArtifactID) bool {
	ok, _ := read(s, func(tx *Txn) (bool, error) {
		raw, err := tx.First(tableArtifacts, indexID, id)
		if err != nil || raw == nil {
			return false, err
		}
		row := raw.(*artifactRow)
		if row.Owner == agent {
			return true, nil
		}
		if _, ok := slices.BinarySearch(row.GrantAgents, agent); ok {
			return true, nil
		}
		for _, name := range row.GrantGroups {
			raw, err := tx.First(tableGroups, indexID, name)
			if err != nil {
				return false, err
			}
			if raw == nil {
				continue
			}
			if _, ok := slices.BinarySearch(raw.(*groupRow).Members, agent); ok {
				return true, nil
			}
		}
		return false, nil
	})
	return ok
}

// list returns a page of owner's artifacts that pass f, newest first. It
// walks one index (the owner's, or that of the filter's most selective
// condition), checks every condition on each row, and stops at the first
// match past the page: a page costs its matches, not the catalog's size.
func (s *store) list(owner artmesh.AgentID, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	return read(s, func(tx *Txn) (artmesh.Page[artmesh.Artifact], error) {
		const op = artmesh.Op("catalog.List")
		fail := func(err error) (artmesh.Page[artmesh.Artifact], error) {
			return artmesh.Page[artmesh.Artifact]{}, internal(op, err)
		}
		after, err := cursorAfter(op, f)
		if err != nil {
			return artmesh.Page[artmesh.Artifact]{}, err
		}
		p := newPager(f)
		m := newMatcher(f)
		idx, args, err := ownerPlanTxn(tx, owner, f)
		if err != nil {
			return fail(err)
		}
		rows, err := rangeTxn(tx, idx, args, after)
		if err != nil {
			return fail(err)
		}
		for !p.done() {
			row, err := rows.next()
			if err != nil {
				return fail(err)
			}
			if row == nil {
				break
			}
			if m.match(row) {
				p.add(row)
			}
		}
		if m.none() {
			// Every artifact matches and their number is kept.
			n, err := ownedTxn(tx, owner)
			if err != nil {
				return fail(err)
			}
			p.page.Total = &n
		}
		return p.finish(), nil
	})
}

// listShared returns a page of the artifacts shared with agent, directly
// or through a group it is a member of, that pass f and that agent does
// not own; newest first. It has no Total.
func (s *store) listShared(agent artmesh.AgentID, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	return read(s, func(tx *Txn) (artmesh.Page[artmesh.Artifact], error) {
		const op = artmesh.Op("catalog.ListShared")
		fail := func(err error) (artmesh.Page[artmesh.Artifact], error) {
			return artmesh.Page[artmesh.Artifact]{}, internal(op, err)
		}
		after, err := cursorAfter(op, f)
		if err != nil {
			return artmesh.Page[artmesh.Artifact]{}, err
		}
		// Every source lists its artifacts newest first; merge them.
		var heads []*mergeHead
		addHead := func(index string, arg any) error {
			rows, err := rangeTxn(tx, index, []any{arg}, after)
			if err != nil {
				return err
			}
			h := &mergeHead{rows: rows}
			if err := h.advance(); err != nil {
				return err
			}
			heads = append(heads, h)
			return nil
		}
		if err := addHead(indexGrantAgent, agent); err != nil {
			return fail(err)
		}
		groups, err := tx.Get(tableGroups, indexMembers, agent)
		if err != nil {
			return fail(err)
		}
		for raw := groups.Next(); raw != nil; raw = groups.Next() {
			if err := addHead(indexGrantGroup, raw.(*groupRow).Name); err != nil {
				return fail(err)
			}
		}
		m := newMatcher(f)
		p := newPager(f)
		var last artmesh.ArtifactID
		for !p.done() {
			var top *mergeHead
			for _, h := range heads {
				if h.cur != nil && (top == nil || h.cur.ID > top.cur.ID) {
					top = h
				}
			}
			if top == nil {
				break
			}
			row := top.cur
			if err := top.advance(); err != nil {
				return fail(err)
			}
			if row.ID == last {
				continue // shared both directly and through a group, or through two groups
			}
			last = row.ID
			if row.Owner != agent && m.match(row) {
				p.add(row)
			}
		}
		return p.finish(), nil
	})
}

// cursorAfter returns the artifact f's cursor continues after, if any.
func cursorAfter(op artmesh.Op, f artmesh.Filter) (artmesh.ArtifactID, error) {
	if f.Cursor == "" {
		return "", nil
	}
	id, err := artmesh.DecodeCursor(f.Cursor)
	if err != nil {
		return "", artmesh.E(op, err)
	}
	return id, nil
}

// agentByKeyHash returns the agent that has the API key hash.
func (s *store) agentByKeyHash(hash string) (artmesh.Agent, error) {
	return read(s, func(tx *Txn) (artmesh.Agent, error) {
		const op = artmesh.Op("catalog.AgentByKeyHash")
		raw, err := tx.First(tableAgents, indexKeyHash, hash)
		if err != nil {
			return artmesh.Agent{}, internal(op, err)
		}
		if raw == nil {
			return artmesh.Agent{}, errorf(op, artmesh.NotFound, "no agent has this API key")
		}
		return agentFromRowTxn(tx, op, raw.(*agentRow))
	})
}

// agent returns the agent id.
func (s *store) agent(id artmesh.AgentID) (artmesh.Agent, error) {
	return read(s, func(tx *Txn) (artmesh.Agent, error) {
		const op = artmesh.Op("catalog.Agent")
		row, err := agentTxn(tx, op, id)
		if err != nil {
			return artmesh.Agent{}, err
		}
		return agentFromRowTxn(tx, op, row)
	})
}

// agents returns every agent, by id.
func (s *store) agents() ([]artmesh.Agent, error) {
	return read(s, func(tx *Txn) ([]artmesh.Agent, error) {
		const op = artmesh.Op("catalog.Agents")
		groups, err := collect[*groupRow](tx.Get(tableGroups, indexID))
		if err != nil {
			return nil, internal(op, err)
		}
		memberOf := make(map[artmesh.AgentID][]string)
		for _, g := range groups { // by name, so each list comes out sorted
			for _, m := range g.Members {
				memberOf[m] = append(memberOf[m], g.Name)
			}
		}
		rows, err := collect[*agentRow](tx.Get(tableAgents, indexID))
		if err != nil {
			return nil, internal(op, err)
		}
		out := make([]artmesh.Agent, len(rows))
		for i, r := range rows {
			out[i] = r.agent(memberOf[r.ID])
		}
		return out, nil
	})
}

// group returns the group name.
func (s *store) group(name string) (artmesh.Group, error) {
	return read(s, func(tx *Txn) (artmesh.Group, error) {
		row, err := groupTxn(tx, "catalog.Group", name)
		if err != nil {
			return artmesh.Group{}, err
		}
		return row.group(), nil
	})
}

// groups returns every group, by name.
func (s *store) groups() ([]artmesh.Group, error) {
	return read(s, func(tx *Txn) ([]artmesh.Group, error) {
		rows, err := collect[*groupRow](tx.Get(tableGroups, indexID))
		if err != nil {
			return nil, internal("catalog.Groups", err)
		}
		out := make([]artmesh.Group, len(rows))
		for i, r := range rows {
			out[i] = r.group()
		}
		return out, nil
	})
}

// liveCIDs returns every CID that a version of an artifact or a received,
// unconfirmed upload references, sorted and without duplicates.
func (s *store) liveCIDs() ([]string, error) {
	return read(s, func(tx *Txn) ([]string, error) {
		it, err := tx.Get(tableVersions, indexID)
		if err != nil {
			return nil, internal("catalog.LiveCIDs", err)
		}
		seen := make(map[string]struct{})
		for raw := it.Next(); raw != nil; raw = it.Next() {
			seen[raw.(*versionRow).CID] = struct{}{}
		}
		uit, err := tx.Get(tableUploads, indexID)
		if err != nil {
			return nil, internal("catalog.LiveCIDs", err)
		}
		for raw := uit.Next(); raw != nil; raw = uit.Next() {
			if u := raw.(*Upload); u.State == StateReceived {
				seen[u.CID] = struct{}{}
			}
		}
		return slices.Sorted(maps.Keys(seen)), nil
	})
}

// ----- txn helpers -----

// artifactTxn returns the row of artifact id, or a NotFound error.
func artifactTxn(tx *Txn, op artmesh.Op, id artmesh.ArtifactID) (*artifactRow, error) {
	raw, err := tx.First(tableArtifacts, indexID, id)
	if err != nil {
		return nil, internal(op, err)
	}
	if raw == nil {
		return nil, errorf(op, artmesh.NotFound, "artifact %s not found", id)
	}
	return raw.(*artifactRow), nil
}

// versionTxn returns version n of the artifact, or a NotFound error.
func versionTxn(tx *Txn, op artmesh.Op, row *artifactRow, n int) (*versionRow, error) {
	if n < 1 {
		return nil, errorf(op, artmesh.NotFound, "artifact %s has no version %d", row.ID, n)
	}
	raw, err := tx.First(tableVersions, indexID, row.ID, n)
	if err != nil {
		return nil, internal(op, err)
	}
	if raw == nil {
		return nil, errorf(op, artmesh.NotFound, "artifact %s has no version %d", row.ID, n)
	}
	return raw.(*versionRow), nil
}

// agentTxn returns the row of agent id, or a NotFound error.
func agentTxn(tx *Txn, op artmesh.Op, id artmesh.AgentID) (*agentRow, error) {
	raw, err := tx.First(tableAgents, indexID, id)
	if err != nil {
		return nil, internal(op, err)
	}
	if raw == nil {
		return nil, errorf(op, artmesh.NotFound, "agent %s not found", id)
	}
	return raw.(*agentRow), nil
}

// groupTxn returns the row of group name, or a NotFound error.
func groupTxn(tx *Txn, op artmesh.Op, name string) (*groupRow, error) {
	raw, err := tx.First(tableGroups, indexID, name)
	if err != nil {
		return nil, internal(op, err)
	}
	if raw == nil {
		return nil, errorf(op, artmesh.NotFound, "group %s not found", name)
	}
	return raw.(*groupRow), nil
}

// agentFromRowTxn returns the agent of row, with its groups from the
// groups table.
func agentFromRowTxn(tx *Txn, op artmesh.Op, row *agentRow) (artmesh.Agent, error) {
	groups, err := collect[*groupRow](tx.Get(tableGroups, indexMembers, row.ID))
	if err != nil {
		return artmesh.Agent{}, internal(op, err)
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name // the index is ordered by group name
	}
	return row.agent(names), nil
}

// collect returns the rows of an iterator.
func collect[T any](it ResultIterator, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	var out []T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(T))
	}
	return out, nil
}

// ----- listing -----

// probeCap bounds how many index entries the planner counts to compare
// the candidate indexes of a listing.
const probeCap = 1024

// matcher checks all of a Filter's conditions on a row, the one of the
// index being walked too: index keys join their parts with 0 bytes, so a
// key or value that has one can land a row under another's prefix.
type matcher struct {
	f artmesh.Filter
}

func newMatcher(f artmesh.Filter) matcher {
	return matcher{f: f}
}

// none reports whether the filter has no condition: every row matches.
func (m *matcher) none() bool {
	return m.f.Name == "" && m.f.ContentType == "" && len(m.f.Meta) == 0
}

func (m *matcher) match(r *artifactRow) bool {
	if m.f.Name != "" && r.Name != m.f.Name {
		return false
	}
	if m.f.ContentType != "" && r.ContentType != m.f.ContentType {
		return false
	}
	for _, mm := range m.f.Meta {
		if !mm.Matches(r.Metadata) {
			return false
		}
	}
	return true
}

// candidate is an index that can serve a listing of one owner.
type candidate struct {
	index string
	args  []any
}

// ownerPlanTxn picks the index to list owner's artifacts that pass f
// with, among those the filter's conditions allow: the one with the
// fewest entries, each counted up to probeCap, so that the choice costs at
// most probeCap entries per condition; of those that have probeCap or
// more, the sparsest, whose probeCap-th entry is the oldest (ids sort by
// creation time, so its entries spread over the longest time). Ties go to
// name, then metadata, then content type. Without conditions, the owner
// index. It returns the index and its arguments.
func ownerPlanTxn(tx *Txn, owner artmesh.AgentID, f artmesh.Filter) (string, []any, error) {
	var cands []candidate
	if f.Name != "" {
		cands = append(cands, candidate{indexOwnerName, []any{owner, f.Name}})
	}
	for _, mm := range f.Meta {
		cands = append(cands, candidate{indexOwnerMeta, []any{owner, mm.Key, mm.Value}})
	}
	if f.ContentType != "" {
		cands = append(cands, candidate{indexOwnerType, []any{owner, f.ContentType}})
	}
	if len(cands) == 0 {
		return indexOwner, []any{owner}, nil
	}
	best, bestCount, bestReach := 0, probeCap+1, artmesh.ArtifactID("")
	if len(cands) > 1 {
		for i, c := range cands {
			it, err := tx.Get(tableArtifacts, c.index, c.args...)
			if err != nil {
				return "", nil, err
			}
			n, reach := 0, artmesh.ArtifactID("")
			for n < min(bestCount, probeCap) {
				raw := it.Next()
				if raw == nil {
					break
				}
				n, reach = n+1, raw.(*artifactRow).ID
			}
			switch {
			case n < probeCap && n < bestCount: // all its entries, fewer than any other's
				best, bestCount = i, n
			case n == probeCap && bestCount > probeCap: // the first with probeCap
				best, bestCount, bestReach = i, n, reach
			case n == probeCap && bestCount == probeCap && reach < bestReach: // sparser
				best, bestReach = i, reach
			}
		}
	}
	return cands[best].index, cands[best].args, nil
}

// pager collects one page of a listing: it skips Offset matches, keeps
// Limit, and notes whether one more follows.
type pager struct {
	page artmesh.Page[artmesh.Artifact]
	skip int  // matches still to skip
	more bool // a match follows the page
}

func newPager(f artmesh.Filter) *pager {
	limit := f.Limit
	if limit <= 0 {
		limit = artmesh.DefaultListLimit
	}
	limit = min(limit, artmesh.MaxListLimit)
	offset := max(f.Offset, 0)
	return &pager{skip: offset, page: artmesh.Page[artmesh.Artifact]{
		Items:  make([]artmesh.Artifact, 0, min(limit, 64)),
		Limit:  limit,
		Offset: offset,
	}}
}

// done reports whether the listing can stop: the page is full and a match
// follows it.
func (p *pager) done() bool {
	return p.more
}

// add takes a matching row: skipped, kept, or noted as following the page.
func (p *pager) add(r *artifactRow) {
	switch {
	case p.skip > 0:
		p.skip--
	case len(p.page.Items) < p.page.Limit:
		p.page.Items = append(p.page.Items, r.artifact())
	default:
		p.more = true
	}
}

// finish returns the page, with the cursor of the next one if a match
// follows it.
func (p *pager) finish() artmesh.Page[artmesh.Artifact] {
	if p.more {
		p.page.NextCursor = artmesh.EncodeCursor(p.page.Items[len(p.page.Items)-1].ID)
	}
	return p.page
}

// mergeHead is one source of a merged listing and its current row.
type mergeHead struct {
	rows *rangeIter
	cur  *artifactRow
}

func (h *mergeHead) advance() error {
	row, err := h.rows.next()
	h.cur = row
	return err
}

// ----- row conversions -----

// artifact returns the artifact of r, sharing nothing mutable with it.
func (r *artifactRow) artifact() artmesh.Artifact {
	a := r.Artifact
	a.Metadata = cloneMetadata(r.Metadata)
	return a
}

// access returns the grants of r.
func (r *artifactRow) access() artmesh.Access {
	return artmesh.Access{Owner: r.Owner, Agents: cloneSlice(r.GrantAgents), Groups: cloneSlice(r.GrantGroups)}
}

// setCurrent makes v the current version of r.
func (r *artifactRow) setCurrent(v *versionRow) {
	r.Version = v.Version.Version
	r.CID = v.CID
	r.SizeBytes = v.SizeBytes
	r.ContentType = v.ContentType
	r.Metadata = v.Metadata
	r.UpdatedAt = v.CreatedAt
	r.SHA256 = v.SHA256
}

// version returns the version of r, sharing nothing mutable with it.
func (r *versionRow) version() artmesh.Version {
	v := r.Version
	v.Metadata = cloneMetadata(r.Metadata)
	return v
}

// agent returns the agent of r with the given groups.
func (r *agentRow) agent(groups []string) artmesh.Agent {
	return artmesh.Agent{ID: r.ID, Groups: cloneSlice(groups), Admin: r.Admin, Node: r.Node, CreatedAt: r.CreatedAt}
}

// group returns the group of r.
func (r *groupRow) group() artmesh.Group {
	return artmesh.Group{Name: r.Name, Members: cloneSlice(r.Members)}
}

// cloneMetadata returns a copy of m, never nil. The values are shared:
// they are immutable JSON texts.
func cloneMetadata(m artmesh.Metadata) artmesh.Metadata {
	out := make(artmesh.Metadata, len(m))
	maps.Copy(out, m)
	return out
}

// cloneSlice returns a copy of s, never nil, so that it encodes as [].
func cloneSlice[S ~[]E, E any](s S) S {
	out := make(S, len(s))
	copy(out, s)
	return out
}

// cloneOrNil copies s, keeping an empty s nil (as a restored row has it).
func cloneOrNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return cloneSlice(s)
}

// union returns the sorted set of the elements of a and b.
func union[E cmp.Ordered](a, b []E) []E {
	out := make([]E, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// without returns a copy of the sorted set s without the elements drop.
func without[E comparable](s []E, drop ...E) []E {
	out := make([]E, 0, len(s))
	for _, e := range s {
		if !slices.Contains(drop, e) {
			out = append(out, e)
		}
	}
	return out
}
