package catalog

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// fsm is the catalog's Raft state machine (a raft.BatchingFSM). Raft calls
// ApplyBatch, Snapshot and Restore from one goroutine; reads go to the
// current store from any goroutine.
type fsm struct {
	st      atomic.Pointer[store]
	applied atomic.Uint64 // index of the last log entry applied (or restored)
	watch   *watch        // publishes each applied index
	// log receives the rejected entries; nil discards them.
	log *slog.Logger
	// rejected counts the malformed entries applied as no-ops since the
	// process started (not state: a restart or restore keeps it).
	rejected atomic.Uint64
}

var _ raft.BatchingFSM = (*fsm)(nil)

// newFSM returns a state machine with an empty state.
func newFSM() (*fsm, error) {
	s, err := newStore()
	if err != nil {
		return nil, err
	}
	f := &fsm{watch: newWatch()}
	f.st.Store(s)
	return f, nil
}

// state returns the current state.
func (f *fsm) state() *store { return f.st.Load() }

// Apply applies one committed command. Its result, the write's value or an
// *artmesh.Error for a broken rule, is the future's Response on the node
// that proposed it.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed log entries in one memdb write transaction,
// which costs a fraction of one transaction per entry (consecutive inserts
// share the copied radix tree nodes). Each command checks its rules before
// writing, so a command that breaks one changes nothing while the others
// of the batch take effect. Should the database itself fail within a
// batch, or an entry be malformed, the batch starts over with one
// transaction per command, so that only the failing command is lost (on
// every replica alike) and the others apply as they would alone.
//
// A malformed entry (see errMalformedEntry) never stops the state
// machine: it changes nothing, its result is an Invalid error, and it is
// logged and counted (Catalog.RejectedEntries).
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	if len(logs) == 0 {
		return results
	}
	s := f.state()
	var cids cidSet
	if !applyLogs(s, logs, results, &cids) {
		cids = cidSet{}
		for i := range logs {
			applyLogs(s, logs[i:i+1], results[i:i+1], &cids)
		}
	}
	var topics Topic
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		if isMalformed(results[i]) {
			f.reject(l, results[i].(error))
			continue
		}
		if len(l.Data) > 0 {
			topics |= topicOf(innerType(l.Data))
		}
	}
	last := logs[len(logs)-1].Index
	f.applied.Store(last)
	f.watch.publish(last, topics, cids.list())
	return results
}

// reject logs and counts a malformed entry that was applied as a no-op.
func (f *fsm) reject(l *raft.Log, err error) {
	f.rejected.Add(1)
	if f.log != nil {
		f.log.Error("catalog: a malformed log entry was applied as a no-op",
			"index", l.Index, "type", firstByte(l.Data), "bytes", len(l.Data), "err", err)
	}
}

// applyLogs applies the commands of logs to s in one transaction and puts
// their results in results. It returns false, having changed nothing, if
// the database failed, or an entry was malformed, within a batch of more
// than one entry; a single entry whose database write failed, or that is
// malformed, has that error as its result and changes nothing.
func applyLogs(s *store, logs []*raft.Log, results []any, cids *cidSet) bool {
	tx := s.db.Txn(true)
	defer tx.Abort()
	tx.TrackChanges()
	var events []*Event // published with the transaction
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		res, ev := applyEntry(tx, l)
		if err, ok := res.(error); ok && (artmesh.KindOf(err) == artmesh.Other || isMalformed(err)) {
			if len(logs) > 1 {
				return false
			}
			results[i] = res
			return true // tx is aborted
		}
		if ev != nil {
			events = append(events, ev)
		}
		results[i] = res
	}
	changes := tx.Changes()
	cids.addChanges(changes)
	factored, err := refreshReplicasTxn(tx, changes)
	if err != nil {
		if len(logs) > 1 {
			return false
		}
		results[0] = internal("catalog.refreshReplicas", err)
		return true // tx is aborted
	}
	for _, c := range factored {
		cids.add(c)
	}
	tx.Commit()
	if len(events) > 0 {
		s.evlog.Store(s.eventLog().with(events))
	}
	if slices.ContainsFunc(changes, func(ch memdb.Change) bool { return ch.Table == tableMembers }) {
		s.refreshMemberLevel()
	}
	for i := range results {
		results[i] = s.recent.resolve(results[i])
	}
	return true
}

// errApplyPanicked marks the result of an entry whose apply panicked (a
// bug: entries that do not decode are errors, not panics).
var errApplyPanicked = errors.New("applying it panicked")

// applyEntry applies one log entry within tx and returns its result and
// the event it made, if any. A failure to record the event is the result.
// A panic while applying it, which no entry should cause, is the last line
// of defence: the entry is malformed, and applyLogs discards tx.
func applyEntry(tx *memdb.Txn, l *raft.Log) (res any, ev *Event) {
	defer func() {
		if r := recover(); r != nil {
			t := commandType(max(firstByte(l.Data), 0))
			res, ev = artmesh.E(artmesh.Op("catalog."+t.String()), artmesh.Invalid,
				fmt.Errorf("%w: %w: %v", errMalformedEntry, errApplyPanicked, r)), nil
		}
	}()
	before, eventful := beforeEvent(tx, l.Data)
	grants, granting := beforeGrants(tx, l.Data)
	res = applyCommand(tx, l.Data)
	if _, broke := res.(error); granting && !broke && !isDuplicate(res) {
		if err := stampGrants(tx, l.Index, grants); err != nil {
			return internal(artmesh.Op("catalog."+innerType(l.Data).String()), err), nil
		}
	}
	if _, broke := res.(error); eventful && !broke && !isDuplicate(res) {
		var err error
		if ev, err = eventFor(tx, l, before, res); err != nil {
			return err, nil
		}
	}
	return res, ev
}

// cidSet collects the root CIDs whose versions, placement or pins a batch
// changed, for the watch.
type cidSet map[string]struct{}

func (c *cidSet) addChanges(changes memdb.Changes) {
	for _, ch := range changes {
		for _, obj := range []any{ch.Before, ch.After} {
			var cid string
			switch r := obj.(type) {
			case *versionRow:
				cid = r.CID
			case *Placement:
				cid = r.CID
			case *Pin:
				cid = r.CID
			}
			if cid != "" {
				if *c == nil {
					*c = make(cidSet)
				}
				(*c)[cid] = struct{}{}
			}
		}
	}
}

func (c cidSet) list() []string {
	if len(c) == 0 {
		return nil
	}
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// Snapshot captures the current state: a memdb read transaction is an
// immutable view, so writes may go on while Persist writes it out.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	st := f.state()
	return &fsmSnapshot{tx: st.db.Txn(false), events: st.eventLog(), index: f.applied.Load()}, nil
}

// Restore replaces the state with the one of a snapshot: it builds a new
// store from the records and swaps it in, so readers see either the old
// state or the new one.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, index, err := readSnapshot(bufio.NewReaderSize(rc, 64<<10))
	if err != nil {
		return fmt.Errorf("catalog: restore snapshot: %w", err)
	}
	f.st.Store(s)
	f.applied.Store(index)
	f.watch.reset(index)
	return nil
}

// The snapshot format: the magic text, the format version byte, the
// applied index as 8 big-endian bytes, then records, each a record type
// byte, the length of its JSON as a uvarint, and the JSON of a table row;
// last, an end record (its type byte alone), so that a cut-off snapshot is
// detected. Record types, like command types, never change.
const (
	snapshotMagic   = "artmesh-catalog\n"
	snapshotVersion = 1

	recordEnd      byte = 0
	recordArtifact byte = 1
	recordVersion  byte = 2
	recordAgent    byte = 3
	recordGroup    byte = 4
)

// restoreBatch is how many records Restore inserts per transaction, to
// bound the bookkeeping of one memdb transaction.
const restoreBatch = 8192

// fsmSnapshot is a point-in-time view of the state being written out.
type fsmSnapshot struct {
	tx     *memdb.Txn
	events *eventLog // as of the same batch as tx: both are taken on the state machine's goroutine
	index  uint64
}

// Persist writes the snapshot to sink as typed records.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("catalog: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release ends the snapshot's read transaction.
func (s *fsmSnapshot) Release() { s.tx.Abort() }

func (s *fsmSnapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	hdr := append([]byte(snapshotMagic), snapshotVersion)
	if _, err := bw.Write(binary.BigEndian.AppendUint64(hdr, s.index)); err != nil {
		return err
	}
	tables := []struct {
		name string
		typ  byte
	}{
		{tableAgents, recordAgent},
		{tableGroups, recordGroup},
		{tableArtifacts, recordArtifact},
		{tableVersions, recordVersion},
		{tableUploads, recordUpload},
		{tableTokens, recordToken},
		{tableMembers, recordMember},
		{tableInvites, recordInvite},
		{tablePlacement, recordPlacement},
		{tablePolicy, recordPolicy},
		{tablePins, recordPin},
		{tableRequests, recordRequest},
		{tableFetching, recordFetching},
	}
	var lenBuf [binary.MaxVarintLen64]byte
	record := func(typ byte, what string, row any) error {
		data, err := json.Marshal(row)
		if err != nil {
			return fmt.Errorf("encode %s row: %w", what, err)
		}
		if err := bw.WriteByte(typ); err != nil {
			return err
		}
		if _, err := bw.Write(binary.AppendUvarint(lenBuf[:0], uint64(len(data)))); err != nil {
			return err
		}
		_, err = bw.Write(data)
		return err
	}
	for _, t := range tables {
		it, err := s.tx.Get(t.name, indexID)
		if err != nil {
			return err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if err := record(t.typ, t.name, raw); err != nil {
				return err
			}
		}
	}
	for _, p := range s.events.pages {
		if err := record(recordEventPage, "event page", p); err != nil {
			return err
		}
	}
	if err := bw.WriteByte(recordEnd); err != nil {
		return err
	}
	return bw.Flush()
}

// maxRecordBytes bounds one snapshot record, as a guard against a corrupt
// length.
const maxRecordBytes = 64 << 20

// readSnapshot builds a new store from a snapshot written by Persist and
// returns it with the snapshot's applied index.
func readSnapshot(r *bufio.Reader) (*store, uint64, error) {
	hdr := make([]byte, len(snapshotMagic)+1+8)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, 0, fmt.Errorf("read header: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return nil, 0, errors.New("not a catalog snapshot")
	}
	if v := hdr[len(snapshotMagic)]; v != snapshotVersion {
		return nil, 0, fmt.Errorf("unknown snapshot format version %d", v)
	}
	index := binary.BigEndian.Uint64(hdr[len(snapshotMagic)+1:])

	s, err := newStore()
	if err != nil {
		return nil, 0, err
	}
	tx := s.db.Txn(true)
	defer func() { tx.Abort() }()
	owned := make(map[artmesh.AgentID]int) // the derived owned table
	events := &eventLog{}
	n := 0
	var data []byte
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return nil, 0, fmt.Errorf("read record: %w", noEOF(err))
		}
		if typ == recordEnd {
			break
		}
		size, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, 0, fmt.Errorf("read record length: %w", noEOF(err))
		}
		if size > maxRecordBytes {
			return nil, 0, fmt.Errorf("record of %d bytes is too large", size)
		}
		if uint64(cap(data)) < size {
			data = make([]byte, size)
		}
		data = data[:size]
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, 0, fmt.Errorf("read record: %w", noEOF(err))
		}
		if typ == recordEventPage {
			p := &eventPage{}
			if err := json.Unmarshal(data, p); err != nil {
				return nil, 0, fmt.Errorf("decode event page record: %w", err)
			}
			events.pages = append(events.pages, p)
			continue
		}
		var table string
		var row any
		switch typ {
		case recordArtifact:
			table, row = tableArtifacts, &artifactRow{}
		case recordVersion:
			table, row = tableVersions, &versionRow{}
		case recordAgent:
			table, row = tableAgents, &agentRow{}
		case recordGroup:
			table, row = tableGroups, &groupRow{}
		case recordUpload:
			table, row = tableUploads, &Upload{}
		case recordToken:
			table, row = tableTokens, &Token{}
		case recordMember:
			table, row = tableMembers, &Member{}
		case recordInvite:
			table, row = tableInvites, &Invite{}
		case recordPlacement:
			table, row = tablePlacement, &Placement{}
		case recordPolicy:
			table, row = tablePolicy, &policyRow{}
		case recordPin:
			table, row = tablePins, &Pin{}
		case recordRequest:
			table, row = tableRequests, &requestRow{}
		case recordFetching:
			table, row = tableFetching, &Fetching{}
		default:
			return nil, 0, fmt.Errorf("unknown record type %d", typ)
		}
		if err := json.Unmarshal(data, row); err != nil {
			return nil, 0, fmt.Errorf("decode %s record: %w", table, err)
		}
		if err := tx.Insert(table, row); err != nil {
			return nil, 0, fmt.Errorf("insert %s record: %w", table, err)
		}
		if a, ok := row.(*artifactRow); ok {
			owned[a.Owner]++
		}
		if n++; n%restoreBatch == 0 {
			tx.Commit()
			tx = s.db.Txn(true)
		}
	}
	for owner, n := range owned {
		if err := tx.Insert(tableOwned, &ownedRow{Owner: owner, Artifacts: n}); err != nil {
			return nil, 0, fmt.Errorf("count artifacts: %w", err)
		}
	}
	if err := deriveUsageTxn(tx); err != nil {
		return nil, 0, fmt.Errorf("count usage: %w", err)
	}
	if err := deriveReplicasTxn(tx); err != nil {
		return nil, 0, fmt.Errorf("index replicas: %w", err)
	}
	tx.Commit()
	s.evlog.Store(events)
	s.refreshMemberLevel()
	return s, index, nil
}

// noEOF turns an end of input inside a snapshot into an unexpected one.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
