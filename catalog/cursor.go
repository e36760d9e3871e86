package catalog

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
)

// Cursor paging. Every secondary index of the artifacts table ends its
// keys with the artifact id in descending order, so an artifact's key in
// the index is its position in a newest-first listing, whether or not the
// artifact still exists. A page continues after the previous page's last
// artifact by seeking that position with LowerBound: it reads what it
// returns, not what came before, and artifacts deleted or created between
// pages neither shift nor repeat the rest (a new artifact sorts before
// the cursor, so a listing in progress does not see it).
//
// memdb's LowerBound iterates to the end of the whole index, and yields
// rows, not keys. rangeIter finds the key of each entry again from its
// row (the row's keys under the index, through the index's own indexer:
// the least one past the previous entry's key) and stops at the first
// entry outside the prefix. It takes only the entries whose key is the
// prefix followed by the row's position: a key whose parts have 0 bytes
// (a metadata key "a\x00b") can start with another's prefix, and would
// list a row twice or out of order.
//
// Every listing goes through rangeTxn, the first page (seeking the bare
// prefix) too, so that all pages take the same entries.

// artifactIndexers holds the indexers of the artifacts table by index
// name, to compute a row's keys as memdb does.
var artifactIndexers = sync.OnceValue(func() map[string]memdb.Indexer {
	out := map[string]memdb.Indexer{}
	for name, ix := range baseSchema().Tables[tableArtifacts].Indexes {
		out[name] = ix.Indexer
	}
	return out
})

// rangeTxn returns the rows of the artifacts index whose keys are the
// prefix that args make followed by a position, newest first; with
// after, only those past that artifact's position (after itself
// excluded, whether or not it still exists).
func rangeTxn(tx *Txn, index string, args []any, after artmesh.ArtifactID) (*rangeIter, error) {
	indexer, ok := artifactIndexers()[index]
	if !ok {
		return nil, fmt.Errorf("no artifacts index %q", index)
	}
	prefix, err := argsKey(len(args), args)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", index, err)
	}
	seekArgs := args
	if after != "" {
		seekArgs = append(args[:len(args):len(args)], posID(after))
	}
	it, err := tx.LowerBound(tableArtifacts, index, seekArgs...)
	if err != nil {
		return nil, fmt.Errorf("seek %s: %w", index, err)
	}
	// Without after, the seek key is the bare prefix, which no entry
	// equals (each ends with an id).
	r := &rangeIter{it: it, indexer: indexer, prefix: prefix, last: appendDescID(bytes.Clone(prefix), after)}
	if index == indexOwnerMeta && len(args) == 3 {
		owner, _ := args[0].(artmesh.AgentID)
		key, _ := args[1].(string)
		value, _ := args[2].(string)
		if owner != "" && noNUL(string(owner), key, value) {
			r.meta = &metaRange{owner: owner, key: key, value: value}
		}
	}
	return r, nil
}

// metaRange is a range of the owner_meta index whose parts have no 0
// byte. A row whose metadata keys have none either has at most one entry
// in it, which metaRange finds from the one value, without building every
// key of the row (a MetaText of each value) as entryKey does.
type metaRange struct {
	owner      artmesh.AgentID
	key, value string
}

// entryKey returns the key of row's entry in the range, nil if it has
// none; ok is false when it cannot tell cheaply (a 0 byte in the row's
// metadata keys or in the value's text), and entryKey must decide.
func (m *metaRange) entryKey(row *artifactRow, prefix []byte) (key []byte, ok bool) {
	if m == nil {
		return nil, false
	}
	for k := range row.Metadata {
		if strings.IndexByte(k, 0) >= 0 {
			return nil, false
		}
	}
	raw, has := row.Metadata[m.key]
	if row.Owner != m.owner || !has {
		return nil, true
	}
	switch text := artmesh.MetaText(raw); {
	case text == m.value:
		return appendDescID(append(make([]byte, 0, len(prefix)+len(row.ID)), prefix...), row.ID), true
	case strings.IndexByte(text, 0) >= 0:
		return nil, false
	}
	return nil, true
}

// rangeIter is a LowerBound iteration bounded to a key prefix, skipping
// the entry at the seek key itself. next yields its rows in key order,
// nil at its end.
type rangeIter struct {
	it      ResultIterator // nil once done
	indexer memdb.Indexer
	prefix  []byte
	meta    *metaRange // nil unless the range is one of owner_meta without 0 bytes
	// last is the key of the entry yielded last; before the first, the
	// seek key, which the first entry may equal.
	last    []byte
	started bool
}

func (r *rangeIter) next() (*artifactRow, error) {
	for r.it != nil {
		raw := r.it.Next()
		if raw == nil {
			break
		}
		row := raw.(*artifactRow)
		key, fast := r.meta.entryKey(row, r.prefix)
		if fast && key != nil {
			if c := bytes.Compare(key, r.last); c < 0 || c == 0 && r.started {
				key = nil // its one entry in the range is behind: this one is past it
			}
		}
		if !fast {
			var err error
			if key, err = entryKey(r.indexer, row, r.last, !r.started); err != nil {
				r.it = nil
				return nil, err
			}
		}
		if key == nil || !bytes.HasPrefix(key, r.prefix) {
			break // past the range: every later key is too
		}
		atSeek := !r.started && bytes.Equal(key, r.last)
		r.last, r.started = key, true
		if atSeek {
			continue // the cursor's own artifact ended the previous page
		}
		if !isDescID(key[len(r.prefix):], row.ID) {
			continue // only looks like an entry of the prefix
		}
		return row, nil
	}
	r.it = nil
	return nil, nil
}

// isDescID reports whether b is id as appendDescID appends it.
func isDescID(b []byte, id artmesh.ArtifactID) bool {
	if len(b) != len(id) {
		return false
	}
	for i := range len(b) {
		if b[i] != ^id[i] {
			return false
		}
	}
	return true
}

// entryKey returns the key under which an index iteration that was at
// key last (or, with inclusive, is seeking last) yields row: the least of
// the row's keys past last, or at it when inclusive. Nil if it has none.
func entryKey(indexer memdb.Indexer, row *artifactRow, last []byte, inclusive bool) ([]byte, error) {
	var keys [][]byte
	switch ix := indexer.(type) {
	case memdb.SingleIndexer:
		ok, key, err := ix.FromObject(row)
		if err != nil {
			return nil, fmt.Errorf("index key of %s: %w", row.ID, err)
		}
		if ok {
			keys = [][]byte{key}
		}
	case memdb.MultiIndexer:
		ok, ks, err := ix.FromObject(row)
		if err != nil {
			return nil, fmt.Errorf("index keys of %s: %w", row.ID, err)
		}
		if ok {
			keys = ks
		}
	default:
		return nil, fmt.Errorf("index of %T has no keys", indexer)
	}
	var best []byte
	for _, k := range keys {
		c := bytes.Compare(k, last)
		if (c > 0 || c == 0 && inclusive) && (best == nil || bytes.Compare(k, best) < 0) {
			best = k
		}
	}
	return best, nil
}

// noNUL reports whether none of ss has a 0 byte.
func noNUL(ss ...string) bool {
	for _, s := range ss {
		if strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}
