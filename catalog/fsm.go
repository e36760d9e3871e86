package catalog

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// stateFile is the name of the state file in the catalog's folder.
const stateFile = "catalog.db"

// fsm is the catalog's Raft state machine (a raft.BatchingFSM). Raft calls
// ApplyBatch, Snapshot and Restore from one goroutine; reads go to the
// current store from any goroutine.
type fsm struct {
	dir string // the folder of the state file
	// mu guards the open transaction and the store's replacement: held by
	// ApplyBatch, Snapshot, Restore, close and the flusher.
	mu     sync.Mutex
	open   *openBatch    // the open write transaction (see group commit)
	window time.Duration // how long a transaction stays open; 0: commit each batch
	kick   chan struct{} // wakes the flusher
	stop   chan struct{} // closed by stopRetrying
	// stopOnce closes stop once.
	stopOnce sync.Once
	// broken is set when a commit that kept failing gave up because the
	// state machine is closing: from then on nothing is written, so the
	// state file's applied index stays below the entries it lacks and the
	// next start applies them again from the log.
	broken bool
	// flusherDone is closed when the flusher returns (nil: not started).
	flusherDone chan struct{}

	st atomic.Pointer[store]
	// retireAfter is how long a store that a restore replaced stays open
	// (see retire); retiring counts the stores waiting to be closed.
	retireAfter time.Duration
	retiring    sync.WaitGroup
	applied     atomic.Uint64 // index of the last log entry applied (or restored)
	watch       *watch        // publishes each applied index
	// log receives the rejected entries; nil discards them.
	log *slog.Logger
	// rejected counts the malformed entries applied as no-ops since the
	// process started (not state: a restart or restore keeps it).
	rejected atomic.Uint64
}

var _ raft.BatchingFSM = (*fsm)(nil)

// newFSM returns a state machine with the state of the state file in dir
// (an empty state if there is none).
func newFSM(dir string) (*fsm, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("catalog: create %s: %w", dir, err)
	}
	// A restore cut short leaves its file behind.
	if err := removeFile(filepath.Join(dir, stateFile+".restore")); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	s, err := openStore(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	f := &fsm{dir: dir, watch: newWatch(), kick: make(chan struct{}, 1), stop: make(chan struct{}), retireAfter: retireAfter}
	f.st.Store(s)
	index := s.applied()
	f.applied.Store(index)
	f.watch.reset(index)
	return f, nil
}

// startFlusher makes batches stay open for window (see group commit) and
// starts the goroutine that commits them; close stops it.
func (f *fsm) startFlusher(window time.Duration) {
	if window <= 0 || f.flusherDone != nil {
		return
	}
	f.window = window
	f.flusherDone = make(chan struct{})
	go f.runFlusher()
}

// close commits what is open, stops the flusher and closes the state
// file(s).
func (f *fsm) close() error {
	f.stopRetrying()
	f.mu.Lock()
	f.commitLocked() // one try: the state machine is closing
	f.mu.Unlock()
	if f.flusherDone != nil {
		<-f.flusherDone
	}
	f.retiring.Wait() // stop, closed above, ends their waits
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	if s := f.st.Load(); s != nil {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// stopRetrying makes a commit that keeps failing give up, and the
// flusher stop: the state machine is closing. It takes no lock, since the
// failing commit holds mu.
func (f *fsm) stopRetrying() {
	f.stopOnce.Do(func() { close(f.stop) })
}

// heldIndex returns the index of the last entry applied, committed or in
// the open transaction (which readers see once it commits).
func (f *fsm) heldIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open != nil {
		return f.open.last
	}
	return f.applied.Load()
}

// state returns the current state.
func (f *fsm) state() *store { return f.st.Load() }

// Apply applies one committed command. Its result, the write's value or an
// *artmesh.Error for a broken rule, is the future's Response on the node
// that proposed it.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed log entries in one write transaction of the
// state file, committed with the index of the last entry: one commit (and
// its fsync) per batch. Entries the state already holds (after a restart,
// or a snapshot at a later index than Raft's) are skipped. Each command
// checks its rules before writing, so a command that breaks one changes
// nothing while the others of the batch take effect. Should the database
// itself fail within a batch, or an entry be malformed, the batch starts
// over with one transaction per command, so that only the failing command
// is lost (on every replica alike) and the others apply as they would
// alone.
//
// A malformed entry (see errMalformedEntry) never stops the state
// machine: it changes nothing, its result is an Invalid error, and it is
// logged and counted (Catalog.RejectedEntries).
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		for i := range results {
			results[i] = artmesh.E(artmesh.Op("catalog.apply"), artmesh.Unavailable, "the catalog is closing")
		}
		return results
	}
	held := f.applied.Load()
	if f.open != nil {
		held = f.open.last
	}
	skip := 0
	for skip < len(logs) && logs[skip].Index <= held {
		skip++
	}
	if skip == len(logs) {
		return results
	}
	f.applyLocked(logs[skip:], results[skip:])
	return results
}

// apply applies logs, whatever their indexes, and commits them.
func (f *fsm) apply(logs []*raft.Log, results []any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applyLocked(logs, results)
	f.commitLocked()
}

// Group commit. The batches Raft hands over are applied in one open write
// transaction, committed (with its fsyncs) once it has been open for the
// commit window, by the next batch or by the flusher (see runFlusher): a
// commit costs about the same for one entry as for hundreds, and under
// load Raft hands over many small batches back to back. Readers see a
// batch once it is committed, when the applied index (Catalog.
// AppliedIndex) and the watch move on; a write waits for that before it
// answers (Catalog.awaitResponse), so an agent reads what it wrote. With
// no window every batch commits at once.

// openBatch is the open write transaction and what its batches changed.
type openBatch struct {
	tx    *Txn
	logs  []*raft.Log // applied in tx, in order
	last  uint64      // index of the last entry applied in tx
	began time.Time
	// done is how many of tx's changes have been folded into the
	// derived tables and cids.
	done    int
	cids    cidSet
	topics  Topic
	events  *eventLog // the event log as of tx
	evs     bool      // whether events changes it
	members bool      // whether a member row changed
}

// maxOpenEntries bounds the entries of one open transaction.
const maxOpenEntries = 4096

// applyLocked applies logs in the open transaction (opening one if need
// be) and commits it if its window has passed. A batch that fails as a
// whole (an entry malformed, or the database failing) is applied again
// entry by entry, each in its own transaction, so that only the failing
// entry is lost, on every replica alike.
func (f *fsm) applyLocked(logs []*raft.Log, results []any) {
	if !f.applyOpen(logs, results) {
		f.recover(logs, results)
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
	if f.open != nil {
		f.open.topics |= topics
		if f.window == 0 || len(f.open.logs) >= maxOpenEntries || time.Since(f.open.began) >= f.window {
			f.commitLocked()
		} else {
			select {
			case f.kick <- struct{}{}:
			default:
			}
		}
	} else {
		f.watch.publish(f.applied.Load(), topics, nil)
	}
}

// applyOpen applies the commands of logs in the open transaction and puts
// their results in results. It returns false if an entry was malformed or
// the database failed: the open transaction then holds part of the batch,
// and recover must follow.
func (f *fsm) applyOpen(logs []*raft.Log, results []any) bool {
	s := f.state()
	if f.open == nil {
		tx := s.db.Txn(true)
		if tx.err != nil {
			return false
		}
		tx.TrackChanges()
		f.open = &openBatch{tx: tx, began: time.Now(), events: s.eventLog()}
	}
	ob := f.open
	var events []*Event
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		res, ev := applyEntry(ob.tx, l)
		if err, ok := res.(error); ok && (artmesh.KindOf(err) == artmesh.Other || isMalformed(err)) {
			results[i] = res
			return false
		}
		if ev != nil {
			events = append(events, ev)
		}
		results[i] = res
	}
	changes := ob.tx.Changes()[ob.done:]
	factored, err := refreshReplicasTxn(ob.tx, changes)
	if err != nil {
		return false
	}
	next := ob.events.with(events)
	if err := persistEvents(ob.tx, ob.events, next, events); err != nil {
		return false
	}
	last := logs[len(logs)-1].Index
	if err := ob.tx.setApplied(last); err != nil {
		return false
	}
	ob.cids.addChanges(changes)
	for _, c := range factored {
		ob.cids.add(c)
	}
	ob.done = len(ob.tx.Changes())
	ob.events, ob.evs = next, ob.evs || len(events) > 0
	ob.members = ob.members || slices.ContainsFunc(changes, func(ch Change) bool { return ch.Table == tableMembers })
	ob.logs = append(ob.logs, logs...)
	ob.last = last
	for i := range results {
		results[i] = s.recent.resolve(results[i])
	}
	return true
}

// recover handles a batch that failed as a whole: the open transaction is
// thrown away, the batches before it in that transaction are applied and
// committed again (as they were: the state machine is deterministic, and
// their results have been handed over), then each entry of the batch is
// applied and committed alone. An entry that fails alone has its error as
// its result and changes nothing but the applied index.
func (f *fsm) recover(logs []*raft.Log, results []any) {
	var before []*raft.Log
	var topics Topic
	if f.open != nil {
		before, topics = f.open.logs, f.open.topics
		f.open.tx.Abort()
		f.open = nil
	}
	if len(before) > 0 {
		ok := f.applyOpen(before, make([]any, len(before)))
		if f.open != nil {
			f.open.topics = topics
		}
		if !ok {
			// They applied before; the database fails now.
			f.abortOpen()
			for _, l := range before {
				f.applyAlone(l, new(any))
			}
		} else {
			f.commitLocked()
		}
	}
	for i, l := range logs {
		f.applyAlone(l, &results[i])
	}
}

// applyAlone applies one entry in its own transaction and commits it.
func (f *fsm) applyAlone(l *raft.Log, result *any) {
	res := []any{nil}
	if f.applyOpen([]*raft.Log{l}, res) {
		*result = res[0]
		f.commitLocked()
		return
	}
	*result = res[0]
	if *result == nil {
		*result = internal("catalog.apply", errors.New("the catalog state could not be written"))
	}
	f.abortOpen()
	if f.broken {
		return
	}
	// Only the applied index moves.
	tx := f.state().db.Txn(true)
	if tx.err == nil && tx.setApplied(l.Index) == nil && tx.Commit() == nil {
		f.applied.Store(l.Index)
	}
	tx.Abort()
}

// abortOpen throws the open transaction away.
func (f *fsm) abortOpen() {
	if f.open != nil {
		f.open.tx.Abort()
		f.open = nil
	}
}

// commitLocked commits the open transaction, if any, and publishes what
// it changed. A commit that fails (a full disk, an I/O error) is tried
// again, the entries applied anew, until it succeeds or the state machine
// closes: a replica stops rather than skip entries (once it closes, the
// entries are applied again at the next start, from the log, since the
// state file's applied index is older than them). It reports whether
// everything applied is committed; once it gives up, the state machine
// is broken and writes nothing more.
func (f *fsm) commitLocked() bool {
	ob := f.open
	if ob == nil {
		return !f.broken
	}
	wait := 50 * time.Millisecond
	for {
		err := ob.tx.Commit()
		if err == nil {
			break
		}
		ob.tx.Abort()
		f.open = nil
		if f.log != nil {
			f.log.Error("catalog: cannot write the catalog state; trying again", "index", ob.last, "err", err)
		}
		select {
		case <-f.stop:
			f.broken = true
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
		if !f.applyOpen(ob.logs, make([]any, len(ob.logs))) {
			f.abortOpen()
			continue
		}
		f.open.topics = ob.topics
		ob = f.open
	}
	f.open = nil
	s := f.state()
	if ob.evs {
		s.evlog.Store(ob.events)
	}
	if ob.members {
		s.refreshMemberLevel()
	}
	f.applied.Store(ob.last)
	f.watch.publish(ob.last, ob.topics, ob.cids.list())
	return true
}

// runFlusher commits the open transaction once its window has passed,
// when no batch came to do it. It returns when the state machine closes.
func (f *fsm) runFlusher() {
	defer close(f.flusherDone)
	for {
		select {
		case <-f.stop:
			return
		case <-f.kick:
		}
		select {
		case <-f.stop:
			return
		case <-time.After(f.window):
		}
		f.mu.Lock()
		if f.open != nil && time.Since(f.open.began) >= f.window {
			f.commitLocked()
		}
		f.mu.Unlock()
	}
}

// reject logs and counts a malformed entry that was applied as a no-op.
func (f *fsm) reject(l *raft.Log, err error) {
	f.rejected.Add(1)
	if f.log != nil {
		f.log.Error("catalog: a malformed log entry was applied as a no-op",
			"index", l.Index, "type", firstByte(l.Data), "bytes", len(l.Data), "err", err)
	}
}

// errApplyPanicked marks the result of an entry whose apply panicked (a
// bug: entries that do not decode are errors, not panics).
var errApplyPanicked = errors.New("applying it panicked")

// applyEntry applies one log entry within tx and returns its result and
// the event it made, if any. A failure to record the event is the result.
// A panic while applying it, which no entry should cause, is the last line
// of defence: the entry is malformed, applyOpen reports the batch failed,
// and recover throws tx away and applies each entry alone.
func applyEntry(tx *Txn, l *raft.Log) (res any, ev *Event) {
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

func (c *cidSet) addChanges(changes []Change) {
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

// Snapshots. The state lives in its file, committed with the index of the
// last entry applied, so a snapshot that Raft takes to compact its log
// need not copy it: it records that index and refers to the file (a
// reference snapshot, written in microseconds whatever the catalog's
// size). When Raft sends a snapshot to a member that is too far behind,
// the snapshot store makes a full one at that moment (see snapStore): the
// header and the state file as of one read transaction, streamed at the
// speed of the disk, which the member installs as its file. A state at a
// later index than the snapshot's is fine: the state machine skips the
// entries its state already holds.
//
// The format: the magic text, a format byte, the index of the last entry
// the state holds as 8 big-endian bytes, then
//   - snapshotRecords (1, before the state file): typed JSON records,
//     each a record type byte, the length of its JSON as a uvarint and the
//     JSON of a table row, then an end record (its type byte alone);
//   - snapshotFile (2): the length of the state file as 8 big-endian
//     bytes, its bytes, and their CRC-32C (Castagnoli) as 4 big-endian
//     bytes, so that a cut-off or damaged copy is refused before use;
//   - snapshotRef (3): nothing: the state is this node's file;
//   - snapshotRecovered (4): as snapshotFile, written by RecoverSoleVoter,
//     whose state differs from what the log gives at its own index (the
//     other members are removed from it): it replaces a state that holds
//     its index too.
//
// Record types, like command types, never change.
const (
	snapshotMagic     = "artmesh-catalog\n"
	snapshotRecords   = 1
	snapshotFile      = 2
	snapshotRef       = 3
	snapshotRecovered = 4

	recordEnd      byte = 0
	recordArtifact byte = 1
	recordVersion  byte = 2
	recordAgent    byte = 3
	recordGroup    byte = 4
)

// snapshotHeaderLen is the length of a snapshot's header.
const snapshotHeaderLen = len(snapshotMagic) + 1 + 8

// snapshotHeader returns the header of a snapshot of a format at index.
func snapshotHeader(format byte, index uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(snapshotMagic), format), index)
}

// parseSnapshotHeader returns the format and index of a header.
func parseSnapshotHeader(hdr []byte) (format byte, index uint64, err error) {
	if len(hdr) != snapshotHeaderLen || string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return 0, 0, errors.New("not a catalog snapshot")
	}
	format = hdr[len(snapshotMagic)]
	if format < snapshotRecords || format > snapshotRecovered {
		return 0, 0, fmt.Errorf("unknown snapshot format %d", format)
	}
	return format, binary.BigEndian.Uint64(hdr[len(snapshotMagic)+1:]), nil
}

// Snapshot returns a reference snapshot of the state as applied now.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.commitLocked() {
		return nil, errors.New("catalog: snapshot: the catalog state cannot be written")
	}
	return refSnapshot{index: f.applied.Load()}, nil
}

// refSnapshot is a reference snapshot (see snapshotRef).
type refSnapshot struct{ index uint64 }

// Persist writes the snapshot's header.
func (s refSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(snapshotHeader(snapshotRef, s.index)); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("catalog: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds nothing.
func (refSnapshot) Release() {}

// Restore makes the state the one of a snapshot. A state that already
// holds the snapshot's index is kept (the usual case at start, where Raft
// restores its latest snapshot, which refers to this state). Otherwise the
// snapshot's state is written to a new file, which replaces the state
// file; readers see either the old state or the new one.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commitLocked()
	if err := f.restore(bufio.NewReaderSize(rc, 64<<10)); err != nil {
		return fmt.Errorf("catalog: restore snapshot: %w", err)
	}
	return nil
}

func (f *fsm) restore(r *bufio.Reader) error {
	hdr := make([]byte, snapshotHeaderLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("read header: %w", noEOF(err))
	}
	format, index, err := parseSnapshotHeader(hdr)
	if err != nil {
		return err
	}
	if have := f.state().applied(); have > index || (have == index && format != snapshotRecovered) {
		// The state already holds what the snapshot holds.
		f.applied.Store(have)
		f.watch.reset(have)
		return nil
	}
	tmp := filepath.Join(f.dir, stateFile+".restore")
	if err := removeFile(tmp); err != nil {
		return err
	}
	defer removeFile(tmp)
	switch format {
	case snapshotRef:
		return fmt.Errorf("the snapshot at index %d refers to the state file, which holds only up to index %d: the state file was lost or replaced", index, f.state().applied())
	case snapshotFile, snapshotRecovered:
		if err := readStateFile(tmp, r); err != nil {
			return err
		}
	case snapshotRecords:
		if err := readRecords(tmp, r, index); err != nil {
			return err
		}
	}
	s, err := openStore(tmp)
	if err != nil {
		return err
	}
	got := s.applied()
	s.close()
	if got < index {
		return fmt.Errorf("the snapshot's state holds index %d, its header says %d", got, index)
	}
	return f.replaceState(tmp)
}

// writeStateFile writes what r holds to a new file at path, durably.
func writeStateFile(path string, r io.Reader) error {
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(file, r)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// castagnoli is the CRC-32C table of full snapshots.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readStateFile writes the state file of a full snapshot (after its
// header) to path, checking its length and checksum.
func readStateFile(path string, r io.Reader) error {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return fmt.Errorf("read the state's length: %w", noEOF(err))
	}
	size := binary.BigEndian.Uint64(n[:])
	crc := crc32.New(castagnoli)
	body := io.TeeReader(io.LimitReader(r, int64(size)), crc)
	counted := &countReader{r: body}
	if err := writeStateFile(path, counted); err != nil {
		return err
	}
	if uint64(counted.n) != size {
		return fmt.Errorf("the snapshot's state is cut off: %d bytes of %d: %w", counted.n, size, io.ErrUnexpectedEOF)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return fmt.Errorf("read the state's checksum: %w", noEOF(err))
	}
	if binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
		return errors.New("the snapshot's state does not match its checksum")
	}
	return nil
}

// countReader counts what it reads.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// replaceState makes the state file at tmp the state: it is renamed over
// the state file and opened, and the store of the old file is closed at
// the next replacement or at Close (a reader may have just taken it).
func (f *fsm) replaceState(tmp string) error {
	path := filepath.Join(f.dir, stateFile)
	// Opened before the rename, so that a file that cannot be opened
	// leaves the state as it was (the open store follows the rename).
	s, err := openStore(tmp)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("replace the state file: %w", err), s.close())
	}
	f.retire(f.st.Swap(s))
	index := s.applied()
	f.applied.Store(index)
	f.watch.reset(index)
	return syncDir(f.dir)
}

// retireAfter is how long a replaced store stays open by default: a
// reader that found it just before the replacement has begun its
// transaction long before, and bbolt's Close waits for the transactions
// still open (a snapshot being sent, a long list). Until it is closed,
// the replaced file, already unlinked, keeps its disk space and its map.
const retireAfter = 10 * time.Second

// retire closes old, a store a restore replaced, after f.retireAfter, or
// at once when the state machine closes.
func (f *fsm) retire(old *store) {
	if old == nil {
		return
	}
	f.retiring.Go(func() {
		t := time.NewTimer(f.retireAfter)
		defer t.Stop()
		select {
		case <-t.C:
		case <-f.stop:
		}
		_ = old.close()
	})
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// writeFullSnapshot writes a full snapshot of the state as it is now to w
// (see snapshotFile) and returns its length.
func (s *store) writeFullSnapshot(w io.Writer) (int64, error) {
	return s.writeFileSnapshot(w, snapshotFile)
}

// writeFileSnapshot writes the state file as a snapshot of format
// (snapshotFile or snapshotRecovered) to w and returns its length.
func (s *store) writeFileSnapshot(w io.Writer, format byte) (int64, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	if tx.err != nil {
		return 0, tx.err
	}
	hdr := binary.BigEndian.AppendUint64(snapshotHeader(format, tx.applied()), uint64(tx.btx.Size()))
	if _, err := w.Write(hdr); err != nil {
		return 0, err
	}
	crc := crc32.New(castagnoli)
	n, err := tx.btx.WriteTo(io.MultiWriter(w, crc))
	if err != nil {
		return 0, err
	}
	if n != tx.btx.Size() {
		return 0, fmt.Errorf("wrote %d bytes of the state, not %d", n, tx.btx.Size())
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return 0, err
	}
	return int64(len(hdr)) + n + 4, nil
}

// maxRecordBytes bounds one snapshot record, as a guard against a corrupt
// length.
const maxRecordBytes = 64 << 20

// restoreBatch is how many records readRecords inserts per transaction.
const restoreBatch = 8192

// readRecords builds a state file at path from the records of a snapshot
// (format snapshotRecords: the header has been read) at index.
func readRecords(path string, r *bufio.Reader, index uint64) error {
	s, err := openStore(path)
	if err != nil {
		return err
	}
	defer s.close()
	tx := s.db.Txn(true)
	defer func() { tx.Abort() }()
	owned := make(map[artmesh.AgentID]int) // the derived owned table
	events := &eventLog{}
	var evs []*Event
	n := 0
	var data []byte
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("read record: %w", noEOF(err))
		}
		if typ == recordEnd {
			break
		}
		size, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("read record length: %w", noEOF(err))
		}
		if size > maxRecordBytes {
			return fmt.Errorf("record of %d bytes is too large", size)
		}
		if uint64(cap(data)) < size {
			data = make([]byte, size)
		}
		data = data[:size]
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("read record: %w", noEOF(err))
		}
		if typ == recordEventPage {
			p := &eventPage{}
			if err := json.Unmarshal(data, p); err != nil {
				return fmt.Errorf("decode event page record: %w", err)
			}
			if len(events.pages) == 0 {
				if err := tx.btx.Bucket(bucketMeta).Put(metaEventFloor, binary.BigEndian.AppendUint64(nil, p.PrevLast)); err != nil {
					return err
				}
			}
			events.pages = append(events.pages, p)
			evs = append(evs, p.Events...)
			continue
		}
		table := recordTable(typ)
		if table == "" {
			return fmt.Errorf("unknown record type %d", typ)
		}
		row, err := decodeRow(s.db.schema, table, data)
		if err != nil {
			return fmt.Errorf("decode %s record: %w", table, err)
		}
		if err := tx.Insert(table, row); err != nil {
			return fmt.Errorf("insert %s record: %w", table, err)
		}
		if a, ok := row.(*artifactRow); ok {
			owned[a.Owner]++
		}
		if n++; n%restoreBatch == 0 {
			if err := tx.Commit(); err != nil {
				return err
			}
			tx = s.db.Txn(true)
		}
	}
	for owner, n := range owned {
		if err := tx.Insert(tableOwned, &ownedRow{Owner: owner, Artifacts: n}); err != nil {
			return fmt.Errorf("count artifacts: %w", err)
		}
	}
	if err := deriveUsageTxn(tx); err != nil {
		return fmt.Errorf("count usage: %w", err)
	}
	if err := deriveReplicasTxn(tx); err != nil {
		return fmt.Errorf("index replicas: %w", err)
	}
	if err := persistEvents(tx, &eventLog{}, events, evs); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	if err := tx.setApplied(index); err != nil {
		return err
	}
	return tx.Commit()
}

// recordTable returns the table of a record type ("" for none).
func recordTable(typ byte) string {
	switch typ {
	case recordArtifact:
		return tableArtifacts
	case recordVersion:
		return tableVersions
	case recordAgent:
		return tableAgents
	case recordGroup:
		return tableGroups
	case recordUpload:
		return tableUploads
	case recordToken:
		return tableTokens
	case recordMember:
		return tableMembers
	case recordInvite:
		return tableInvites
	case recordPlacement:
		return tablePlacement
	case recordPolicy:
		return tablePolicy
	case recordPin:
		return tablePins
	case recordRequest:
		return tableRequests
	case recordFetching:
		return tableFetching
	}
	return ""
}

// noEOF turns an end of input inside a snapshot into an unexpected one.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
