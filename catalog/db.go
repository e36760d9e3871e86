package catalog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-memdb"
	bolt "go.etcd.io/bbolt"

	"github.com/artmesh/artmesh/internal/residency"
)

// The catalog's tables live on disk, in one bbolt file (as etcd keeps its
// state), not in memory: a node's memory no longer grows with the catalog,
// and a restart opens the file instead of rebuilding the state from a
// snapshot. Each batch of log entries the state machine applies is one
// bbolt transaction, committed with the index of its last entry, so the
// file always holds the state as of one applied index (see fsm.go).
//
// The tables keep the shape they had in memory (go-memdb), so that the
// commands read and write them as before: a table is described by a
// memdb.TableSchema, whose indexers turn a row into its index keys, and a
// transaction offers First, Get, GetReverse, LowerBound, Insert, Delete
// and DeleteAll with memdb's meaning (a lookup by a prefix of an index's
// key parts). In the file, a table is a bucket of its rows by primary key
// (the id index), encoded as JSON (the encoding of the snapshot records
// before, so old snapshots restore into it); each other index is a bucket
// whose keys are the index key followed by the row's primary key and its
// length (see indexEntryKey), with no value. Readers use bbolt read transactions, which
// see one committed state and run alongside the writer.

// Bucket names.
var (
	bucketMeta   = []byte("meta")   // the store's own records
	bucketEvents = []byte("events") // the event log, by index
)

// Keys of the meta bucket.
var (
	metaApplied    = []byte("applied")     // index of the last applied entry, 8 bytes
	metaEventFloor = []byte("event_floor") // see eventLog.floor, 8 bytes
	metaFormat     = []byte("format")      // storeFormat, 1 byte
)

// storeFormat is the version of the file's layout.
const storeFormat = 1

func tableBucket(table string) []byte { return []byte("t:" + table) }

func indexBucket(table, index string) []byte { return []byte("x:" + table + ":" + index) }

// rowMaker is the id indexer of a table, which knows the type of its rows
// (see singleIndex.newRow).
type rowMaker interface {
	newRow() any
}

// tables is the catalog's state file.
type tables struct {
	bolt   *bolt.DB
	schema *memdb.DBSchema
}

// boltOptions are the options the state file is opened with. The free
// list is written with each commit (unlike etcd, which rebuilds it at
// open by reading every page: at millions of artifacts that read is
// seconds, and brings the whole file into the process's memory), and the
// map is reserved large enough that a growing file rarely waits for
// readers to remap it.
func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:         5 * time.Second,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 4 << 30,
	}
}

// trimResidency drops the state file's pages from the process's memory
// map (see package residency).
func (t *tables) trimResidency() error { return residency.Trim(t.bolt) }

// openTables opens (or creates) the state file at path and makes sure it
// has a bucket for every table and index of the schema; an index added
// since the file was written is built from its table's rows.
func openTables(path string) (*tables, error) {
	b, err := bolt.Open(path, 0o600, boltOptions())
	if err != nil {
		return nil, fmt.Errorf("open catalog state %s: %w", path, err)
	}
	t := &tables{bolt: b, schema: schema()}
	if err := b.Update(t.prepare); err != nil {
		b.Close()
		return nil, fmt.Errorf("open catalog state %s: %w", path, err)
	}
	return t, nil
}

// prepare creates the missing buckets and checks the file's format.
func (t *tables) prepare(btx *bolt.Tx) error {
	meta, err := btx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	switch f := meta.Get(metaFormat); {
	case f == nil:
		if err := meta.Put(metaFormat, []byte{storeFormat}); err != nil {
			return err
		}
	case len(f) != 1 || f[0] != storeFormat:
		return fmt.Errorf("the catalog state is in format %v, this build reads format %d", f, storeFormat)
	}
	if _, err := btx.CreateBucketIfNotExists(bucketEvents); err != nil {
		return err
	}
	tx := &Txn{btx: btx, schema: t.schema, write: true}
	for name, ts := range t.schema.Tables {
		if _, err := btx.CreateBucketIfNotExists(tableBucket(name)); err != nil {
			return err
		}
		for iname := range ts.Indexes {
			if iname == indexID || btx.Bucket(indexBucket(name, iname)) != nil {
				continue
			}
			if _, err := btx.CreateBucket(indexBucket(name, iname)); err != nil {
				return err
			}
			if err := tx.rebuildIndex(name, iname); err != nil {
				return fmt.Errorf("build index %s of %s: %w", iname, name, err)
			}
		}
	}
	return nil
}

// Close closes the file, once its read transactions have ended.
func (t *tables) Close() error { return t.bolt.Close() }

// Txn begins a transaction: a read-only one, or the write transaction
// (one at a time: it waits for the one in progress). A transaction that
// cannot begin (the file is closed) fails each of its operations.
func (t *tables) Txn(write bool) *Txn {
	btx, err := t.bolt.Begin(write)
	return &Txn{btx: btx, schema: t.schema, write: write, err: err}
}

// errNotFound is Delete's error for a row that is not there.
var errNotFound = errors.New("not found")

// Txn is a transaction on the catalog's tables. It is used by one
// goroutine.
type Txn struct {
	btx    *bolt.Tx
	schema *memdb.DBSchema
	write  bool
	err    error // a failure to begin
	done   bool
	// gen counts the writes, so that iterators of a write transaction
	// know to find their place again (bbolt's cursors do not survive a
	// change to their bucket).
	gen      uint64
	tracking bool
	changes  []Change
	rows     map[string]any // rows decoded by point lookups (see getRow)
}

// Change is a row that a write transaction inserted, changed or deleted:
// Before is nil for an insert, After for a deletion. (A changed row of a
// table with no index but its id has Before only where the state machine
// reads it: see changeNeedsBefore.)
type Change struct {
	Table         string
	Before, After any
}

// TrackChanges makes the transaction record its changes (see Changes).
func (tx *Txn) TrackChanges() { tx.tracking = true }

// Changes returns the changes made so far, in order.
func (tx *Txn) Changes() []Change { return tx.changes }

// Abort ends the transaction, discarding its writes. It may follow Commit.
func (tx *Txn) Abort() {
	if tx.done || tx.btx == nil {
		return
	}
	tx.done = true
	_ = tx.btx.Rollback()
}

// Commit writes the transaction's changes to the file, durably.
func (tx *Txn) Commit() error {
	if tx.err != nil {
		return tx.err
	}
	if tx.done {
		return errors.New("catalog state: commit of an ended transaction")
	}
	tx.done = true
	if err := tx.btx.Commit(); err != nil {
		return fmt.Errorf("catalog state: commit: %w", err)
	}
	return nil
}

// applied returns the index of the last entry applied to the state.
func (tx *Txn) applied() uint64 {
	if tx.err != nil {
		return 0
	}
	v := tx.btx.Bucket(bucketMeta).Get(metaApplied)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// setApplied records the index of the last entry applied.
func (tx *Txn) setApplied(index uint64) error {
	return tx.btx.Bucket(bucketMeta).Put(metaApplied, binary.BigEndian.AppendUint64(nil, index))
}

// setMetaUint sets a number of the meta bucket.
func (tx *Txn) setMetaUint(key []byte, v uint64) error {
	if tx.err != nil {
		return tx.err
	}
	return tx.btx.Bucket(bucketMeta).Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// metaUint returns a number of the meta bucket (0 when absent).
func (tx *Txn) metaUint(key []byte) uint64 {
	v := tx.btx.Bucket(bucketMeta).Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (tx *Txn) index(table, index string) (*memdb.TableSchema, *memdb.IndexSchema, error) {
	if tx.err != nil {
		return nil, nil, tx.err
	}
	ts, ok := tx.schema.Tables[table]
	if !ok {
		return nil, nil, fmt.Errorf("invalid table %q", table)
	}
	is, ok := ts.Indexes[index]
	if !ok {
		return nil, nil, fmt.Errorf("invalid index %q of table %q", index, table)
	}
	return ts, is, nil
}

// primaryKey returns the key of row in its table.
func primaryKey(ts *memdb.TableSchema, row any) ([]byte, error) {
	ok, key, err := ts.Indexes[indexID].Indexer.(memdb.SingleIndexer).FromObject(row)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("a row of %s has no id", ts.Name)
	}
	return key, nil
}

// indexKeys returns the keys of row in a secondary index, without the
// primary key that follows them in the file.
func indexKeys(is *memdb.IndexSchema, row any) ([][]byte, error) {
	switch x := is.Indexer.(type) {
	case memdb.SingleIndexer:
		ok, key, err := x.FromObject(row)
		if err != nil || !ok {
			return nil, err
		}
		return [][]byte{key}, nil
	case memdb.MultiIndexer:
		ok, keys, err := x.FromObject(row)
		if err != nil || !ok {
			return nil, err
		}
		return keys, nil
	}
	return nil, fmt.Errorf("index %s has an indexer of type %T", is.Name, is.Indexer)
}

// indexEntryKey is the key of a row's entry in a secondary index: the index
// key, the row's primary key, and the primary key's length as one byte
// (the entry's value is empty: entryPK finds the primary key in the key).
func indexEntryKey(key, pk []byte) ([]byte, error) {
	if len(pk) > 255 {
		return nil, fmt.Errorf("a primary key of %d bytes is too long to index", len(pk))
	}
	out := make([]byte, 0, len(key)+len(pk)+1)
	return append(append(append(out, key...), pk...), byte(len(pk))), nil
}

// entryPK returns the primary key of an index entry's key (nil for a
// malformed one).
func entryPK(k []byte) []byte {
	if len(k) == 0 {
		return nil
	}
	n := int(k[len(k)-1])
	if n > len(k)-1 {
		return nil
	}
	return k[len(k)-1-n : len(k)-1]
}

// decodeRow decodes a row of a table of the schema.
func decodeRow(schema *memdb.DBSchema, table string, data []byte) (any, error) {
	ts, ok := schema.Tables[table]
	if !ok {
		return nil, fmt.Errorf("invalid table %q", table)
	}
	maker, ok := ts.Indexes[indexID].Indexer.(rowMaker)
	if !ok {
		return nil, fmt.Errorf("the id index of %s does not know its rows", table)
	}
	row := maker.newRow()
	if err := json.Unmarshal(data, row); err != nil {
		return nil, fmt.Errorf("decode a row of %s: %w", table, err)
	}
	return row, nil
}

// getRow returns the row of table with primary key pk, or nil. A row is
// decoded once per transaction (rows are never changed once written: a
// write puts a changed copy), so that the rows a batch of commands reads
// again and again (the policy, quota defaults, the writer's agent) cost
// one decoding.
func (tx *Txn) getRow(table string, pk []byte) (any, error) {
	key := rowKey(table, pk)
	if row, ok := tx.rows[key]; ok {
		return row, nil
	}
	data := tx.btx.Bucket(tableBucket(table)).Get(pk)
	if data == nil {
		return nil, nil
	}
	row, err := decodeRow(tx.schema, table, data)
	if err != nil {
		return nil, err
	}
	if tx.rows == nil {
		tx.rows = make(map[string]any)
	}
	tx.rows[key] = row
	return row, nil
}

// rowKey is the key of a row in a transaction's decoded rows.
func rowKey(table string, pk []byte) string { return table + "\x00" + string(pk) }

// Insert inserts row into table, replacing the row with the same primary
// key, and updates the indexes.
func (tx *Txn) Insert(table string, row any) error {
	if !tx.write {
		return errors.New("catalog state: insert in a read transaction")
	}
	ts, _, err := tx.index(table, indexID)
	if err != nil {
		return err
	}
	pk, err := primaryKey(ts, row)
	if err != nil {
		return err
	}
	// The row it replaces is decoded only when its index entries are to
	// be removed, or a change records it.
	var old any
	if len(ts.Indexes) > 1 || (tx.tracking && changeNeedsBefore(table)) {
		if old, err = tx.getRow(table, pk); err != nil {
			return err
		}
	}
	data, err := json.Marshal(row)
	if err != nil {
		return fmt.Errorf("encode a row of %s: %w", table, err)
	}
	tx.gen++
	for name, is := range ts.Indexes {
		if name == indexID {
			continue
		}
		keys, err := indexKeys(is, row)
		if err != nil {
			return fmt.Errorf("index %s of %s: %w", name, table, err)
		}
		if !is.AllowMissing && len(keys) == 0 {
			return fmt.Errorf("missing value for index %s of %s", name, table)
		}
		var oldKeys [][]byte
		if old != nil {
			if oldKeys, err = indexKeys(is, old); err != nil {
				return fmt.Errorf("index %s of %s: %w", name, table, err)
			}
		}
		b := tx.btx.Bucket(indexBucket(table, name))
		for _, k := range oldKeys {
			if !containsKey(keys, k) {
				ek, err := indexEntryKey(k, pk)
				if err != nil {
					return err
				}
				if err := b.Delete(ek); err != nil {
					return err
				}
			}
		}
		for _, k := range keys {
			if !containsKey(oldKeys, k) {
				ek, err := indexEntryKey(k, pk)
				if err != nil {
					return err
				}
				if err := b.Put(ek, nil); err != nil {
					return err
				}
			}
		}
	}
	rows := tx.btx.Bucket(tableBucket(table))
	if appendOnly(table) {
		rows.FillPercent = appendFill
	}
	if err := rows.Put(pk, data); err != nil {
		return err
	}
	if tx.rows != nil {
		tx.rows[rowKey(table, pk)] = row
	}
	if tx.tracking {
		tx.changes = append(tx.changes, Change{Table: table, Before: old, After: row})
	}
	return nil
}

// appendFill is how full bbolt fills the pages of appendOnly tables when
// it splits them (its default, half, suits keys inserted anywhere: pages
// of keys that only ever come last would stay half empty).
const appendFill = 0.95

// appendOnly reports whether a table's new rows mostly come after all its
// others: its primary keys start with an artifact id, a ULID, which sorts
// by creation time.
func appendOnly(table string) bool {
	return table == tableArtifacts || table == tableVersions
}

// changeNeedsBefore reports whether the state machine reads the row a
// change replaced (see cidSet.addChanges).
func changeNeedsBefore(table string) bool {
	return table == tableVersions || table == tablePlacement || table == tablePins
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// Delete removes the row of table with row's primary key, and its index
// entries.
func (tx *Txn) Delete(table string, row any) error {
	if !tx.write {
		return errors.New("catalog state: delete in a read transaction")
	}
	ts, _, err := tx.index(table, indexID)
	if err != nil {
		return err
	}
	pk, err := primaryKey(ts, row)
	if err != nil {
		return err
	}
	old, err := tx.getRow(table, pk)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("delete a row of %s: %w", table, errNotFound)
	}
	return tx.deleteRow(ts, pk, old)
}

func (tx *Txn) deleteRow(ts *memdb.TableSchema, pk []byte, old any) error {
	tx.gen++
	for name, is := range ts.Indexes {
		if name == indexID {
			continue
		}
		keys, err := indexKeys(is, old)
		if err != nil {
			return fmt.Errorf("index %s of %s: %w", name, ts.Name, err)
		}
		b := tx.btx.Bucket(indexBucket(ts.Name, name))
		for _, k := range keys {
			ek, err := indexEntryKey(k, pk)
			if err != nil {
				return err
			}
			if err := b.Delete(ek); err != nil {
				return err
			}
		}
	}
	if err := tx.btx.Bucket(tableBucket(ts.Name)).Delete(pk); err != nil {
		return err
	}
	delete(tx.rows, rowKey(ts.Name, pk))
	if tx.tracking {
		tx.changes = append(tx.changes, Change{Table: ts.Name, Before: old})
	}
	return nil
}

// DeleteAll deletes every row that Get(table, index, args...) returns and
// says how many.
func (tx *Txn) DeleteAll(table, index string, args ...any) (int, error) {
	it, err := tx.Get(table, index, args...)
	if err != nil {
		return 0, err
	}
	var rows []any
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rows = append(rows, raw)
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	for _, r := range rows {
		if err := tx.Delete(table, r); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

// rebuildIndex fills an index's empty bucket from its table's rows.
func (tx *Txn) rebuildIndex(table, index string) error {
	ts, is, err := tx.index(table, index)
	if err != nil {
		return err
	}
	b := tx.btx.Bucket(indexBucket(table, index))
	return tx.btx.Bucket(tableBucket(ts.Name)).ForEach(func(pk, data []byte) error {
		row, err := decodeRow(tx.schema, table, data)
		if err != nil {
			return err
		}
		keys, err := indexKeys(is, row)
		if err != nil {
			return err
		}
		for _, k := range keys {
			ek, err := indexEntryKey(k, pk)
			if err != nil {
				return err
			}
			if err := b.Put(ek, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// First returns the first row that Get would return, or nil; as in
// go-memdb, on a unique index given arguments it is the row whose key is
// exactly theirs.
func (tx *Txn) First(table, index string, args ...any) (any, error) {
	_, is, err := tx.index(table, index)
	if err != nil {
		return nil, err
	}
	if !is.Unique || len(args) == 0 {
		it, err := tx.Get(table, index, args...)
		if err != nil {
			return nil, err
		}
		raw := it.Next()
		return raw, it.Err()
	}
	key, err := is.Indexer.FromArgs(args...)
	if err != nil {
		return nil, fmt.Errorf("index %s of %s: %w", index, table, err)
	}
	if index == indexID {
		return tx.getRow(table, key)
	}
	// An entry's key is the index key followed by the primary key.
	c := tx.btx.Bucket(indexBucket(table, index)).Cursor()
	for k, _ := c.Seek(key); k != nil && bytes.HasPrefix(k, key); k, _ = c.Next() {
		if pk := entryPK(k); pk != nil && len(k) == len(key)+len(pk)+1 {
			return tx.getRow(table, pk)
		}
	}
	return nil, nil
}

// ResultIterator yields rows until Next returns nil.
type ResultIterator interface {
	Next() any
}

// Get returns the rows whose keys in index start with the key of args
// (every row for no args), in key order.
func (tx *Txn) Get(table, index string, args ...any) (*Iter, error) {
	return tx.iter(table, index, false, false, args)
}

// GetReverse is Get in reverse key order.
func (tx *Txn) GetReverse(table, index string, args ...any) (*Iter, error) {
	return tx.iter(table, index, true, false, args)
}

// LowerBound returns the rows whose keys in index are at or after the key
// of args, to the end of the index, in key order.
func (tx *Txn) LowerBound(table, index string, args ...any) (*Iter, error) {
	return tx.iter(table, index, false, true, args)
}

func (tx *Txn) iter(table, index string, reverse, bound bool, args []any) (*Iter, error) {
	_, is, err := tx.index(table, index)
	if err != nil {
		return nil, err
	}
	var key []byte
	if len(args) > 0 {
		if key, err = is.Indexer.FromArgs(args...); err != nil {
			return nil, fmt.Errorf("index %s of %s: %w", index, table, err)
		}
	}
	it := &Iter{tx: tx, table: table, reverse: reverse, primary: index == indexID}
	if bound {
		it.from = key
	} else {
		it.prefix = key
	}
	if it.primary {
		it.bucket = tx.btx.Bucket(tableBucket(table))
	} else {
		it.bucket = tx.btx.Bucket(indexBucket(table, index))
		it.rows = tx.btx.Bucket(tableBucket(table))
	}
	return it, nil
}

// Iter is an iterator over rows of a transaction (see Txn.Get). In a
// write transaction it may be used across writes: it goes on after the
// last key it returned.
type Iter struct {
	tx      *Txn
	table   string
	bucket  *bolt.Bucket
	rows    *bolt.Bucket // the table, for a secondary index
	primary bool
	reverse bool
	prefix  []byte
	from    []byte

	c       *bolt.Cursor
	gen     uint64
	last    []byte // the key last returned
	started bool
	ended   bool
	err     error
}

// Err returns the error that ended the iteration early, if any.
func (it *Iter) Err() error { return it.err }

// Next returns the next row, or nil at the end (or on an error: see Err).
func (it *Iter) Next() any {
	for !it.ended {
		k, v := it.step()
		if k == nil {
			it.ended = true
			return nil
		}
		it.last = append(it.last[:0], k...)
		data := v
		if !it.primary {
			data = it.rows.Get(entryPK(k))
			if data == nil {
				continue // cannot happen: an index entry outlived its row
			}
		}
		row, err := decodeRow(it.tx.schema, it.table, data)
		if err != nil {
			it.err, it.ended = err, true
			return nil
		}
		return row
	}
	return nil
}

// step moves to the next key within the range.
func (it *Iter) step() (k, v []byte) {
	switch {
	case !it.started:
		it.started = true
		it.c = it.bucket.Cursor()
		it.gen = it.tx.gen
		k, v = it.first()
	case it.gen != it.tx.gen:
		// The bucket changed: find the place again.
		it.c = it.bucket.Cursor()
		it.gen = it.tx.gen
		k, v = it.c.Seek(it.last)
		if it.reverse {
			if k == nil {
				k, v = it.c.Last()
			}
			for k != nil && bytes.Compare(k, it.last) >= 0 {
				k, v = it.c.Prev()
			}
		} else if k != nil && bytes.Equal(k, it.last) {
			k, v = it.c.Next()
		}
	case it.reverse:
		k, v = it.c.Prev()
	default:
		k, v = it.c.Next()
	}
	if k == nil || (it.prefix != nil && !bytes.HasPrefix(k, it.prefix)) {
		return nil, nil
	}
	return k, v
}

// first positions the cursor on the first key of the range.
func (it *Iter) first() (k, v []byte) {
	switch {
	case it.from != nil:
		return it.c.Seek(it.from)
	case !it.reverse && it.prefix == nil:
		return it.c.First()
	case !it.reverse:
		return it.c.Seek(it.prefix)
	case it.prefix == nil:
		return it.c.Last()
	}
	// The last key with the prefix: seek past the prefix, then back.
	end := prefixEnd(it.prefix)
	if end == nil {
		return it.c.Last()
	}
	if k, _ := it.c.Seek(end); k == nil {
		return it.c.Last()
	}
	return it.c.Prev()
}

// prefixEnd returns the least key greater than every key with prefix p,
// or nil when there is none.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// removeFile removes a file that may not exist.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
