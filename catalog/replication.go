package catalog

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
)

// Replication: the mesh policy (how many members keep each version), an
// artifact's own factor, the leader's allocations of holders, and pins
// (an operator's allocation of one node). The catalog only records them;
// the node's reconcilers act on them (fetch what is allocated, trim what is
// not, collect what nothing keeps).

const (
	tablePolicy = "policy"
	tablePins   = "pins"

	indexPinArtifact = "artifact" // artifact id, node, version
	indexVersionCID  = "cid"      // versions by CID

	recordPolicy byte = 10
	recordPin    byte = 11

	setPolicyType       commandType = 27
	setReplicationType  commandType = 28
	updatePlacementType commandType = 29
	putPinType          commandType = 30
	deletePinType       commandType = 31

	policyRowID = "mesh"
)

// MaxReplicationFactor caps the replication factor of the policy and of
// an artifact.
const MaxReplicationFactor = 16

// Policy is the mesh's replication policy.
type Policy struct {
	// ReplicationFactor is how many members keep every version (the
	// effective factor never exceeds the number of members).
	ReplicationFactor int `json:"replication_factor"`
	// WriteReplicas is how many members must hold a write's blocks
	// durably before it is acknowledged, unless the write says otherwise.
	WriteReplicas int `json:"write_replicas"`
	// NodeAgentsInvite lets the agent a node got when it joined create
	// invites; off by default, when only mesh admins may.
	NodeAgentsInvite bool `json:"node_agents_invite"`
}

// DefaultPolicy is the policy of a mesh that never set one.
var DefaultPolicy = Policy{ReplicationFactor: 2, WriteReplicas: 1}

// Validate reports whether the policy's numbers are in range.
func (p Policy) Validate() error {
	switch {
	case p.ReplicationFactor < 1 || p.ReplicationFactor > MaxReplicationFactor:
		return artmesh.E(artmesh.Invalid, fmt.Sprintf("replication_factor must be from 1 to %d", MaxReplicationFactor))
	case p.WriteReplicas < 1 || p.WriteReplicas > MaxReplicationFactor:
		return artmesh.E(artmesh.Invalid, fmt.Sprintf("write_replicas must be from 1 to %d", MaxReplicationFactor))
	}
	return nil
}

// policyRow is the one row of the policy table.
type policyRow struct {
	ID string `json:"id"`
	Policy
	// Quota is the mesh defaults of the quotas of agents that are not
	// admins (zero fields: no limit); SetPolicy keeps it.
	Quota artmesh.Quota `json:"quota,omitzero"`
}

// Pin is an operator's allocation of one version to one node: that node
// keeps a full copy while the pin and the version live.
type Pin struct {
	Node       string             `json:"node"` // peer id
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Version    int                `json:"version"`
	CID        string             `json:"cid"`
	SizeBytes  int64              `json:"size_bytes"`
	By         artmesh.AgentID    `json:"by"` // the agent that pinned
	At         time.Time          `json:"at"`
}

// HolderRef names one holder of one root CID.
type HolderRef struct {
	CID  string `json:"cid"`
	Peer string `json:"peer"`
}

// Allocation is the set of members the leader wants to hold a root CID.
type Allocation struct {
	CID   string   `json:"cid"`
	Peers []string `json:"peers"`
}

// PlacementUpdate is one batch of the leader's allocator: allocations to
// set and holder records to drop (of members gone too long). The state
// machine re-checks it: allocations name only members and live CIDs, and
// no holder record is dropped that is the last one of its CID.
type PlacementUpdate struct {
	Allocations []Allocation `json:"allocations,omitempty"`
	DropHolders []HolderRef  `json:"drop_holders,omitempty"`
}

type setPolicyCmd struct {
	Policy Policy `json:"policy"`
}

type setReplicationCmd struct {
	ID     artmesh.ArtifactID `json:"id"`
	Factor int                `json:"factor"` // 0: the mesh policy
}

type putPinCmd struct {
	Pin Pin `json:"pin"`
}

type deletePinCmd struct {
	Node       string             `json:"node"`
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Version    int                `json:"version"` // 0: every version
}

func (setPolicyCmd) commandType() commandType      { return setPolicyType }
func (setReplicationCmd) commandType() commandType { return setReplicationType }
func (PlacementUpdate) commandType() commandType   { return updatePlacementType }
func (putPinCmd) commandType() commandType         { return putPinType }
func (deletePinCmd) commandType() commandType      { return deletePinType }

func pinKey(b []byte, node string, id artmesh.ArtifactID, v int) []byte {
	return appendPart(appendPart(appendPart(b, node), string(id)), fmt.Sprintf("%010d", v))
}

func replicationTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tablePolicy: {
			Name: tablePolicy,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*policyRow]{
					nargs: 1,
					key:   func(b []byte, r *policyRow) []byte { return appendPart(b, r.ID) },
				}},
			},
		},
		tablePins: {
			Name: tablePins,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*Pin]{
					nargs: 3,
					key:   func(b []byte, r *Pin) []byte { return pinKey(b, r.Node, r.ArtifactID, r.Version) },
				}},
				indexPinArtifact: {Name: indexPinArtifact, Unique: true, Indexer: singleIndex[*Pin]{
					nargs: 3,
					key: func(b []byte, r *Pin) []byte {
						return appendPart(appendPart(appendPart(b, string(r.ArtifactID)), fmt.Sprintf("%010d", r.Version)), r.Node)
					},
				}},
			},
		},
	}
}

// versionCIDIndex indexes versions by their CID (then artifact and
// number, to be unique).
func versionCIDIndex() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: indexVersionCID, Unique: true, Indexer: singleIndex[*versionRow]{
		nargs: 1,
		key: func(b []byte, r *versionRow) []byte {
			return appendPart(appendPart(appendPart(b, r.CID), string(r.ArtifactID)), fmt.Sprintf("%010d", r.Version.Version))
		},
	}}
}

func applyReplicationCommand(tx *Txn, t commandType, payload []byte) (any, bool) {
	switch t {
	case setPolicyType:
		c, err := decode[setPolicyCmd](t, payload)
		if err != nil {
			return err, true
		}
		return result(setPolicyTxn(tx, c.Policy)), true
	case setReplicationType:
		return applyDecodedErr(tx, t, payload, setReplicationTxn), true
	case updatePlacementType:
		return applyDecodedErr(tx, t, payload, updatePlacementTxn), true
	case putPinType:
		c, err := decode[putPinCmd](t, payload)
		if err != nil {
			return err, true
		}
		return result(putPinTxn(tx, c.Pin)), true
	case deletePinType:
		return applyDecodedErr(tx, t, payload, deletePinTxn), true
	}
	return nil, false
}

func setPolicyTxn(tx *Txn, p Policy) (Policy, error) {
	const op = artmesh.Op("catalog.SetPolicy")
	if err := p.Validate(); err != nil {
		return Policy{}, artmesh.E(op, err)
	}
	defaults, err := quotaDefaultsTxn(tx)
	if err != nil {
		return Policy{}, internal(op, err)
	}
	if err := tx.Insert(tablePolicy, &policyRow{ID: policyRowID, Policy: p, Quota: defaults}); err != nil {
		return Policy{}, internal(op, err)
	}
	return p, nil
}

func policyTxn(tx *Txn) (Policy, error) {
	raw, err := tx.First(tablePolicy, indexID, policyRowID)
	if err != nil {
		return Policy{}, internal("catalog.Policy", err)
	}
	if raw == nil {
		return DefaultPolicy, nil
	}
	return raw.(*policyRow).Policy, nil
}

func setReplicationTxn(tx *Txn, cmd setReplicationCmd) error {
	const op = artmesh.Op("catalog.SetReplication")
	if cmd.Factor < 0 || cmd.Factor > MaxReplicationFactor {
		return errorf(op, artmesh.Invalid, "factor must be from 1 to %d (0: the mesh policy)", MaxReplicationFactor)
	}
	row, err := artifactTxn(tx, op, cmd.ID)
	if err != nil {
		return err
	}
	next := *row
	next.Replication = cmd.Factor
	if err := tx.Insert(tableArtifacts, &next); err != nil {
		return internal(op, err)
	}
	return nil
}

// cidLiveTxn reports whether a version or a received upload references cid.
func cidLiveTxn(tx *Txn, cid string) (bool, error) {
	vit, err := tx.Get(tableVersions, indexVersionCID, cid)
	if err != nil {
		return false, err
	}
	if vit.Next() != nil {
		return true, nil
	}
	uit, err := tx.Get(tableUploads, indexUploadReceived, cid)
	if err != nil {
		return false, err
	}
	return uit.Next() != nil, nil
}

// forgetContentTxn drops what the catalog knows of the placement of each
// of cids that nothing references any more.
func forgetContentTxn(tx *Txn, op artmesh.Op, cids ...string) error {
	for _, c := range cids {
		live, err := cidLiveTxn(tx, c)
		if err != nil {
			return internal(op, err)
		}
		if live {
			continue
		}
		if _, err := tx.DeleteAll(tablePlacement, indexID, c); err != nil {
			return internal(op, err)
		}
	}
	return nil
}

// dropPinsTxn removes the pins of an artifact's version (every version
// when v is 0), on every node.
func dropPinsTxn(tx *Txn, op artmesh.Op, id artmesh.ArtifactID, v int) error {
	args := []any{string(id)}
	if v > 0 {
		args = append(args, fmt.Sprintf("%010d", v))
	}
	if _, err := tx.DeleteAll(tablePins, indexPinArtifact, args...); err != nil {
		return internal(op, err)
	}
	return nil
}

func updatePlacementTxn(tx *Txn, u PlacementUpdate) error {
	const op = artmesh.Op("catalog.UpdatePlacement")
	for _, a := range u.Allocations {
		live, err := cidLiveTxn(tx, a.CID)
		if err != nil {
			return internal(op, err)
		}
		if !live {
			continue // deleted since the leader looked
		}
		var peers []string
		for _, p := range a.Peers {
			m, err := tx.First(tableMembers, indexID, p)
			if err != nil {
				return internal(op, err)
			}
			if m != nil {
				peers = append(peers, p)
			}
		}
		slices.Sort(peers)
		peers = slices.Compact(peers)
		raw, err := tx.First(tablePlacement, indexID, a.CID)
		if err != nil {
			return internal(op, err)
		}
		p := &Placement{CID: a.CID}
		if raw != nil {
			p.Holders = cloneSlice(raw.(*Placement).Holders)
		}
		p.Allocated = peers
		if len(p.Holders) == 0 && len(p.Allocated) == 0 {
			if raw != nil {
				if err := tx.Delete(tablePlacement, raw); err != nil {
					return internal(op, err)
				}
			}
			continue
		}
		if err := tx.Insert(tablePlacement, p); err != nil {
			return internal(op, err)
		}
	}
	for _, h := range u.DropHolders {
		if err := removeHolderTxn(tx, h.CID, h.Peer, false); err != nil {
			return err
		}
	}
	return nil
}

func putPinTxn(tx *Txn, p Pin) (Pin, error) {
	const op = artmesh.Op("catalog.PutPin")
	if p.Node == "" || p.By == "" {
		return Pin{}, errorf(op, artmesh.Invalid, "a pin needs its node and agent")
	}
	if _, err := tx.First(tableMembers, indexID, p.Node); err != nil {
		return Pin{}, internal(op, err)
	}
	row, err := artifactTxn(tx, op, p.ArtifactID)
	if err != nil {
		return Pin{}, err
	}
	if p.Version == 0 {
		p.Version = row.Version
	}
	v, err := versionTxn(tx, op, row, p.Version)
	if err != nil {
		return Pin{}, err
	}
	p.Version, p.CID, p.SizeBytes = v.Version.Version, v.CID, v.SizeBytes
	if raw, err := tx.First(tablePins, indexID, p.Node, string(p.ArtifactID), fmt.Sprintf("%010d", p.Version)); err != nil {
		return Pin{}, internal(op, err)
	} else if raw != nil {
		return *raw.(*Pin), nil // pinned already: the first pin stands
	}
	if err := tx.Insert(tablePins, &p); err != nil {
		return Pin{}, internal(op, err)
	}
	return p, nil
}

func deletePinTxn(tx *Txn, cmd deletePinCmd) error {
	const op = artmesh.Op("catalog.DeletePin")
	args := []any{cmd.Node, string(cmd.ArtifactID)}
	if cmd.Version > 0 {
		args = append(args, fmt.Sprintf("%010d", cmd.Version))
	}
	n, err := tx.DeleteAll(tablePins, indexID, args...)
	if err != nil {
		return internal(op, err)
	}
	if n == 0 {
		return errorf(op, artmesh.NotFound, "artifact %s is not pinned on this node", cmd.ArtifactID)
	}
	return nil
}

// dropMemberPlacementTxn takes a member that leaves out of every
// allocation, drops its pins and drops its holder records wherever another
// holder remains.
func dropMemberPlacementTxn(tx *Txn, op artmesh.Op, peer string) error {
	if _, err := tx.DeleteAll(tablePins, indexID, peer); err != nil {
		return internal(op, err)
	}
	it, err := tx.Get(tablePlacement, indexPlacementPeer, peer)
	if err != nil {
		return internal(op, err)
	}
	var changed []*Placement
	for raw := it.Next(); raw != nil; raw = it.Next() {
		p := raw.(*Placement)
		inAlloc := slices.Contains(p.Allocated, peer)
		canDrop := slices.Contains(p.Holders, peer) && len(p.Holders) > 1
		if !inAlloc && !canDrop {
			continue
		}
		next := &Placement{CID: p.CID, Holders: cloneSlice(p.Holders), Allocated: cloneOrNil(without(cloneSlice(p.Allocated), peer))}
		if canDrop {
			next.Holders = without(next.Holders, peer)
		}
		changed = append(changed, next)
	}
	for _, p := range changed {
		if err := tx.Insert(tablePlacement, p); err != nil {
			return internal(op, err)
		}
	}
	return nil
}

// ----- writes -----

// SetPolicy replaces the mesh's replication policy.
func (c *Catalog) SetPolicy(ctx context.Context, p Policy) (Policy, error) {
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return proposeAs[Policy](ctx, c, setPolicyCmd{Policy: p})
}

// SetReplication sets an artifact's own replication factor (0: the mesh
// policy's). NotFound if the artifact does not exist.
func (c *Catalog) SetReplication(ctx context.Context, id artmesh.ArtifactID, factor int) error {
	if !artmesh.ValidArtifactID(string(id)) {
		return errorf("catalog.SetReplication", artmesh.NotFound, "artifact %s not found", id)
	}
	_, err := c.propose(ctx, setReplicationCmd{ID: id, Factor: factor})
	return err
}

// UpdatePlacement applies a batch of the allocator's decisions.
func (c *Catalog) UpdatePlacement(ctx context.Context, u PlacementUpdate) error {
	if len(u.Allocations) == 0 && len(u.DropHolders) == 0 {
		return nil
	}
	_, err := c.propose(ctx, u)
	return err
}

// PutPin records a pin of a version (0: the current one) on a node and
// returns it, with the version's number, CID and size. A version pinned
// there already keeps its first pin.
func (c *Catalog) PutPin(ctx context.Context, p Pin) (Pin, error) {
	if p.At.IsZero() {
		return Pin{}, invalid("catalog.PutPin", "the time of the write is required")
	}
	return proposeAs[Pin](ctx, c, putPinCmd{Pin: p})
}

// DeletePin removes the pins of an artifact's version (0: every version)
// on a node. NotFound if there is none.
func (c *Catalog) DeletePin(ctx context.Context, node string, id artmesh.ArtifactID, version int) error {
	_, err := c.propose(ctx, deletePinCmd{Node: node, ArtifactID: id, Version: version})
	return err
}

// ----- reads -----

// Policy returns the mesh's replication policy.
func (c *Catalog) Policy() (Policy, error) {
	return read(c.fsm.state(), policyTxn)
}

// Pins returns the pins on a node (every node when node is empty), by
// node, artifact and version.
func (c *Catalog) Pins(node string) ([]Pin, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]Pin, error) {
		var it ResultIterator
		var err error
		if node == "" {
			it, err = tx.Get(tablePins, indexID)
		} else {
			it, err = tx.Get(tablePins, indexID, node)
		}
		if err != nil {
			return nil, internal("catalog.Pins", err)
		}
		var out []Pin
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, *raw.(*Pin))
		}
		return out, nil
	})
}

// Replica is what the reconcilers know of one root CID referenced by
// live versions.
type Replica struct {
	CID       string
	SizeBytes int64
	// Factor is the factor asked for: the highest of the artifacts'
	// own factors that reference it, else the mesh policy's.
	Factor    int
	Holders   []string // sorted
	Allocated []string // sorted
}

// Replicas returns every root CID of a live version with its factor,
// holders and allocation, sorted by CID. It walks every version: the
// reconcilers and /metrics read the replica index instead (ReplicaPage,
// ReplicasOn, UnderReplicated, ReplicaStats); tests compare the two.
func (c *Catalog) Replicas() ([]Replica, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]Replica, error) {
		it, err := tx.Get(tableVersions, indexVersionCID)
		if err != nil {
			return nil, internal("catalog.Replicas", err)
		}
		return replicasTxn(tx, it)
	})
}

// ReplicasOf returns the replicas of those of cids that live versions
// reference (see Replicas), sorted by CID.
func (c *Catalog) ReplicasOf(cids []string) ([]Replica, error) {
	sorted := slices.Clone(cids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	return read(c.fsm.state(), func(tx *Txn) ([]Replica, error) {
		var out []Replica
		for _, cid := range sorted {
			it, err := tx.Get(tableVersions, indexVersionCID, cid)
			if err != nil {
				return nil, internal("catalog.ReplicasOf", err)
			}
			rs, err := replicasTxn(tx, it)
			if err != nil {
				return nil, err
			}
			out = append(out, rs...)
		}
		return out, nil
	})
}

// replicasTxn folds versions, in CID order, into replicas.
func replicasTxn(tx *Txn, it ResultIterator) ([]Replica, error) {
	const op = artmesh.Op("catalog.Replicas")
	pol, err := policyTxn(tx)
	if err != nil {
		return nil, err
	}
	var out []Replica
	factors := make(map[artmesh.ArtifactID]int)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		v := raw.(*versionRow)
		f, ok := factors[v.ArtifactID]
		if !ok {
			if a, err := tx.First(tableArtifacts, indexID, v.ArtifactID); err == nil && a != nil {
				f = a.(*artifactRow).Replication
			}
			if f == 0 {
				f = pol.ReplicationFactor
			}
			factors[v.ArtifactID] = f
		}
		if n := len(out); n > 0 && out[n-1].CID == v.CID {
			out[n-1].Factor = max(out[n-1].Factor, f)
			continue
		}
		r := Replica{CID: v.CID, SizeBytes: v.SizeBytes, Factor: f}
		if p, err := tx.First(tablePlacement, indexID, v.CID); err != nil {
			return nil, internal(op, err)
		} else if p != nil {
			r.Holders = cloneSlice(p.(*Placement).Holders)
			r.Allocated = cloneOrNil(p.(*Placement).Allocated)
		}
		out = append(out, r)
	}
	return out, nil
}

// VersionPlacement is the placement of one version of an artifact.
type VersionPlacement struct {
	Version   int
	CID       string
	SizeBytes int64
	Factor    int // asked for (artifact's own, else the policy's)
	Holders   []string
	Allocated []string
}

// ArtifactPlacement returns the placement of each version of an artifact,
// oldest first. NotFound if it does not exist.
func (c *Catalog) ArtifactPlacement(id artmesh.ArtifactID) ([]VersionPlacement, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]VersionPlacement, error) {
		const op = artmesh.Op("catalog.ArtifactPlacement")
		row, err := artifactTxn(tx, op, id)
		if err != nil {
			return nil, err
		}
		pol, err := policyTxn(tx)
		if err != nil {
			return nil, err
		}
		factor := row.Replication
		if factor == 0 {
			factor = pol.ReplicationFactor
		}
		it, err := tx.Get(tableVersions, indexID, row.ID)
		if err != nil {
			return nil, internal(op, err)
		}
		var out []VersionPlacement
		for raw := it.Next(); raw != nil; raw = it.Next() {
			v := raw.(*versionRow)
			vp := VersionPlacement{Version: v.Version.Version, CID: v.CID, SizeBytes: v.SizeBytes, Factor: factor}
			if p, err := tx.First(tablePlacement, indexID, v.CID); err != nil {
				return nil, internal(op, err)
			} else if p != nil {
				vp.Holders = cloneSlice(p.(*Placement).Holders)
				vp.Allocated = cloneOrNil(p.(*Placement).Allocated)
			}
			out = append(out, vp)
		}
		return out, nil
	})
}

// Replication returns an artifact's own factor (0: the mesh policy's).
func (c *Catalog) Replication(id artmesh.ArtifactID) (int, error) {
	return read(c.fsm.state(), func(tx *Txn) (int, error) {
		row, err := artifactTxn(tx, "catalog.Replication", id)
		if err != nil {
			return 0, err
		}
		return row.Replication, nil
	})
}
