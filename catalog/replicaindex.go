package catalog

import (
	"fmt"
	"slices"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
)

// The replica index: what the reconcilers and /metrics need of placement,
// kept at apply time so that nothing has to walk every version.
//
// Three derived tables (like owned and usage: written by the state machine
// in the transaction of the batch that changed their inputs, rebuilt by
// Restore, never in snapshots):
//
//   - replicas: one row per root CID that a live version references, with
//     its size, what its factor is made of, its holders and allocation;
//     the same thing Replicas computes by walking the versions. Indexed by
//     its level and, when it has neither holder nor allocation (content
//     from before placement), as such. By member, the placement table's
//     index finds the roots (one index by member is enough: each costs
//     some 200 bytes per root; the derived tables cost about 1 KB per
//     root in all).
//   - replica_peers: per member, how many roots it holds, their bytes, how
//     many are allocated to it, and the bytes it holds or is allocated.
//   - replica_levels: how many roots sit at each level (own factor,
//     whether one of its artifacts follows the mesh policy, copies), for
//     the mesh (peer "") and for each member of their allocation.
//
// Copies are the holders that are also in the allocation (an allocation
// not recorded yet is its holders). A factor is not stored resolved: a
// change of the mesh policy or of the number of members would rewrite
// every row. It is resolved when read, from the level's own factor and
// policy flag, so the under-replicated count is a sum over a few dozen
// level rows at any catalog size.
//
// After every batch, applyOpen refreshes the rows of the CIDs whose
// versions or placement the batch changed, and of the versions of the
// artifacts whose own factor it changed (refreshReplicasTxn). A version
// added costs a few lookups; a version deleted or a factor changed reads
// the versions that share that CID. Reads page with LowerBound from a
// cursor, so that a reconciler resumes where it stopped.

const (
	tableReplicas      = "replicas"
	tableReplicaPeers  = "replica_peers"
	tableReplicaLevels = "replica_levels"

	indexReplicaUnplaced = "unplaced" // CID, of the rows with neither holder nor allocation
	indexReplicaLevel    = "level"    // own factor, policy flag, copies, CID
)

// replicaRow is a row of the derived replicas table.
type replicaRow struct {
	CID       string `json:"cid"`
	SizeBytes int64  `json:"size_bytes"`
	// Own is the highest own factor of the artifacts whose versions
	// reference the CID (0: none has one).
	Own int `json:"own,omitempty"`
	// Policy: one of those artifacts follows the mesh policy.
	Policy    bool     `json:"policy,omitempty"`
	Holders   []string `json:"holders,omitempty"`   // sorted
	Allocated []string `json:"allocated,omitempty"` // sorted
}

// replicaPeerRow is a row of the derived replica_peers table.
type replicaPeerRow struct {
	Peer        string `json:"peer"`
	Held        int    `json:"held"`
	HeldBytes   int64  `json:"held_bytes"`
	Allocated   int    `json:"allocated"`
	PlacedBytes int64  `json:"placed_bytes"` // held or allocated
}

// replicaLevelRow is a row of the derived replica_levels table.
type replicaLevelRow struct {
	Peer     string `json:"peer"` // "": the whole mesh
	Own      int    `json:"own"`
	Policy   bool   `json:"policy"`
	Copies   int    `json:"copies"`
	Versions int    `json:"versions"` // roots at that level
}

// effectiveAlloc is the allocation of r: its holders while none is
// recorded.
func (r *replicaRow) effectiveAlloc() []string {
	if len(r.Allocated) == 0 {
		return r.Holders
	}
	return r.Allocated
}

// copies returns how many members of the allocation hold r.
func (r *replicaRow) copies() int {
	n := 0
	for _, p := range r.effectiveAlloc() {
		if slices.Contains(r.Holders, p) {
			n++
		}
	}
	return n
}

// factor resolves the factor asked for under the mesh policy's.
func factorOf(own int, policy bool, pol Policy) int {
	if policy {
		return max(own, pol.ReplicationFactor)
	}
	return own
}

// effectiveFactor is the factor that can be had with members members
// (placement.Effective, which the catalog cannot import).
func effectiveFactor(factor, members int) int {
	return max(1, min(factor, members))
}

func policyPart(p bool) string {
	if p {
		return "p"
	}
	return "o"
}

func levelKey(b []byte, own int, policy bool, copies int) []byte {
	return appendPart(appendPart(appendPart(b, fmt.Sprintf("%02d", own)), policyPart(policy)), fmt.Sprintf("%02d", copies))
}

func replicaIndexTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableReplicas: {
			Name: tableReplicas,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*replicaRow]{
					nargs: 1,
					key:   func(b []byte, r *replicaRow) []byte { return appendPart(b, r.CID) },
				}},
				// Only the roots with neither holder nor allocation: the
				// others are found by member in the placement table.
				indexReplicaUnplaced: {Name: indexReplicaUnplaced, Unique: true, AllowMissing: true, Indexer: multiIndex[*replicaRow]{
					nargs: 1,
					keys: func(r *replicaRow) [][]byte {
						if len(r.Holders) > 0 || len(r.Allocated) > 0 {
							return nil
						}
						return [][]byte{appendPart(nil, r.CID)}
					},
				}},
				indexReplicaLevel: {Name: indexReplicaLevel, Unique: true, Indexer: singleIndex[*replicaRow]{
					nargs: 4,
					key: func(b []byte, r *replicaRow) []byte {
						return appendPart(levelKey(b, r.Own, r.Policy, r.copies()), r.CID)
					},
				}},
			},
		},
		tableReplicaPeers: {
			Name: tableReplicaPeers,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*replicaPeerRow]{
					nargs: 1,
					key:   func(b []byte, r *replicaPeerRow) []byte { return appendPart(b, r.Peer) },
				}},
			},
		},
		tableReplicaLevels: {
			Name: tableReplicaLevels,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*replicaLevelRow]{
					nargs: 4,
					key: func(b []byte, r *replicaLevelRow) []byte {
						return levelKey(appendPart(b, r.Peer), r.Own, r.Policy, r.Copies)
					},
				}},
			},
		},
	}
}

// computeReplicaTxn returns the replicas row of cid as the versions and
// placement say now; nil when no live version references it.
func computeReplicaTxn(tx *Txn, cid string) (*replicaRow, error) {
	it, err := tx.Get(tableVersions, indexVersionCID, cid)
	if err != nil {
		return nil, err
	}
	var r *replicaRow
	var last artmesh.ArtifactID
	for raw := it.Next(); raw != nil; raw = it.Next() {
		v := raw.(*versionRow)
		if r == nil {
			r = &replicaRow{CID: cid, SizeBytes: v.SizeBytes}
		}
		if v.ArtifactID == last {
			continue // versions of one artifact are in a row
		}
		last = v.ArtifactID
		own := 0
		if a, err := tx.First(tableArtifacts, indexID, string(v.ArtifactID)); err != nil {
			return nil, err
		} else if a != nil {
			own = a.(*artifactRow).Replication
		}
		if own == 0 {
			r.Policy = true
		}
		r.Own = max(r.Own, own)
	}
	if r == nil {
		return nil, nil
	}
	p, err := tx.First(tablePlacement, indexID, cid)
	if err != nil {
		return nil, err
	}
	if p != nil {
		r.Holders = cloneOrNil(p.(*Placement).Holders)
		r.Allocated = cloneOrNil(p.(*Placement).Allocated)
	}
	return r, nil
}

func sameReplica(a, b *replicaRow) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.CID == b.CID && a.SizeBytes == b.SizeBytes && a.Own == b.Own && a.Policy == b.Policy &&
		slices.Equal(a.Holders, b.Holders) && slices.Equal(a.Allocated, b.Allocated)
}

// refreshReplicaTxn brings the derived rows of cid up to date. Unless
// full, the only versions of cid that changed are added, which the row
// takes in without reading the other versions that share the CID (the
// empty file's, say, can have many): only a deleted version or a changed
// factor makes it read them all.
func refreshReplicaTxn(tx *Txn, cid string, added []*versionRow, full bool) error {
	raw, err := tx.First(tableReplicas, indexID, cid)
	if err != nil {
		return err
	}
	var old, next *replicaRow
	if raw != nil {
		old = raw.(*replicaRow)
	}
	if old != nil && !full {
		next = &replicaRow{CID: cid, SizeBytes: old.SizeBytes, Own: old.Own, Policy: old.Policy}
		for _, v := range added {
			own := 0
			if a, err := tx.First(tableArtifacts, indexID, string(v.ArtifactID)); err != nil {
				return err
			} else if a != nil {
				own = a.(*artifactRow).Replication
			}
			next.Own, next.Policy = max(next.Own, own), next.Policy || own == 0
		}
		p, err := tx.First(tablePlacement, indexID, cid)
		if err != nil {
			return err
		}
		if p != nil {
			next.Holders = cloneOrNil(p.(*Placement).Holders)
			next.Allocated = cloneOrNil(p.(*Placement).Allocated)
		}
	} else if next, err = computeReplicaTxn(tx, cid); err != nil {
		return err
	}
	if sameReplica(old, next) {
		return nil
	}
	if old != nil {
		if err := tallyReplicaTxn(tx, old, -1); err != nil {
			return err
		}
		if next == nil {
			return tx.Delete(tableReplicas, old)
		}
	}
	if err := tallyReplicaTxn(tx, next, 1); err != nil {
		return err
	}
	return tx.Insert(tableReplicas, next)
}

// tallyReplicaTxn adds (sign 1) or takes away (sign -1) what r counts in
// replica_peers and replica_levels.
func tallyReplicaTxn(tx *Txn, r *replicaRow, sign int) error {
	for _, p := range union(r.Holders, r.Allocated) {
		raw, err := tx.First(tableReplicaPeers, indexID, p)
		if err != nil {
			return err
		}
		row := &replicaPeerRow{Peer: p}
		if raw != nil {
			*row = *raw.(*replicaPeerRow)
		}
		if slices.Contains(r.Holders, p) {
			row.Held += sign
			row.HeldBytes += int64(sign) * r.SizeBytes
		}
		if slices.Contains(r.Allocated, p) {
			row.Allocated += sign
		}
		row.PlacedBytes += int64(sign) * r.SizeBytes
		if err := putCounterTxn(tx, tableReplicaPeers, raw, row, row.Held == 0 && row.Allocated == 0 && row.HeldBytes == 0 && row.PlacedBytes == 0); err != nil {
			return err
		}
	}
	copies := r.copies()
	for _, p := range append([]string{""}, r.effectiveAlloc()...) {
		raw, err := tx.First(tableReplicaLevels, indexID, p, fmt.Sprintf("%02d", r.Own), policyPart(r.Policy), fmt.Sprintf("%02d", copies))
		if err != nil {
			return err
		}
		row := &replicaLevelRow{Peer: p, Own: r.Own, Policy: r.Policy, Copies: copies}
		if raw != nil {
			*row = *raw.(*replicaLevelRow)
		}
		row.Versions += sign
		if err := putCounterTxn(tx, tableReplicaLevels, raw, row, row.Versions == 0); err != nil {
			return err
		}
	}
	return nil
}

// putCounterTxn writes a counter row, or deletes it when it is back to
// zero.
func putCounterTxn(tx *Txn, table string, old, row any, zero bool) error {
	if zero {
		if old == nil {
			return nil
		}
		return tx.Delete(table, old)
	}
	return tx.Insert(table, row)
}

// refreshReplicasTxn refreshes the derived replica rows after the changes
// of a transaction (see the top of this file) and returns the CIDs of the
// versions of artifacts whose own factor changed, which the watch reports
// besides those of the changed rows.
func refreshReplicasTxn(tx *Txn, changes []Change) ([]string, error) {
	var cids, factored cidSet
	cids.addChanges(changes)
	added := make(map[string][]*versionRow)
	full := make(map[string]bool)
	for _, ch := range changes {
		switch before := ch.Before.(type) {
		case *versionRow:
			full[before.CID] = true // a version deleted (or rewritten)
			if after, ok := ch.After.(*versionRow); ok {
				full[after.CID] = true
			}
		case nil:
			if v, ok := ch.After.(*versionRow); ok {
				added[v.CID] = append(added[v.CID], v)
			}
		case *artifactRow:
			after, ok := ch.After.(*artifactRow)
			if !ok || before.Replication == after.Replication {
				continue
			}
			it, err := tx.Get(tableVersions, indexID, string(after.ID))
			if err != nil {
				return nil, err
			}
			for raw := it.Next(); raw != nil; raw = it.Next() {
				c := raw.(*versionRow).CID
				factored.add(c)
				cids.add(c)
				full[c] = true
			}
		}
	}
	list := cids.list()
	slices.Sort(list) // the same order on every replica
	for _, c := range list {
		if err := refreshReplicaTxn(tx, c, added[c], full[c]); err != nil {
			return nil, fmt.Errorf("refresh the replica of %s: %w", c, err)
		}
	}
	return factored.list(), nil
}

// deriveReplicasTxn builds the derived replica tables from the versions
// and placement (Restore).
func deriveReplicasTxn(tx *Txn) error {
	it, err := tx.Get(tableVersions, indexVersionCID)
	if err != nil {
		return err
	}
	var cids []string
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if c := raw.(*versionRow).CID; len(cids) == 0 || cids[len(cids)-1] != c {
			cids = append(cids, c)
		}
	}
	for _, c := range cids {
		if err := refreshReplicaTxn(tx, c, nil, true); err != nil {
			return fmt.Errorf("derive the replica of %s: %w", c, err)
		}
	}
	return nil
}

func (c *cidSet) add(cid string) {
	if *c == nil {
		*c = make(cidSet)
	}
	(*c)[cid] = struct{}{}
}

// ----- reads -----

// replicaOf turns a derived row into a Replica under the mesh policy.
func replicaOf(r *replicaRow, pol Policy) Replica {
	return Replica{CID: r.CID, SizeBytes: r.SizeBytes, Factor: factorOf(r.Own, r.Policy, pol),
		Holders: cloneSlice(r.Holders), Allocated: cloneOrNil(r.Allocated)}
}

// ReplicaPage returns up to limit replicas (see Replicas) whose CIDs sort
// after after ("": from the first), in CID order, from the replica index:
// a page of a sweep that resumes where the last one stopped. Fewer than
// limit means the end was reached.
func (c *Catalog) ReplicaPage(after string, limit int) ([]Replica, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]Replica, error) {
		const op = artmesh.Op("catalog.ReplicaPage")
		pol, err := policyTxn(tx)
		if err != nil {
			return nil, err
		}
		it, err := tx.LowerBound(tableReplicas, indexID, after)
		if err != nil {
			return nil, internal(op, err)
		}
		var out []Replica
		for raw := it.Next(); raw != nil && len(out) < limit; raw = it.Next() {
			if r := raw.(*replicaRow); r.CID != after {
				out = append(out, replicaOf(r, pol))
			}
		}
		return out, nil
	})
}

// ReplicasOn returns up to limit replicas that member peer holds or is
// allocated (peer "": those with neither holder nor allocation, content
// from before placement), whose CIDs sort after after, in CID order, from
// the placement table's index by member (or the replica index's of the
// unplaced). Fewer than limit means the end was reached.
func (c *Catalog) ReplicasOn(peer, after string, limit int) ([]Replica, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]Replica, error) {
		const op = artmesh.Op("catalog.ReplicasOn")
		pol, err := policyTxn(tx)
		if err != nil {
			return nil, err
		}
		var out []Replica
		if peer == "" {
			it, err := tx.LowerBound(tableReplicas, indexReplicaUnplaced, after)
			if err != nil {
				return nil, internal(op, err)
			}
			for raw := it.Next(); raw != nil && len(out) < limit; raw = it.Next() {
				if r := raw.(*replicaRow); r.CID != after && len(r.Holders) == 0 && len(r.Allocated) == 0 {
					out = append(out, replicaOf(r, pol))
				}
			}
			return out, nil
		}
		it, err := tx.LowerBound(tablePlacement, indexPlacementPeer, peer, after)
		if err != nil {
			return nil, internal(op, err)
		}
		last := after
		for raw := it.Next(); raw != nil && len(out) < limit; raw = it.Next() {
			p := raw.(*Placement)
			if p.CID == after && len(out) == 0 {
				continue
			}
			// Past the last key of peer, the index goes on with the next
			// member's: a row there that names peer too came earlier, so
			// its CID is not above the last one listed.
			if !(slices.Contains(p.Holders, peer) || slices.Contains(p.Allocated, peer)) || p.CID <= last {
				break
			}
			last = p.CID
			r, err := tx.First(tableReplicas, indexID, p.CID)
			if err != nil {
				return nil, internal(op, err)
			}
			if r != nil { // else the content of a received upload only
				out = append(out, replicaOf(r.(*replicaRow), pol))
			}
		}
		return out, nil
	})
}

// levelCursor is a position in the replicas by level: the level's own
// factor, policy flag and copies, then the last CID listed.
func levelCursor(own int, policy bool, copies int, cid string) string {
	return fmt.Sprintf("%02d%s%02d%s", own, policyPart(policy), copies, cid)
}

// UnderReplicated returns up to limit replicas with fewer copies (holders
// that are in the allocation) than their factor, at most members, allows,
// after the cursor after ("": from the start); and the cursor of the next
// page, "" once there is none. It reads only the levels that are short,
// from the replica index: the allocator's way to find, after a change of
// the policy or of the members, the versions that need it.
func (c *Catalog) UnderReplicated(members int, after string, limit int) ([]Replica, string, error) {
	type page struct {
		rs   []Replica
		next string
	}
	p, err := read(c.fsm.state(), func(tx *Txn) (page, error) {
		const op = artmesh.Op("catalog.UnderReplicated")
		pol, err := policyTxn(tx)
		if err != nil {
			return page{}, err
		}
		levels, err := tx.Get(tableReplicaLevels, indexID, "")
		if err != nil {
			return page{}, internal(op, err)
		}
		var short []*replicaLevelRow
		for raw := levels.Next(); raw != nil; raw = levels.Next() {
			l := raw.(*replicaLevelRow)
			if l.Peer == "" && l.Copies < effectiveFactor(factorOf(l.Own, l.Policy, pol), members) {
				short = append(short, l)
			}
		}
		var out page
		var lastAt string // the cursor of the last replica listed
		for _, l := range short {
			at := levelCursor(l.Own, l.Policy, l.Copies, "")
			if len(after) >= len(at) && after[:len(at)] > at {
				continue // done before the cursor
			}
			own, pp, cp := fmt.Sprintf("%02d", l.Own), policyPart(l.Policy), fmt.Sprintf("%02d", l.Copies)
			from := ""
			if len(after) >= len(at) && after[:len(at)] == at {
				from = after[len(at):]
			}
			it, err := tx.LowerBound(tableReplicas, indexReplicaLevel, own, pp, cp, from)
			if err != nil {
				return page{}, internal(op, err)
			}
			for raw := it.Next(); raw != nil; raw = it.Next() {
				r := raw.(*replicaRow)
				if r.Own != l.Own || r.Policy != l.Policy || r.copies() != l.Copies {
					break // the next level
				}
				if from != "" && r.CID <= from {
					continue
				}
				if len(out.rs) == limit {
					out.next = lastAt
					return out, nil
				}
				out.rs = append(out.rs, replicaOf(r, pol))
				lastAt = levelCursor(l.Own, l.Policy, l.Copies, r.CID)
			}
		}
		return out, nil
	})
	return p.rs, p.next, err
}

// PeerReplicas is what the replica index counts of one member.
type PeerReplicas struct {
	Held      int   // roots of live versions it is a recorded holder of
	HeldBytes int64 // their bytes
	Allocated int   // roots allocated to it
	// PlacedBytes is the bytes of the roots it holds or is allocated
	// (what the allocator balances).
	PlacedBytes int64
	// UnderReplicated counts the roots in its allocation (its holders'
	// while none is recorded) that are under-replicated.
	UnderReplicated int
}

// ReplicaStats is the replication picture, counted at apply time.
type ReplicaStats struct {
	Versions int // roots referenced by live versions
	// UnderReplicated counts the roots with fewer copies (holders that
	// are in the allocation; its holders while none is recorded) than
	// their factor, at most the number of members. It follows committed
	// state only: a holder that cannot be reached counts until the
	// allocator replaces it (after the dead-holder time).
	UnderReplicated int
	Peers           map[string]PeerReplicas
}

// ReplicaStats returns the counters of the replica index, with the factors
// resolved for members members. Its cost is that of the number of members
// and of levels, never that of the versions.
func (c *Catalog) ReplicaStats(members int) (ReplicaStats, error) {
	return read(c.fsm.state(), func(tx *Txn) (ReplicaStats, error) {
		const op = artmesh.Op("catalog.ReplicaStats")
		pol, err := policyTxn(tx)
		if err != nil {
			return ReplicaStats{}, err
		}
		st := ReplicaStats{Peers: make(map[string]PeerReplicas)}
		it, err := tx.Get(tableReplicaPeers, indexID)
		if err != nil {
			return ReplicaStats{}, internal(op, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			r := raw.(*replicaPeerRow)
			st.Peers[r.Peer] = PeerReplicas{Held: r.Held, HeldBytes: r.HeldBytes, Allocated: r.Allocated, PlacedBytes: r.PlacedBytes}
		}
		if it, err = tx.Get(tableReplicaLevels, indexID); err != nil {
			return ReplicaStats{}, internal(op, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			l := raw.(*replicaLevelRow)
			under := l.Copies < effectiveFactor(factorOf(l.Own, l.Policy, pol), members)
			if l.Peer == "" {
				st.Versions += l.Versions
				if under {
					st.UnderReplicated += l.Versions
				}
				continue
			}
			if under {
				p := st.Peers[l.Peer]
				p.UnderReplicated += l.Versions
				st.Peers[l.Peer] = p
			}
		}
		return st, nil
	})
}
