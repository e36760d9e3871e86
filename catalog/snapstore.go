package catalog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// snapStore is Raft's snapshot store for the catalog: the file store,
// except that a snapshot opened to be sent to another member (every open
// once Raft has started: at start, Raft opens its latest snapshot to
// restore it, which a reference snapshot does at no cost) is made full
// when it is a reference: the state file as of now, written to a
// temporary file so that its size is known, and removed once sent.
type snapStore struct {
	*raft.FileSnapshotStore
	fsm     *fsm
	started atomic.Bool
}

// Open opens a snapshot (see snapStore).
func (s *snapStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil || !s.started.Load() {
		return meta, rc, err
	}
	br := bufio.NewReader(rc)
	hdr, err := br.Peek(snapshotHeaderLen)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("catalog: read snapshot %s: %w", id, noEOF(err))
	}
	if format, _, err := parseSnapshotHeader(hdr); err != nil || format != snapshotRef {
		return meta, readCloser{br, rc}, nil
	}
	rc.Close()
	return s.fsm.fullSnapshot(meta)
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// fullSnapshot writes a full snapshot of the state as it is now to a
// temporary file and returns it as the snapshot of meta, with its size.
func (f *fsm) fullSnapshot(meta *raft.SnapshotMeta) (*raft.SnapshotMeta, io.ReadCloser, error) {
	file, err := os.CreateTemp(f.dir, stateFile+".send-*")
	if err != nil {
		return nil, nil, fmt.Errorf("catalog: full snapshot: %w", err)
	}
	_ = os.Remove(file.Name()) // removed once closed
	bw := bufio.NewWriterSize(file, 1<<20)
	n, err := f.state().writeFullSnapshot(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = file.Seek(0, io.SeekStart)
	}
	if err != nil {
		file.Close()
		return nil, nil, fmt.Errorf("catalog: full snapshot: %w", err)
	}
	m := *meta
	m.Size = n
	return &m, file, nil
}
