package blockstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/artmesh/artmesh"
)

// DiskSpace reports the bytes an unprivileged writer may still use on the
// filesystem that holds dir, and the filesystem's size.
type DiskSpace func(dir string) (free, total int64, err error)

// MaxDefaultReserve caps the default reserve: the reserve is 2 % of the
// filesystem, at most this.
const MaxDefaultReserve = 1 << 30

// MinReserve is the least default reserve, for filesystems under 200 MiB:
// the room the rest of the repo needs when content has filled the disk
// (the catalog's Raft log preallocates segments of 1 MiB, and its index
// and snapshots grow a little with deletes).
const MinReserve = 4 << 20

// DefaultReserve returns the reserve kept on a filesystem of total bytes
// when Options.Reserve is zero: the smaller of 2 % and 1 GiB, and at least
// MinReserve (or a quarter of a filesystem smaller than 16 MiB).
func DefaultReserve(total int64) int64 {
	return max(min(total/50, MaxDefaultReserve), min(MinReserve, total/4))
}

// Space is the room on the store's filesystem.
type Space struct {
	Free    int64 `json:"free"`    // bytes free for the store, before the reserve
	Total   int64 `json:"total"`   // size of the filesystem
	Reserve int64 `json:"reserve"` // bytes writes leave free
}

// Space reports the room on the store's filesystem.
func (s *Store) Space() (Space, error) {
	free, total, err := s.opts.DiskSpace(s.dir)
	if err != nil {
		return Space{}, fmt.Errorf("blockstore: disk space: %w", err)
	}
	sp := Space{Free: free, Total: total, Reserve: s.opts.Reserve}
	switch {
	case sp.Reserve == 0:
		sp.Reserve = DefaultReserve(total)
	case sp.Reserve < 0:
		sp.Reserve = 0
	}
	return sp, nil
}

// CheckSpace returns an error of kind artmesh.InsufficientStorage when a
// write of n bytes would leave less than the reserve free. Write paths
// that know their size call it before they store any byte.
func (s *Store) CheckSpace(n int64) error {
	sp, err := s.Space()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.w != nil {
		sp.Free -= int64(s.w.Buffered())
	}
	s.mu.Unlock()
	if sp.Free-n < sp.Reserve {
		return noSpace(sp, n, nil)
	}
	return nil
}

// maxUnmeasured bounds the bytes appended between two measurements of the
// free space.
const maxUnmeasured = 1 << 20

// roomLocked checks that n more bytes fit, leaving the reserve free (or,
// for compaction, half of it). Called with mu held. The filesystem is
// measured at most every maxUnmeasured bytes, and at every append once
// the room left beyond the reserve is under 16 times that: a sixteenth of
// the room is what may be appended unmeasured.
func (s *Store) roomLocked(n int64, compaction bool) error {
	if !compaction && n <= s.unmeasured {
		s.unmeasured -= n
		return nil
	}
	sp, err := s.Space()
	if err != nil {
		return err
	}
	sp.Free -= int64(s.w.Buffered())
	reserve := sp.Reserve
	if compaction {
		reserve /= 2
	}
	if sp.Free-n < reserve {
		s.unmeasured = 0
		return noSpace(sp, n, nil)
	}
	if compaction {
		// Room measured against half the reserve is no credit for
		// ordinary writes, which keep all of it.
		s.unmeasured = 0
		return nil
	}
	s.unmeasured = min((sp.Free-n-reserve)/16, maxUnmeasured)
	return nil
}

// noSpace is the error of a write that does not fit.
func noSpace(sp Space, n int64, cause error) error {
	free := max(sp.Free-sp.Reserve, 0)
	msg := fmt.Sprintf("the node's disk is full: %s is free and %s is kept in reserve (%s free for content)",
		artmesh.FormatBytes(max(sp.Free, 0)), artmesh.FormatBytes(sp.Reserve), artmesh.FormatBytes(free))
	if n > 0 {
		msg = fmt.Sprintf("the node's disk has no room for %s: %s is free and %s is kept in reserve (%s free for content)",
			artmesh.FormatBytes(n), artmesh.FormatBytes(max(sp.Free, 0)), artmesh.FormatBytes(sp.Reserve), artmesh.FormatBytes(free))
	}
	msg += "; delete content and collect garbage (artmesh repo gc), or write through another node"
	return artmesh.E(artmesh.Op("blockstore.write"), artmesh.InsufficientStorage, msg, cause)
}

// isNoSpace reports whether err is the filesystem saying it is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// writeErr wraps an error of writing or syncing a pack: a full filesystem
// becomes an InsufficientStorage error that says how much is free.
func (s *Store) writeErr(what string, err error) error {
	if !isNoSpace(err) {
		return fmt.Errorf("blockstore: %s: %w", what, err)
	}
	sp, serr := s.Space()
	if serr != nil {
		sp = Space{}
	}
	return noSpace(sp, 0, fmt.Errorf("blockstore: %s: %w", what, err))
}

// writeAtFunc writes b to f at off; a test replaces it to fail writes.
type writeAtFunc func(f *os.File, b []byte, off int64) (int, error)

func fileWriteAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }

// packWriter buffers appends to the active pack. Unlike a bufio.Writer it
// keeps its buffer when a write fails and cuts the file back to what was
// written before, so a failed write (a full disk) leaves no partial record,
// loses nothing that was accepted, and the next Flush simply tries again in
// the same pack.
type packWriter struct {
	f       *os.File
	off     int64 // bytes of the file written
	buf     []byte
	writeAt writeAtFunc
}

func newPackWriter(f *os.File, writeAt writeAtFunc) *packWriter {
	return &packWriter{f: f, buf: make([]byte, 0, writeBufferSize), writeAt: writeAt}
}

// Buffered returns the bytes not yet written to the file.
func (w *packWriter) Buffered() int { return len(w.buf) }

// Write appends p to the buffer.
func (w *packWriter) Write(p []byte) { w.buf = append(w.buf, p...) }

// WriteString appends p to the buffer.
func (w *packWriter) WriteString(p string) { w.buf = append(w.buf, p...) }

// Flush writes the buffer to the file. On failure the file is cut back to
// its length before, and the buffer is kept.
func (w *packWriter) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.writeAt(w.f, w.buf, w.off)
	if err != nil {
		if n > 0 {
			if terr := w.f.Truncate(w.off); terr != nil {
				// The next write overwrites the partial record anyway.
				return errors.Join(err, fmt.Errorf("cut the pack back: %w", terr))
			}
		}
		return err
	}
	w.off += int64(n)
	if cap(w.buf) > 4*writeBufferSize {
		w.buf = make([]byte, 0, writeBufferSize)
	} else {
		w.buf = w.buf[:0]
	}
	return nil
}
