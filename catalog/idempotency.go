package catalog

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/artmesh/artmesh"
)

// Idempotency keys. An agent that sends a write with an Idempotency-Key
// (Stripe's header) may send it again, to any node, and the write takes
// effect at most once: the key, scoped to the agent, and a digest of the
// request travel into the log with the write, in a keyed envelope, and the
// state machine records them, with the write's result, in the same
// transaction as the write itself. A write whose key it knows is not
// applied again: with the same digest its result is the first one's (a
// replay); with another digest it is refused, IdempotencyKeyReused. So a
// retry after an OutcomeUnknown, a lost connection or a leader change is
// safe, and a key's record lives in the catalog's store, so it survives
// restarts, snapshots and leader changes.
//
// Only a write that took effect is recorded: a refused write changed
// nothing, and the same key may carry it again, corrected or not.
//
// Records are kept for KeyWindow after the time in their envelope (the
// proposing node's clock, never the replica's), and at most MaxKeys of
// them: past that the oldest go first. Both bound the store, not memory:
// the records live on disk with the rest of the catalog.
//
// The envelope: the type byte, the proposer's time as big-endian Unix
// nanoseconds (8 bytes), the request's SHA-256 digest (32 bytes), the
// agent's id and the key, each a length byte then its bytes, then the
// write's own entry.

const (
	keyedType commandType = 36

	tableKeys = "idempotency_keys"

	// KeyWindow is how long a key's record is kept.
	KeyWindow = 24 * time.Hour
	// MaxKeys bounds how many keys' records the catalog keeps.
	MaxKeys = 1 << 20
	// MaxKeyLen is the longest key.
	MaxKeyLen = 255

	keyedHead = 8 + 32

	// forgetKeysPerWrite bounds the expired records one keyed write
	// deletes, so that a write's cost does not depend on the backlog.
	forgetKeysPerWrite = 16
)

// metaKeyCount is the meta bucket's count of key records, 8 bytes.
var metaKeyCount = []byte("key_count")

// keyRow is the record of an idempotency key whose write took effect.
type keyRow struct {
	Agent  artmesh.AgentID `json:"agent"`
	Key    string          `json:"key"`
	Digest string          `json:"digest"` // hex
	At     time.Time       `json:"at"`
	Result json.RawMessage `json:"result,omitempty"`
}

func keyTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableKeys: {
			Name: tableKeys,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*keyRow]{
					nargs: 2,
					key:   func(b []byte, r *keyRow) []byte { return appendPart(appendPart(b, string(r.Agent)), r.Key) },
				}},
				indexAt: {Name: indexAt, Unique: true, Indexer: singleIndex[*keyRow]{
					nargs: 1,
					key: func(b []byte, r *keyRow) []byte {
						return appendPart(appendPart(binary.BigEndian.AppendUint64(b, uint64(r.At.UnixNano())), string(r.Agent)), r.Key)
					},
				}},
			},
		},
	}
}

// Idempotency is the idempotency key of the request that the writes made
// under a context serve (WithIdempotency). The first write proposed under
// it carries it into the log.
type Idempotency struct {
	// Agent is the agent the request acts for: keys are its own.
	Agent artmesh.AgentID
	// Key is the client's key (1 to MaxKeyLen printable ASCII characters).
	Key string
	// Digest returns the request's digest. It is called once the write
	// is proposed, when the request's body has been read.
	Digest func() ([32]byte, error)

	used     atomic.Bool
	replayed atomic.Bool
}

// Unused reports whether no write has carried the key yet.
func (k *Idempotency) Unused() bool { return !k.used.Load() }

// Replayed reports whether the catalog answered a write under this key
// with the result of an earlier request that carried it.
func (k *Idempotency) Replayed() bool { return k.replayed.Load() }

// ValidKey checks an idempotency key's form.
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("an idempotency key has 1 to %d characters, not %d", MaxKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return fmt.Errorf("an idempotency key has printable ASCII characters only (no spaces)")
		}
	}
	return nil
}

type idempotencyKey struct{}

// WithIdempotency returns ctx carrying k: the first write proposed under
// it goes to the log with k's key.
func WithIdempotency(ctx context.Context, k *Idempotency) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, k)
}

// IdempotencyOf returns the key ctx carries (nil when none).
func IdempotencyOf(ctx context.Context) *Idempotency {
	k, _ := ctx.Value(idempotencyKey{}).(*Idempotency)
	return k
}

// keyed is the head of a keyed envelope.
type keyed struct {
	At     time.Time
	Digest [32]byte
	Agent  artmesh.AgentID
	Key    string
}

// wrapKeyed puts entry in a keyed envelope.
func wrapKeyed(k keyed, entry []byte) []byte {
	env := make([]byte, 0, 1+keyedHead+2+len(k.Agent)+len(k.Key)+len(entry))
	env = append(env, byte(keyedType))
	env = binary.BigEndian.AppendUint64(env, uint64(k.At.UnixNano()))
	env = append(env, k.Digest[:]...)
	env = append(env, byte(len(k.Agent)))
	env = append(env, k.Agent...)
	env = append(env, byte(len(k.Key)))
	env = append(env, k.Key...)
	return append(env, entry...)
}

// unwrapKeyed splits a keyed envelope's payload (after its type byte). An
// envelope that is cut short, carries an invalid key, or wraps nothing or
// another envelope is an error wrapping errMalformedEntry.
func unwrapKeyed(payload []byte) (k keyed, entry []byte, err error) {
	bad := func(format string, args ...any) (keyed, []byte, error) {
		return keyed{}, nil, malformed(keyedType, format, args...)
	}
	if len(payload) < keyedHead+2 {
		return bad("short keyed entry (%d bytes)", len(payload))
	}
	k.At = time.Unix(0, int64(binary.BigEndian.Uint64(payload))).UTC()
	copy(k.Digest[:], payload[8:keyedHead])
	rest := payload[keyedHead:]
	n := int(rest[0])
	if len(rest) < 1+n+1 {
		return bad("short keyed entry")
	}
	k.Agent, rest = artmesh.AgentID(rest[1:1+n]), rest[1+n:]
	n = int(rest[0])
	if len(rest) < 1+n+1 {
		return bad("short keyed entry")
	}
	k.Key, entry = string(rest[1:1+n]), rest[1+n:]
	if k.Agent == "" || ValidKey(k.Key) != nil {
		return bad("a keyed entry without a valid agent and key")
	}
	if t := commandType(entry[0]); t == keyedType || t == forwardedType || !t.known() {
		return bad("a keyed entry wraps an entry of type %d", entry[0])
	}
	return k, entry, nil
}

// keyReplay is the result of a keyed write whose key was applied before
// with the same request: the first result, as JSON.
type keyReplay struct{ value json.RawMessage }

// MarshalJSON makes a replay encode as the first result (a forwarded
// write's answer).
func (r keyReplay) MarshalJSON() ([]byte, error) {
	if len(r.value) == 0 {
		return []byte("null"), nil
	}
	return r.value, nil
}

func applyKeyed(tx *Txn, payload []byte) any {
	const op = artmesh.Op("catalog.Keyed")
	k, entry, err := unwrapKeyed(payload)
	if err != nil {
		return err
	}
	if err := forgetKeysTxn(tx, k.At.Add(-KeyWindow), forgetKeysPerWrite); err != nil {
		return internal(op, err)
	}
	digest := hex.EncodeToString(k.Digest[:])
	raw, err := tx.First(tableKeys, indexID, string(k.Agent), k.Key)
	if err != nil {
		return internal(op, err)
	}
	if raw != nil {
		row := raw.(*keyRow)
		if row.Digest != digest {
			return errorf(op, artmesh.IdempotencyKeyReused,
				"the Idempotency-Key %q came with another request at %s; a key stands for one request: use a new key for a new request",
				k.Key, row.At.Format(time.RFC3339))
		}
		return keyReplay{value: row.Result}
	}
	res := applyCommand(tx, entry)
	if _, failed := res.(error); failed {
		return res // nothing took effect; the key stays free
	}
	row := &keyRow{Agent: k.Agent, Key: k.Key, Digest: digest, At: k.At}
	if res != nil {
		if row.Result, err = json.Marshal(res); err != nil {
			return internal(op, fmt.Errorf("encode the result for key %q: %w", k.Key, err))
		}
	}
	if err := tx.Insert(tableKeys, row); err != nil {
		return internal(op, err)
	}
	n := tx.metaUint(metaKeyCount) + 1
	if n > MaxKeys {
		dropped, err := dropOldestKeysTxn(tx, int(n-MaxKeys))
		if err != nil {
			return internal(op, err)
		}
		n -= uint64(dropped)
	}
	if err := tx.setMetaUint(metaKeyCount, n); err != nil {
		return internal(op, err)
	}
	return res
}

// forgetKeysTxn drops up to limit records made before cutoff.
func forgetKeysTxn(tx *Txn, cutoff time.Time, limit int) error {
	it, err := tx.Get(tableKeys, indexAt)
	if err != nil {
		return err
	}
	var old []*keyRow
	for raw := it.Next(); raw != nil && len(old) < limit; raw = it.Next() {
		r := raw.(*keyRow)
		if !r.At.Before(cutoff) {
			break
		}
		old = append(old, r)
	}
	return deleteKeysTxn(tx, old)
}

// dropOldestKeysTxn drops the n oldest records and returns how many it
// dropped.
func dropOldestKeysTxn(tx *Txn, n int) (int, error) {
	it, err := tx.Get(tableKeys, indexAt)
	if err != nil {
		return 0, err
	}
	var old []*keyRow
	for raw := it.Next(); raw != nil && len(old) < n; raw = it.Next() {
		old = append(old, raw.(*keyRow))
	}
	return len(old), deleteKeysTxn(tx, old)
}

func deleteKeysTxn(tx *Txn, rows []*keyRow) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		if err := tx.Delete(tableKeys, r); err != nil {
			return err
		}
	}
	n := tx.metaUint(metaKeyCount)
	return tx.setMetaUint(metaKeyCount, n-min(n, uint64(len(rows))))
}

// KeyRecord is what the catalog keeps of an idempotency key whose write
// took effect.
type KeyRecord struct {
	// Digest is the SHA-256 digest of the request that carried the key.
	Digest [32]byte
	// At is when the write was proposed.
	At time.Time
	// Result is the write's result as JSON (empty for a write without
	// one, such as a delete).
	Result json.RawMessage
}

// IdempotencyRecord returns the record of agent's key as this node has
// applied it, and whether there is one (records older than KeyWindow
// that are not yet dropped do not count).
func (c *Catalog) IdempotencyRecord(agent artmesh.AgentID, key string) (KeyRecord, bool, error) {
	const op = artmesh.Op("catalog.IdempotencyRecord")
	tx := c.fsm.state().db.Txn(false)
	defer tx.Abort()
	raw, err := tx.First(tableKeys, indexID, string(agent), key)
	if err != nil {
		return KeyRecord{}, false, internal(op, err)
	}
	if raw == nil {
		return KeyRecord{}, false, nil
	}
	row := raw.(*keyRow)
	if time.Since(row.At) > KeyWindow {
		return KeyRecord{}, false, nil
	}
	rec := KeyRecord{At: row.At, Result: row.Result}
	if _, err := hex.Decode(rec.Digest[:], []byte(row.Digest)); err != nil {
		return KeyRecord{}, false, internal(op, fmt.Errorf("key %q: bad digest: %w", key, err))
	}
	return rec, true, nil
}

// IdempotencyKeys returns how many key records the catalog keeps.
func (c *Catalog) IdempotencyKeys() uint64 {
	tx := c.fsm.state().db.Txn(false)
	defer tx.Abort()
	return tx.metaUint(metaKeyCount)
}

// keyEntry wraps data in a keyed envelope when ctx carries an
// idempotency key that no write under it has carried yet.
func keyEntry(ctx context.Context, op artmesh.Op, data []byte) ([]byte, error) {
	k := IdempotencyOf(ctx)
	if k == nil || !k.used.CompareAndSwap(false, true) {
		return data, nil
	}
	if err := ValidKey(k.Key); err != nil {
		return nil, artmesh.E(op, artmesh.Invalid, err.Error())
	}
	if k.Agent == "" || len(k.Agent) > 255 {
		return nil, artmesh.E(op, artmesh.Invalid, "an idempotency key needs the agent it belongs to")
	}
	digest, err := k.Digest()
	if err != nil {
		return nil, err
	}
	return wrapKeyed(keyed{At: time.Now().UTC(), Digest: digest, Agent: k.Agent, Key: k.Key}, data), nil
}
