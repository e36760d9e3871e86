package catalog

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/artmesh/artmesh"
)

// Forwarded writes are idempotent. A follower wraps the write it forwards
// in an envelope with a request id of its own making, and sends the same
// envelope again when the leader changed (or did not answer) before the
// write was acknowledged: the old leader may have replicated it before it
// stopped, and its successor then commits it. The state machine remembers
// the ids it applied for requestWindow, by the time the follower put in
// the envelope (never its own clock), and applies a write whose id it
// knows as a no-op whose result is the first one's.
//
// The envelope: the type byte, the 16-byte id, the follower's time as
// big-endian Unix nanoseconds, then the write's own entry.

const (
	forwardedType commandType = 32

	tableRequests = "requests"
	indexAt       = "at"

	recordRequest byte = 12

	requestIDSize = 16
	envelopeHead  = 1 + requestIDSize + 8

	// requestWindow is how long an id is remembered: longer than any
	// forward is retried.
	requestWindow = 2 * time.Minute
)

// requestRow is an id of a forwarded write that was applied.
type requestRow struct {
	ID string    `json:"id"` // hex
	At time.Time `json:"at"`
}

func requestTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableRequests: {
			Name: tableRequests,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*requestRow]{
					nargs: 1,
					key:   func(b []byte, r *requestRow) []byte { return appendPart(b, r.ID) },
				}},
				indexAt: {Name: indexAt, Unique: true, Indexer: singleIndex[*requestRow]{
					nargs: 1,
					key: func(b []byte, r *requestRow) []byte {
						return appendPart(binary.BigEndian.AppendUint64(b, uint64(r.At.UnixNano())), r.ID)
					},
				}},
			},
		},
	}
}

// wrapForwarded puts entry in an envelope with a fresh id.
func wrapForwarded(entry []byte, at time.Time) []byte {
	env := make([]byte, envelopeHead, envelopeHead+len(entry))
	env[0] = byte(forwardedType)
	if _, err := rand.Read(env[1 : 1+requestIDSize]); err != nil {
		panic("catalog: no randomness: " + err.Error())
	}
	binary.BigEndian.PutUint64(env[1+requestIDSize:], uint64(at.UnixNano()))
	return append(env, entry...)
}

// unwrapForwarded splits an envelope's payload (after its type byte). An
// envelope that is cut short, or that wraps nothing, another envelope or
// an entry of an unknown type (unless the type may be skipped, see
// ignoreUnknownTypeFlag), is an error wrapping errMalformedEntry.
func unwrapForwarded(payload []byte) (id string, at time.Time, entry []byte, err error) {
	if len(payload) < envelopeHead {
		return "", time.Time{}, nil, malformed(forwardedType, "short forwarded entry (%d bytes)", len(payload))
	}
	id = hex.EncodeToString(payload[:requestIDSize])
	at = time.Unix(0, int64(binary.BigEndian.Uint64(payload[requestIDSize:envelopeHead-1]))).UTC()
	entry = payload[envelopeHead-1:]
	if t := commandType(entry[0]); t == forwardedType || !t.known() && t&ignoreUnknownTypeFlag == 0 {
		return "", time.Time{}, nil, malformed(forwardedType, "a forwarded entry wraps an entry of type %d", firstByte(entry))
	}
	return id, at, entry, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// innerType returns the type of the write an entry carries: its own, or
// for an envelope the wrapped one's (see unwrapEnvelopes; 0 for an empty
// entry).
func innerType(data []byte) commandType {
	if len(data) == 0 {
		return 0
	}
	return commandType(unwrapEnvelopes(data)[0])
}

// duplicate is the result of a forwarded write whose id was applied
// before: resolve, after the batch, replaces it with that first result.
type duplicate struct{ id string }

func applyForwarded(tx *Txn, payload []byte) any {
	const op = artmesh.Op("catalog.Forwarded")
	id, at, entry, err := unwrapForwarded(payload)
	if err != nil {
		return err
	}
	if err := forgetRequestsTxn(tx, at.Add(-requestWindow)); err != nil {
		return internal(op, err)
	}
	if raw, err := tx.First(tableRequests, indexID, id); err != nil {
		return internal(op, err)
	} else if raw != nil {
		if commandType(entry[0]) == keyedType {
			// The key's record has the first result, long after the
			// id's is forgotten.
			return applyCommand(tx, entry)
		}
		return duplicate{id: id}
	}
	res := applyCommand(tx, entry)
	if err, ok := res.(error); ok && artmesh.KindOf(err) == artmesh.Other {
		return res // the database failed: the batch is applied again
	}
	if isMalformed(res) {
		return res // a no-op: the id is not recorded
	}
	if err := tx.Insert(tableRequests, &requestRow{ID: id, At: at}); err != nil {
		return internal(op, err)
	}
	return forwarded{id: id, res: res}
}

// forwarded is the result of a forwarded write applied for the first
// time: resolve, after the batch, remembers it by id, then passes res on.
type forwarded struct {
	id  string
	res any
}

// forgetRequestsTxn drops the ids of requests made before cutoff.
func forgetRequestsTxn(tx *Txn, cutoff time.Time) error {
	it, err := tx.Get(tableRequests, indexAt)
	if err != nil {
		return err
	}
	var old []*requestRow
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*requestRow)
		if !r.At.Before(cutoff) {
			break
		}
		old = append(old, r)
	}
	for _, r := range old {
		if err := tx.Delete(tableRequests, r); err != nil {
			return err
		}
	}
	return nil
}

// recentResults keeps the results of forwarded writes this replica
// applied lately, to answer a retry of one with the first answer. It is
// not state: a replica that restarted or restored a snapshot since
// answers a retry with OutcomeUnknown instead (the write is applied, its
// result is no longer known).
type recentResults struct {
	mu    sync.Mutex
	res   map[string]any
	order []string
}

// maxRecentResults bounds recentResults.
const maxRecentResults = 1 << 16

func (r *recentResults) put(id string, res any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.res == nil {
		r.res = make(map[string]any)
	}
	r.res[id] = res
	r.order = append(r.order, id)
	if len(r.order) > maxRecentResults {
		drop := len(r.order) - maxRecentResults
		for _, old := range r.order[:drop] {
			delete(r.res, old)
		}
		r.order = append(r.order[:0:0], r.order[drop:]...)
	}
}

func (r *recentResults) get(id string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.res[id]
	return res, ok
}

// resolve turns the result of an applied entry into the write's result,
// remembering first results and answering duplicates with them.
func (r *recentResults) resolve(res any) any {
	switch v := res.(type) {
	case forwarded:
		r.put(v.id, v.res)
		return v.res
	case duplicate:
		if first, ok := r.get(v.id); ok {
			return first
		}
		return artmesh.E(artmesh.Op("catalog.Forwarded"), artmesh.OutcomeUnknown,
			"the write was applied by an earlier attempt, but its result is no longer known here; read the state to see it")
	}
	return res
}
