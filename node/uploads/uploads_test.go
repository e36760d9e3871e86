package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/artmesh/artmesh"
)

// memImporter is an Importer that keeps what it reads in memory.
type memImporter struct {
	mu       sync.Mutex
	got      []byte
	limit    int64
	size     int64 // when not -1, the size it reports instead of what it read
	err      error
	released int
}

func (m *memImporter) Import(_ context.Context, r io.Reader, limit int64) (Imported, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Imported{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got, m.limit = data, limit
	if m.err != nil {
		return Imported{}, m.err
	}
	c, err := cid.NewPrefixV1(cid.Raw, mh.SHA2_256).Sum(data)
	if err != nil {
		return Imported{}, err
	}
	size := int64(len(data))
	if m.size >= 0 {
		size = m.size
	}
	return Imported{CID: c, Size: size, Release: func() {
		m.mu.Lock()
		m.released++
		m.mu.Unlock()
	}}, nil
}

func newTestArea(t *testing.T) (*Area, *memImporter) {
	t.Helper()
	imp := &memImporter{size: -1}
	return New(Config{Dir: filepath.Join(t.TempDir(), Dir), Import: imp.Import}), imp
}

// stage writes data as the staged copy of id, bypassing Append.
func stage(t *testing.T, a *Area, id string, data []byte) {
	t.Helper()
	if data == nil {
		return
	}
	if err := os.MkdirAll(a.cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.Path(id), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func staged(t *testing.T, a *Area, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(a.Path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// brokenReader yields its bytes, then fails as a body cut off does.
func brokenReader(b []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(b), iotest.ErrReader(io.ErrUnexpectedEOF))
}

func TestAppend(t *testing.T) {
	data := []byte("0123456789")
	const size = 10
	tests := []struct {
		name         string
		staged       []byte // nil: no staging file yet
		start, total int64
		body         io.Reader
		want         int64        // staged size returned
		kind         artmesh.Kind // of the error; Other: none
		offset       int64        // of the ErrOffsetMismatch; -1: none
		file         []byte       // the staging file afterwards
	}{
		{name: "first write without range", staged: nil, start: -1, total: -1, body: bytes.NewReader(data[:4]), want: 4, offset: -1, file: data[:4]},
		{name: "whole upload at once", staged: nil, start: 0, total: size, body: bytes.NewReader(data), want: 10, offset: -1, file: data},
		{name: "resume after partial write", staged: data[:4], start: 4, total: size, body: bytes.NewReader(data[4:]), want: 10, offset: -1, file: data},
		{name: "resume without total", staged: data[:4], start: 4, total: -1, body: bytes.NewReader(data[4:6]), want: 6, offset: -1, file: data[:6]},
		{name: "start behind the staged copy", staged: data[:4], start: 2, total: size, body: bytes.NewReader(data[2:]), want: 4, kind: artmesh.Conflict, offset: 4, file: data[:4]},
		{name: "start past the staged copy", staged: data[:4], start: 6, total: size, body: bytes.NewReader(data[6:]), want: 4, kind: artmesh.Conflict, offset: 4, file: data[:4]},
		{name: "no range on a started upload", staged: data[:4], start: -1, total: -1, body: bytes.NewReader(data), want: 4, kind: artmesh.Conflict, offset: 4, file: data[:4]},
		{name: "offset mismatch before any byte", staged: nil, start: 3, total: size, body: bytes.NewReader(data[3:]), want: 0, kind: artmesh.Conflict, offset: 0, file: nil},
		{name: "total is not the declared size", staged: data[:4], start: 4, total: size + 1, body: bytes.NewReader(data[4:]), want: 4, kind: artmesh.Conflict, offset: 4, file: data[:4]},
		{name: "over-size write keeps nothing of it", staged: data[:4], start: 4, total: -1, body: bytes.NewReader(append(slices.Clone(data[4:]), 'x')), want: 4, kind: artmesh.Invalid, offset: -1, file: data[:4]},
		{name: "over-size first write", staged: nil, start: -1, total: -1, body: bytes.NewReader(append(slices.Clone(data), 'x')), want: 0, kind: artmesh.Invalid, offset: -1, file: []byte{}},
		{name: "body breaks off: what arrived is kept", staged: data[:4], start: 4, total: size, body: brokenReader(data[4:7]), want: 7, kind: artmesh.Invalid, offset: -1, file: data[:7]},
		{name: "write to a complete upload", staged: data, start: 10, total: size, body: bytes.NewReader(nil), want: 10, offset: -1, file: data},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := newTestArea(t)
			stage(t, a, "upl_1", tt.staged)
			s := a.Lock("upl_1")
			defer s.Unlock()
			got, err := s.Append(tt.start, tt.total, size, tt.body)
			if tt.kind == artmesh.Other {
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
			} else if !errors.Is(err, tt.kind) {
				t.Fatalf("Append: %v, want kind %v", err, tt.kind)
			}
			var om *ErrOffsetMismatch
			switch {
			case tt.offset >= 0 && !errors.As(err, &om):
				t.Fatalf("Append: %v, want an offset mismatch", err)
			case tt.offset >= 0 && om.Offset != tt.offset:
				t.Fatalf("offset mismatch at %d, want %d", om.Offset, tt.offset)
			case tt.offset < 0 && errors.As(err, &om):
				t.Fatalf("unexpected offset mismatch: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Append returned %d staged bytes, want %d", got, tt.want)
			}
			if f := staged(t, a, "upl_1"); !bytes.Equal(f, tt.file) || (f == nil) != (tt.file == nil) {
				t.Fatalf("staging file %q, want %q", f, tt.file)
			}
			if s.Size() != int64(len(tt.file)) || a.Size("upl_1") != int64(len(tt.file)) {
				t.Fatalf("Size %d, want %d", s.Size(), len(tt.file))
			}
		})
	}
}

// TestResumeAfterBreak breaks an upload off, reopens the staging area (as
// a restarted daemon does) and resumes from the size it reports.
func TestResumeAfterBreak(t *testing.T) {
	data := bytes.Repeat([]byte("artmesh!"), 1000)
	a, imp := newTestArea(t)
	s := a.Lock("upl_r")
	if _, err := s.Append(-1, int64(len(data)), int64(len(data)), brokenReader(data[:3000])); !errors.Is(err, artmesh.Invalid) {
		t.Fatalf("broken write: %v", err)
	}
	s.Unlock()

	a = New(Config{Dir: a.cfg.Dir, Import: imp.Import})
	s = a.Lock("upl_r")
	defer s.Unlock()
	have := s.Size()
	if have != 3000 {
		t.Fatalf("after the break %d bytes are staged, want 3000", have)
	}
	got, err := s.Append(have, int64(len(data)), int64(len(data)), bytes.NewReader(data[have:]))
	if err != nil || got != int64(len(data)) {
		t.Fatalf("resume: %d, %v", got, err)
	}
	if !bytes.Equal(staged(t, a, "upl_r"), data) {
		t.Fatal("the resumed staging file differs from the content")
	}
}

func TestImport(t *testing.T) {
	data := []byte("the whole staged upload")
	sum := sha256.Sum256(data)
	tests := []struct {
		name     string
		size     int64 // declared
		reported int64 // what the importer says it stored; -1: what it read
		err      error // the importer's
		kind     artmesh.Kind
		released int // by Import itself, on failure
	}{
		{name: "complete", size: int64(len(data)), reported: -1},
		{name: "importer stored another size", size: int64(len(data)), reported: 5, kind: artmesh.Invalid, released: 1},
		{name: "importer fails", size: int64(len(data)), reported: -1, err: artmesh.E(artmesh.TooLarge, "too big"), kind: artmesh.TooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, imp := newTestArea(t)
			imp.size, imp.err = tt.reported, tt.err
			stage(t, a, "upl_i", data)
			s := a.Lock("upl_i")
			defer s.Unlock()
			rec, err := s.Import(context.Background(), tt.size)
			if tt.kind != artmesh.Other {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("Import: %v, want kind %v", err, tt.kind)
				}
				if imp.released != tt.released {
					t.Fatalf("released %d times, want %d", imp.released, tt.released)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(imp.got, data) || imp.limit != tt.size {
				t.Fatalf("the importer read %q with limit %d", imp.got, imp.limit)
			}
			if rec.SHA256 != hex.EncodeToString(sum[:]) || rec.Size != int64(len(data)) || !rec.CID.Defined() {
				t.Fatalf("received %+v", rec)
			}
			if imp.released != 0 {
				t.Fatal("released before the caller recorded the content")
			}
			rec.Release()
			if imp.released != 1 {
				t.Fatalf("released %d times", imp.released)
			}
			if !bytes.Equal(staged(t, a, "upl_i"), data) {
				t.Fatal("Import removed or changed the staging file")
			}
		})
	}
}

func TestImportWithoutStagingFile(t *testing.T) {
	a, _ := newTestArea(t)
	s := a.Lock("upl_none")
	defer s.Unlock()
	if _, err := s.Import(context.Background(), 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Import of nothing staged: %v", err)
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name   string
		staged []byte
	}{
		{name: "staged bytes", staged: []byte("abc")},
		{name: "empty staging file", staged: []byte{}},
		{name: "no staging file", staged: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := newTestArea(t)
			stage(t, a, "upl_x", tt.staged)
			stage(t, a, "upl_other", []byte("kept"))
			s := a.Lock("upl_x")
			defer s.Unlock()
			for range 2 {
				if err := s.Remove(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(a.Path("upl_x")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("staging file after Remove: %v", err)
			}
			if s.Size() != 0 {
				t.Fatalf("Size after Remove: %d", s.Size())
			}
			if string(staged(t, a, "upl_other")) != "kept" {
				t.Fatal("Remove touched another upload")
			}
		})
	}
}

// TestConcurrentWritersSerialised has many writers append to one upload,
// each from where it finds the staged copy: with the lock, every one
// succeeds and the chunks never interleave.
func TestConcurrentWritersSerialised(t *testing.T) {
	const writers, chunk = 16, 4096
	a, _ := newTestArea(t)
	var inside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a.Lock("upl_c")
			defer s.Unlock()
			if n := inside.Add(1); n != 1 {
				errs <- errors.New("two writers hold one upload")
			}
			defer inside.Add(-1)
			have := s.Size()
			if _, err := s.Append(have, writers*chunk, writers*chunk, bytes.NewReader(bytes.Repeat([]byte{byte('a' + i)}, chunk))); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := staged(t, a, "upl_c")
	if len(got) != writers*chunk {
		t.Fatalf("staged %d bytes, want %d", len(got), writers*chunk)
	}
	seen := map[byte]bool{}
	for off := 0; off < len(got); off += chunk {
		c := got[off : off+chunk]
		if bytes.Count(c, c[:1]) != chunk || seen[c[0]] {
			t.Fatalf("chunk at %d is not one whole write", off)
		}
		seen[c[0]] = true
	}
	if len(a.locks) != 0 {
		t.Fatalf("%d locks left after every writer finished", len(a.locks))
	}
}

// TestLockIsPerUpload checks that a held upload does not hold up another,
// and that a second Lock of it waits for Unlock.
func TestLockIsPerUpload(t *testing.T) {
	a, _ := newTestArea(t)
	s := a.Lock("upl_a")
	a.Lock("upl_b").Unlock() // not held up by upl_a
	got := make(chan *Staged)
	go func() { got <- a.Lock("upl_a") }()
	select {
	case <-got:
		t.Fatal("a second writer got a held upload")
	default:
	}
	s.Unlock()
	s.Unlock() // a second Unlock does nothing
	(<-got).Unlock()
	if len(a.locks) != 0 {
		t.Fatalf("%d locks left", len(a.locks))
	}
}

func TestSweep(t *testing.T) {
	a, _ := newTestArea(t)
	if removed, err := a.Sweep(func(string) bool { return false }); err != nil || len(removed) != 0 {
		t.Fatalf("sweep of an area not made yet: %v, %v", removed, err)
	}
	for _, id := range []string{"upl_open", "upl_gone", "upl_reopened"} {
		stage(t, a, id, []byte(id))
	}
	if err := os.WriteFile(filepath.Join(a.cfg.Dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	asked := map[string]int{}
	open := func(id string) bool {
		asked[id]++
		switch id {
		case "upl_open":
			return true
		case "upl_reopened": // not open at first look, open once locked
			return asked[id] > 1
		}
		return false
	}
	removed, err := a.Sweep(open)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"upl_gone"}) {
		t.Fatalf("removed %v", removed)
	}
	for id, want := range map[string]bool{"upl_open": true, "upl_gone": false, "upl_reopened": true} {
		if has := staged(t, a, id) != nil; has != want {
			t.Errorf("%s staged: %v, want %v", id, has, want)
		}
	}
	if _, err := os.Stat(filepath.Join(a.cfg.Dir, "notes.txt")); err != nil {
		t.Fatalf("sweep touched a file that is not a staging file: %v", err)
	}
	if asked["notes.txt"] != 0 || asked["notes"] != 0 {
		t.Fatal("sweep asked about a file that is not a staging file")
	}
}

// TestAppendOnFullDisk: bytes that meet a full disk (the staging file is
// /dev/full, where every write fails with ENOSPC) are an
// InsufficientStorage error, not a body that broke off.
func TestAppendOnFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full to fail writes with ENOSPC: %v", err)
	}
	a, _ := newTestArea(t)
	if err := os.MkdirAll(a.cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", a.Path("upl_full")); err != nil {
		t.Fatal(err)
	}
	s := a.Lock("upl_full")
	defer s.Unlock()
	_, err := s.Append(0, 100, 100, bytes.NewReader(make([]byte, 100)))
	if !errors.Is(err, artmesh.InsufficientStorage) {
		t.Fatalf("Append on a full disk: %v, want InsufficientStorage", err)
	}
}
