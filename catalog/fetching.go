package catalog

import (
	"context"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/artmesh/artmesh"
)

// Fetching rows say which members are fetching the DAG under a root CID
// right now and serve the leaves they have verified of it to other
// fetchers: partial holders. N nodes that fetch one artifact at once find
// each other here and share the work, with no tracker. A fetcher renews
// its row while it fetches and drops it when it is done; readers ignore a
// row not renewed for FetchingStale, and the leader drops such rows (a
// fetcher that stalled or died).

const (
	tableFetching = "fetching"

	recordFetching byte = 13

	// The rows are advice, so an older replica may skip these commands.
	putFetchingType  = ignoreUnknownTypeFlag | 33
	dropFetchingType = ignoreUnknownTypeFlag | 34
)

// maxFetchingRows bounds the rows of one put: a node reports the fetches
// it runs, a handful.
const maxFetchingRows = 1024

// FetchingStale is how old a fetching row may be before readers ignore it
// and the leader drops it.
const FetchingStale = 30 * time.Second

// Fetching is one member fetching one DAG.
type Fetching struct {
	CID  string    `json:"cid"`
	Peer string    `json:"peer"`
	Seen time.Time `json:"seen"` // when the fetcher last renewed the row (its clock)
}

type putFetchingCmd struct {
	Rows []Fetching `json:"rows"`
}

// dropFetchingCmd drops rows, each only if it was not renewed after
// Before (zero: unconditionally).
type dropFetchingCmd struct {
	Rows   []Fetching `json:"rows"`
	Before time.Time  `json:"before,omitzero"`
}

func (putFetchingCmd) commandType() commandType  { return putFetchingType }
func (dropFetchingCmd) commandType() commandType { return dropFetchingType }

func fetchingTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableFetching: {
			Name: tableFetching,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*Fetching]{
					nargs: 2,
					key:   func(b []byte, r *Fetching) []byte { return appendPart(appendPart(b, r.CID), r.Peer) },
				}},
			},
		},
	}
}

func applyFetchingCommand(tx *Txn, t commandType, payload []byte) (any, bool) {
	switch t {
	case putFetchingType:
		return applyDecodedErr(tx, t, payload, putFetchingTxn), true
	case dropFetchingType:
		return applyDecodedErr(tx, t, payload, dropFetchingTxn), true
	}
	return nil, false
}

// putFetchingTxn records or renews rows of members. A row of a peer that
// is not a member is left out: a removed member serves nobody.
func putFetchingTxn(tx *Txn, cmd putFetchingCmd) error {
	const op = artmesh.Op("catalog.PutFetching")
	for _, r := range cmd.Rows {
		m, err := tx.First(tableMembers, indexID, r.Peer)
		if err != nil {
			return internal(op, err)
		}
		if m == nil {
			continue
		}
		row := r
		if err := tx.Insert(tableFetching, &row); err != nil {
			return internal(op, err)
		}
	}
	return nil
}

func dropFetchingTxn(tx *Txn, cmd dropFetchingCmd) error {
	const op = artmesh.Op("catalog.DropFetching")
	for _, r := range cmd.Rows {
		raw, err := tx.First(tableFetching, indexID, r.CID, r.Peer)
		if err != nil {
			return internal(op, err)
		}
		if raw == nil || (!cmd.Before.IsZero() && raw.(*Fetching).Seen.After(cmd.Before)) {
			continue
		}
		if err := tx.Delete(tableFetching, raw); err != nil {
			return internal(op, err)
		}
	}
	return nil
}

// dropMemberFetchingTxn drops every fetching row of a member that is
// removed.
func dropMemberFetchingTxn(tx *Txn, op artmesh.Op, peer string) error {
	it, err := tx.Get(tableFetching, indexID)
	if err != nil {
		return internal(op, err)
	}
	var gone []*Fetching
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if r := raw.(*Fetching); r.Peer == peer {
			gone = append(gone, r)
		}
	}
	for _, r := range gone {
		if err := tx.Delete(tableFetching, r); err != nil {
			return internal(op, err)
		}
	}
	return nil
}

// PutFetching records or renews that members are fetching DAGs.
func (c *Catalog) PutFetching(ctx context.Context, rows []Fetching) error {
	if len(rows) == 0 {
		return nil
	}
	cmd := putFetchingCmd{Rows: rows}
	if err := cmd.check(); err != nil {
		return err
	}
	_, err := c.propose(ctx, cmd)
	return err
}

// DropFetching drops fetching rows; with a non-zero before, only those
// not renewed after it.
func (c *Catalog) DropFetching(ctx context.Context, rows []Fetching, before time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	_, err := c.propose(ctx, dropFetchingCmd{Rows: rows, Before: before})
	return err
}

// AllFetching returns every fetching row, stale ones included.
func (c *Catalog) AllFetching() ([]Fetching, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]Fetching, error) {
		it, err := tx.Get(tableFetching, indexID)
		if err != nil {
			return nil, internal("catalog.AllFetching", err)
		}
		var out []Fetching
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, *raw.(*Fetching))
		}
		return out, nil
	})
}

// Fetchers returns the members fetching the DAG under cid whose rows are
// fresh (renewed within FetchingStale by this node's clock).
func (c *Catalog) Fetchers(cid string) ([]string, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]string, error) {
		it, err := tx.Get(tableFetching, indexID, cid)
		if err != nil {
			return nil, internal("catalog.Fetchers", err)
		}
		var out []string
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if r := raw.(*Fetching); time.Since(r.Seen) < FetchingStale {
				out = append(out, r.Peer)
			}
		}
		return out, nil
	})
}
