// Package uploads is the staging area of upload sessions: one file per
// open upload, <dir>/<id>.part, to which the bytes of the upload are
// appended as they arrive, each request checked against where the staged
// copy ends and against the upload's declared size, and made durable
// (fsync) before it is acknowledged, so that a broken upload resumes where
// it stopped, across restarts of the daemon. Writers of one upload are
// serialised by a lock per id. When the last byte has arrived, Import
// reads the staged file into the block store through the caller's
// Importer and hashes it on the way.
//
// The package knows nothing of the catalog, tokens or agents: the node
// decides who may write which upload and what state it is in, records
// what Import returns, and says which uploads are still open when Sweep
// removes the staging files of the others.
package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/ipfs/go-cid"

	"github.com/artmesh/artmesh"
)

// Dir is the name of the staging folder in a node's repo.
const Dir = "uploads"

// suffix ends the name of every staging file.
const suffix = ".part"

// Imported is what an Importer stored.
type Imported struct {
	CID  cid.Cid
	Size int64
	// Release ends the import's protection against garbage collection;
	// it is called once the caller has recorded the content, or has
	// given it up. Nil: nothing to release.
	Release func()
}

// Importer stores the content read from r, at most limit bytes, in the
// block store and makes it durable.
type Importer func(ctx context.Context, r io.Reader, limit int64) (Imported, error)

// Config is what an Area needs.
type Config struct {
	// Dir holds the staging files; it is made on the first write.
	Dir string
	// Import stores a complete staged file (see Staged.Import).
	Import Importer
}

// Area is the staging area. Its methods are safe for concurrent use.
type Area struct {
	cfg Config

	mu    sync.Mutex
	locks map[string]*refMutex // an entry lives while someone holds or waits for it
}

type refMutex struct {
	sync.Mutex
	refs int
}

// New returns the staging area of cfg.Dir.
func New(cfg Config) *Area {
	return &Area{cfg: cfg, locks: make(map[string]*refMutex)}
}

// Path is the staging file of upload id. Ids are the catalog's upload
// ids, which hold no path separators.
func (a *Area) Path(id string) string {
	return filepath.Join(a.cfg.Dir, id+suffix)
}

// Size is how many bytes of upload id are staged: 0 when none are.
func (a *Area) Size(id string) int64 {
	fi, err := os.Stat(a.Path(id))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Lock waits until no one else holds upload id and returns its staging
// file, held until Unlock.
func (a *Area) Lock(id string) *Staged {
	a.mu.Lock()
	m, ok := a.locks[id]
	if !ok {
		m = &refMutex{}
		a.locks[id] = m
	}
	m.refs++
	a.mu.Unlock()
	m.Lock()
	return &Staged{a: a, id: id, m: m}
}

// Staged is the staging file of one upload, held by one writer.
type Staged struct {
	a  *Area
	id string
	m  *refMutex
}

// Unlock lets the next writer of the upload in. It is safe to call twice.
func (s *Staged) Unlock() {
	m := s.m
	if m == nil {
		return
	}
	s.m = nil
	m.Unlock()
	s.a.mu.Lock()
	if m.refs--; m.refs == 0 {
		delete(s.a.locks, s.id)
	}
	s.a.mu.Unlock()
}

// Size is how many bytes are staged.
func (s *Staged) Size() int64 { return s.a.Size(s.id) }

// ErrOffsetMismatch is the Conflict of a write that does not start where
// the staged copy ends; its Offset says where to resume.
type ErrOffsetMismatch struct {
	Offset int64
}

func (e *ErrOffsetMismatch) Error() string {
	return fmt.Sprintf("the node holds %d bytes of this upload: resume with Content-Range: bytes %d-LAST/TOTAL", e.Offset, e.Offset)
}

// Append adds body to the staged copy of an upload declared as size
// bytes, and returns how many bytes are staged then. start is where the
// body begins (-1 when the request named no range: then it must be the
// first write), total the total size the request stated (-1 when none).
// A start other than the staged size, or a total other than size, is a
// Conflict carrying an *ErrOffsetMismatch. A body that goes past size is
// Invalid and nothing of it is kept; a body that breaks off is Invalid
// and every byte that arrived is kept. What is kept is durable when
// Append returns.
func (s *Staged) Append(start, total, size int64, body io.Reader) (int64, error) {
	return s.AppendChecked(start, total, size, body, nil)
}

// AppendChecked is Append for a body whose SHA-256 the request declared
// (want, nil for none): a body with another digest is ChecksumMismatch and
// nothing of it is kept, and so is a body that breaks off, whose bytes
// cannot be checked.
func (s *Staged) AppendChecked(start, total, size int64, body io.Reader, want *[32]byte) (int64, error) {
	have := s.Size()
	if total >= 0 && total != size {
		return have, artmesh.E(artmesh.Conflict, fmt.Sprintf("the range's total %d is not the upload's declared size %d", total, size), &ErrOffsetMismatch{Offset: have})
	}
	if start < 0 {
		start = 0
	}
	if start != have {
		return have, artmesh.E(artmesh.Conflict, &ErrOffsetMismatch{Offset: have})
	}
	if err := os.MkdirAll(s.a.cfg.Dir, 0o700); err != nil {
		return have, fmt.Errorf("uploads: %w", err)
	}
	f, err := os.OpenFile(s.a.Path(s.id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return have, fmt.Errorf("uploads: staging file: %w", err)
	}
	defer f.Close()
	var h hash.Hash
	if want != nil {
		h = sha256.New()
		body = io.TeeReader(body, h)
	}
	written, copyErr := io.Copy(f, io.LimitReader(body, size-have))
	if want != nil && (copyErr != nil || !bytes.Equal(h.Sum(nil), want[:])) {
		if err := f.Truncate(have); err != nil {
			return have + written, fmt.Errorf("uploads: staging file: %w", err)
		}
		if copyErr != nil {
			return have, artmesh.E(artmesh.Invalid, fmt.Sprintf("the upload broke off after %d bytes, which a declared digest cannot check; none are kept: resume from %d", written, have), copyErr)
		}
		return have, artmesh.E(artmesh.ChecksumMismatch, fmt.Sprintf("this request's bytes have SHA-256 %x, not the %x it declared; none are kept: resume from %d", h.Sum(nil), want[:], have))
	}
	if copyErr == nil {
		// Anything past the declared size is refused, and nothing of this
		// request is kept.
		var one [1]byte
		if k, _ := io.ReadFull(body, one[:]); k > 0 {
			if err := f.Truncate(have); err != nil {
				return have + written, fmt.Errorf("uploads: staging file: %w", err)
			}
			return have, artmesh.E(artmesh.Invalid, fmt.Sprintf("the upload was declared as %d bytes; this request sends more", size))
		}
	}
	serr := f.Sync()
	if isNoSpace(copyErr) || isNoSpace(serr) {
		return have + written, noSpace(written, have+written, errors.Join(copyErr, serr))
	}
	if serr != nil {
		return have + written, fmt.Errorf("uploads: staging file: %w", serr)
	}
	if copyErr != nil {
		return have + written, artmesh.E(artmesh.Invalid, fmt.Sprintf("the upload broke off after %d bytes; %d are kept: resume from there", written, have+written), copyErr)
	}
	return have + written, nil
}

// Received is a staged upload stored in the block store.
type Received struct {
	Imported
	// SHA256 is the hex SHA-256 of the content.
	SHA256 string
}

// Import stores the staged copy of an upload declared as size bytes with
// the area's Importer. The staging file stays: Remove it once the result
// is recorded, then call the result's Release.
func (s *Staged) Import(ctx context.Context, size int64) (Received, error) {
	f, err := os.Open(s.a.Path(s.id))
	if err != nil {
		return Received{}, fmt.Errorf("uploads: staging file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	im, err := s.a.cfg.Import(ctx, io.TeeReader(f, h), size)
	if err != nil {
		return Received{}, err
	}
	if im.Release == nil {
		im.Release = func() {}
	}
	if im.Size != size {
		im.Release()
		return Received{}, artmesh.E(artmesh.Invalid, fmt.Sprintf("the staged upload holds %d bytes, not %d", im.Size, size))
	}
	return Received{Imported: im, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Remove deletes the staging file; one that is not there is no error.
func (s *Staged) Remove() error {
	if err := os.Remove(s.a.Path(s.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("uploads: remove staging file: %w", err)
	}
	return nil
}

// Sweep removes the staging files of the uploads that open does not
// report as open, each under its upload's lock (open is asked again once
// it is held), and returns the ids it removed. open reads committed
// state; a staging area that does not exist yet holds nothing.
func (a *Area) Sweep(open func(id string) bool) ([]string, error) {
	ents, err := os.ReadDir(a.cfg.Dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("uploads: %w", err)
	}
	var removed []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || open(id) {
			continue
		}
		s := a.Lock(id)
		if !open(id) && os.Remove(a.Path(id)) == nil {
			removed = append(removed, id)
		}
		s.Unlock()
	}
	return removed, nil
}

// isNoSpace reports whether err is the filesystem saying it is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// noSpace is the error of a staging write that ran out of disk: what
// arrived before is kept, so the upload resumes once space is freed.
func noSpace(written, kept int64, cause error) error {
	return artmesh.E(artmesh.InsufficientStorage, fmt.Sprintf("the node's disk is full: the upload stopped after %d bytes of this request; %d are kept: resume from there once space is freed", written, kept), cause)
}
