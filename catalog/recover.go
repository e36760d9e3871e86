package catalog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/artmesh/artmesh"
)

// Recovery is what RecoverSoleVoter did.
type Recovery struct {
	// Servers is Raft's configuration before: the server ids.
	Servers []string `json:"servers"`
	// Dropped are the members taken out of the member table: every
	// member but this node.
	Dropped []string `json:"dropped"`
	// LastIndex is the log index the recovered state ends at: everything
	// this node had written to its log, applied.
	LastIndex uint64 `json:"last_index"`
}

// RecoverSoleVoter is the outage recovery of a mesh whose voters can
// never form a majority again: with Raft stopped (no Catalog open on
// cfg.Dir), it makes cfg.ServerID the only server of its catalog, keeping
// every entry its log holds, as hashicorp/raft's RecoverCluster (and
// Consul's peers.json) does. The other members are taken out of the
// member table by entries appended to the log first (so their admission
// ends and their join agents' keys are revoked, as a removal does), then
// the log is compacted into a snapshot whose configuration lists this
// server alone as a voter. The next Open starts from that snapshot and
// leads on its own.
//
// Entries that were written to this node's log but never committed are
// applied too: there is nobody left to ask. Writes that the lost voters
// committed without this node are lost.
func RecoverSoleVoter(ctx context.Context, cfg Config) (Recovery, error) {
	const op = artmesh.Op("catalog.RecoverSoleVoter")
	var out Recovery
	if err := cfg.Validate(); err != nil {
		return out, err
	}
	if err := ctx.Err(); err != nil {
		return out, artmesh.E(op, artmesh.Unavailable, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	walDir := filepath.Join(cfg.Dir, "wal")
	if _, err := os.Stat(walDir); err != nil {
		return out, artmesh.E(op, artmesh.NotFound, fmt.Sprintf("no catalog state in %s to recover", cfg.Dir), err)
	}
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	w, err := wal.Open(walDir, wal.WithMetaStore(meta), wal.WithLogger(newHCLog(logger, "wal")))
	if err != nil {
		return out, artmesh.E(op, fmt.Errorf("open raft log %s: %w", walDir, err))
	}
	defer w.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotRetain, newHCLog(logger, "snapshot"))
	if err != nil {
		return out, artmesh.E(op, fmt.Errorf("open snapshots in %s: %w", cfg.Dir, err))
	}
	has, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		return out, artmesh.E(op, fmt.Errorf("read raft state: %w", err))
	}
	if !has {
		return out, artmesh.E(op, artmesh.NotFound, fmt.Sprintf("no catalog state in %s to recover", cfg.Dir))
	}

	// Replay what this node has, to learn the members and the last
	// configuration. The replay applies the whole log, committed or not,
	// so it runs on a copy of the state file in a scratch folder, and the
	// recovery's snapshot is a full one (see recoveringFSM): the state
	// file is never written. A recovery cut short at any point leaves
	// either the catalog as it was (no new snapshot) or a newest snapshot
	// that holds the recovered state, which the next start restores.
	scratch := filepath.Join(cfg.Dir, recoverDir)
	if err := os.RemoveAll(scratch); err != nil {
		return out, artmesh.E(op, fmt.Errorf("remove what a recovery cut short left: %w", err))
	}
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return out, artmesh.E(op, err)
	}
	defer os.RemoveAll(scratch)
	if err := copyFile(filepath.Join(cfg.Dir, stateFile), filepath.Join(scratch, stateFile)); err != nil {
		return out, artmesh.E(op, fmt.Errorf("copy the catalog state: %w", err))
	}
	f, err := newFSM(scratch)
	if err != nil {
		return out, artmesh.E(op, err)
	}
	defer f.close()
	conf, last, err := replay(f, w, snaps)
	if err != nil {
		return out, artmesh.E(op, err)
	}
	self := raft.ServerID(cfg.ServerID)
	for _, s := range conf.Servers {
		out.Servers = append(out.Servers, string(s.ID))
	}
	if !slices.ContainsFunc(conf.Servers, func(s raft.Server) bool { return s.ID == self }) {
		return out, artmesh.E(op, artmesh.Conflict, fmt.Sprintf("this node (%s) is not in its catalog's Raft configuration: it was removed from the mesh, and cannot recover it", cfg.ServerID))
	}
	members, err := (&Catalog{fsm: f}).Members()
	if err != nil {
		return out, artmesh.E(op, err)
	}

	// Take the other members out. The commands are applied to the state
	// the recovery snapshots, after the log, and never written to the log:
	// a failed recovery leaves the log as it was, and no entry is made up
	// at a term that the lost voters may have used for other entries.
	var drops [][]byte
	for _, m := range members {
		if m.PeerID == cfg.ServerID {
			continue
		}
		data, err := encodeCommand(deleteMemberCmd{PeerID: m.PeerID})
		if err != nil {
			return out, artmesh.E(op, err)
		}
		drops = append(drops, data)
		out.Dropped = append(out.Dropped, m.PeerID)
	}
	out.LastIndex = last.Index

	rc := cfg.raftConfig(logger)
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.ServerID))
	defer trans.Close()
	alone := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: self, Address: raft.ServerAddress(cfg.ServerID)}}}
	rf := &recoveringFSM{fsm: f, drops: drops, at: last}
	if err := raft.RecoverCluster(rc, rf, w, w, snaps, trans, alone); err != nil {
		return out, artmesh.E(op, fmt.Errorf("recover the catalog's Raft state: %w", err))
	}
	return out, nil
}

// copyFile copies the file at from to a new file at to, durably; a
// missing from copies nothing.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if errors.Is(err, os.ErrNotExist) {
		return removeFile(to)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	if err := removeFile(to); err != nil {
		return err
	}
	return writeStateFile(to, src)
}

// recoverDir is the scratch folder, in the catalog's folder, of a
// recovery's copy of the state.
const recoverDir = "recover.tmp"

// recoveringFSM is the state machine RecoverCluster replays the log into,
// on a copy of the state: before its snapshot is taken, the removal of
// the other members is applied to it, at the index of the last entry. Its
// snapshot is full (snapshotRecovered), not a reference to its state
// file, which is removed once the recovery ends; it replaces the state
// file at the next start, although that holds the same index.
type recoveringFSM struct {
	*fsm
	drops [][]byte
	at    logPos
}

// Snapshot applies the removals, then snapshots the whole state.
func (r *recoveringFSM) Snapshot() (raft.FSMSnapshot, error) {
	for _, d := range r.drops {
		// Applied at an index the state holds already: not skipped.
		r.fsm.apply([]*raft.Log{{Index: r.at.Index, Term: r.at.Term, Type: raft.LogCommand, Data: d, AppendedAt: time.Now()}}, make([]any, 1))
	}
	r.drops = nil
	// The state machine's own snapshot commits the removals; the
	// reference it returns is not used.
	if _, err := r.fsm.Snapshot(); err != nil {
		return nil, err
	}
	return recoveredSnapshot{s: r.fsm.state()}, nil
}

// recoveredSnapshot is a recovered state's full snapshot (see
// snapshotRecovered).
type recoveredSnapshot struct{ s *store }

// Persist writes the whole state to sink.
func (fs recoveredSnapshot) Persist(sink raft.SnapshotSink) error {
	bw := bufio.NewWriterSize(sink, 1<<20)
	_, err := fs.s.writeFileSnapshot(bw, snapshotRecovered)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("catalog: persist a full snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the state stays with its fsm.
func (recoveredSnapshot) Release() {}

// logPos is a log entry's index and term.
type logPos struct{ Index, Term uint64 }

// replay restores f from the newest snapshot that opens and applies the
// log after it, as Raft does at start, and returns the last configuration
// and the last entry seen.
func replay(f *fsm, logs raft.LogStore, snaps raft.SnapshotStore) (raft.Configuration, logPos, error) {
	var conf raft.Configuration
	var last logPos
	list, err := snaps.List()
	if err != nil {
		return conf, last, fmt.Errorf("list snapshots: %w", err)
	}
	restored := len(list) == 0
	for _, meta := range list {
		_, rc, err := snaps.Open(meta.ID)
		if err != nil {
			continue
		}
		err = f.Restore(rc)
		rc.Close()
		if err != nil {
			continue
		}
		conf, last, restored = meta.Configuration, logPos{meta.Index, meta.Term}, true
		break
	}
	if !restored {
		return conf, last, errors.New("none of the snapshots could be restored")
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return conf, last, fmt.Errorf("read the log: %w", err)
	}
	if first > last.Index+1 {
		// The log starts after the snapshot that could be opened: the
		// entries between are gone, and a state without them is no
		// state of the mesh.
		return conf, last, fmt.Errorf("the log starts at entry %d, but the newest snapshot that opens ends at %d: the entries between are missing", first, last.Index)
	}
	lastIndex, err := logs.LastIndex()
	if err != nil {
		return conf, last, fmt.Errorf("read the log: %w", err)
	}
	for i := max(last.Index+1, first); i <= lastIndex && first > 0; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return conf, last, fmt.Errorf("read log entry %d: %w", i, err)
		}
		switch l.Type {
		case raft.LogCommand:
			f.Apply(&l)
		case raft.LogConfiguration:
			conf = raft.DecodeConfiguration(l.Data)
		}
		last = logPos{l.Index, l.Term}
	}
	return conf, last, nil
}
