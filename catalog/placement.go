package catalog

import (
	"context"
	"slices"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
)

// Placement says which members hold the whole DAG under a root CID: the
// node that took the bytes, and every node that fetched or pinned the
// whole version since. Fetches take their providers from it; a replication
// policy (a later issue) reads and writes the same rows.

const (
	tablePlacement = "placement"

	indexPlacementPeer = "peer" // each holder or allocated member, CID

	recordPlacement byte = 9

	addHolderType    commandType = 24
	removeHolderType commandType = 25
)

// Placement is the holders of one root CID, and the members the leader
// allocated it to.
type Placement struct {
	CID       string   `json:"cid"`
	Holders   []string `json:"holders"`             // peer ids, sorted: verified, durable copies
	Allocated []string `json:"allocated,omitempty"` // peer ids, sorted: who should hold it
}

type holderCmd struct {
	CID  string `json:"cid"`
	Peer string `json:"peer"`
	// Lost (removals only): the peer found that it no longer has the
	// whole DAG, so its record goes even when it is the last one.
	Lost bool `json:"lost,omitempty"`
}

type addHolderCmd holderCmd
type removeHolderCmd holderCmd

func (addHolderCmd) commandType() commandType    { return addHolderType }
func (removeHolderCmd) commandType() commandType { return removeHolderType }

func placementTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tablePlacement: {
			Name: tablePlacement,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*Placement]{
					nargs: 1,
					key:   func(b []byte, r *Placement) []byte { return appendPart(b, r.CID) },
				}},
				// Each member that holds it or is allocated it, then the
				// CID: what a member that leaves takes part in.
				indexPlacementPeer: {Name: indexPlacementPeer, Unique: true, AllowMissing: true, Indexer: multiIndex[*Placement]{
					nargs: 2,
					keys: func(r *Placement) [][]byte {
						peers := union(r.Holders, r.Allocated)
						keys := make([][]byte, len(peers))
						for i, p := range peers {
							keys[i] = appendPart(appendPart(nil, p), r.CID)
						}
						return keys
					},
				}},
			},
		},
	}
}

func applyPlacementCommand(tx *Txn, t commandType, payload []byte) (any, bool) {
	switch t {
	case addHolderType:
		c, err := decode[addHolderCmd](t, payload)
		if err != nil {
			return err, true
		}
		return errResult(addHolderTxn(tx, c.CID, c.Peer)), true
	case removeHolderType:
		c, err := decode[removeHolderCmd](t, payload)
		if err != nil {
			return err, true
		}
		return errResult(removeHolderTxn(tx, c.CID, c.Peer, c.Lost)), true
	}
	return nil, false
}

// addHolderTxn records that peer holds the DAG under cid. It is also
// called by the writes that record new content.
func addHolderTxn(tx *Txn, cid, peer string) error {
	const op = artmesh.Op("catalog.AddHolder")
	if cid == "" || peer == "" {
		return nil
	}
	raw, err := tx.First(tablePlacement, indexID, cid)
	if err != nil {
		return internal(op, err)
	}
	p := &Placement{CID: cid}
	if raw != nil {
		old := raw.(*Placement)
		if slices.Contains(old.Holders, peer) {
			return nil
		}
		p.Holders = cloneSlice(old.Holders)
		p.Allocated = cloneOrNil(old.Allocated)
	}
	p.Holders = union(p.Holders, []string{peer})
	if err := tx.Insert(tablePlacement, p); err != nil {
		return internal(op, err)
	}
	return nil
}

func removeHolderTxn(tx *Txn, cid, peer string, lost bool) error {
	const op = artmesh.Op("catalog.RemoveHolder")
	raw, err := tx.First(tablePlacement, indexID, cid)
	if err != nil {
		return internal(op, err)
	}
	if raw == nil {
		return nil
	}
	old := raw.(*Placement)
	if !slices.Contains(old.Holders, peer) || (len(old.Holders) == 1 && !lost) {
		// Never the last holder record: no copy is given up while it is
		// the only one known. A copy that is lost is no copy: its record
		// goes, so that placement says what is really there.
		return nil
	}
	p := &Placement{CID: cid, Holders: without(cloneSlice(old.Holders), peer), Allocated: cloneOrNil(old.Allocated)}
	if err := tx.Insert(tablePlacement, p); err != nil {
		return internal(op, err)
	}
	return nil
}

// AddHolder records that peer holds the whole DAG under cid.
func (c *Catalog) AddHolder(ctx context.Context, cid, peer string) error {
	_, err := c.propose(ctx, addHolderCmd{CID: cid, Peer: peer})
	return err
}

// RemoveHolder records that peer no longer holds the DAG under cid,
// unless it is the last recorded holder.
func (c *Catalog) RemoveHolder(ctx context.Context, cid, peer string) error {
	_, err := c.propose(ctx, removeHolderCmd{CID: cid, Peer: peer})
	return err
}

// DropLostHolder records that peer found it no longer has the whole DAG
// under cid (blocks lost or quarantined): its record goes, even when it
// is the last one.
func (c *Catalog) DropLostHolder(ctx context.Context, cid, peer string) error {
	_, err := c.propose(ctx, removeHolderCmd{CID: cid, Peer: peer, Lost: true})
	return err
}

// Holders returns the members recorded as holding the DAG under cid.
func (c *Catalog) Holders(cid string) ([]string, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]string, error) {
		raw, err := tx.First(tablePlacement, indexID, cid)
		if err != nil {
			return nil, internal("catalog.Holders", err)
		}
		if raw == nil {
			return nil, nil
		}
		return cloneSlice(raw.(*Placement).Holders), nil
	})
}
