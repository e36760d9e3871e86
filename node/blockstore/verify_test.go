package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	bolt "go.etcd.io/bbolt"
)

// flipBit flips one bit of the stored bytes of b, in its pack file.
func flipBit(t *testing.T, s *Store, b blocks.Block, at int) {
	t.Helper()
	l, ok, err := s.lookup(string(b.Cid().Hash()), true)
	if err != nil || !ok {
		t.Fatalf("lookup %s: %v %v", b.Cid(), ok, err)
	}
	f, err := os.OpenFile(s.packPath(l.pack), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var one [1]byte
	off := int64(l.offset) + int64(at)
	if _, err := f.ReadAt(one[:], off); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0x10
	if _, err := f.WriteAt(one[:], off); err != nil {
		t.Fatal(err)
	}
}

// recorder keeps what OnCorrupt was told.
type recorder struct {
	mu   sync.Mutex
	cids []cid.Cid
}

func (r *recorder) onCorrupt(c cid.Cid, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cids = append(r.cids, c)
}

func (r *recorder) got() []cid.Cid {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cid.Cid(nil), r.cids...)
}

// downgrade rewrites every index entry in the form from before checksums
// (16 bytes), as a store written by an older version has them.
func downgrade(t *testing.T, s *Store) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketIndex))
		var keys, vals [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			vals = append(vals, append([]byte(nil), v[:oldLocSize]...))
			return nil
		}); err != nil {
			return err
		}
		for i := range keys {
			if err := b.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestReadsAreVerified(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		old    bool // index entries without checksums: verified by multihash
		flipAt int
	}{
		{"checksum, first byte", false, 0},
		{"checksum, last byte", false, 299},
		{"multihash, middle", true, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			now := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
			s := open(t, t.TempDir(), Options{OnCorrupt: rec.onCorrupt, Now: func() time.Time { return now }})
			good := block(t, string(bytes.Repeat([]byte("g"), 300)))
			bad := block(t, string(bytes.Repeat([]byte("b"), 300)))
			if err := s.PutMany(ctx, []blocks.Block{good, bad}); err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.old {
				downgrade(t, s)
			}
			flipBit(t, s, bad, tc.flipAt)

			_, err := s.Get(ctx, bad.Cid())
			if !errors.Is(err, ErrCorrupt) || !ipld.IsNotFound(err) {
				t.Fatalf("get of a flipped block: %v, want ErrCorrupt and not-found", err)
			}
			if has, _ := s.Has(ctx, bad.Cid()); has {
				t.Fatal("a quarantined block is still in the store")
			}
			if _, err := s.Get(ctx, bad.Cid()); !ipld.IsNotFound(err) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("second get: %v, want a plain not-found", err)
			}
			if got, err := s.Get(ctx, good.Cid()); err != nil || !bytes.Equal(got.RawData(), good.RawData()) {
				t.Fatalf("the good block: %v", err)
			}
			if got := rec.got(); len(got) != 1 || !bytes.Equal(got[0].Hash(), bad.Cid().Hash()) {
				t.Fatalf("OnCorrupt was told of %v", got)
			}
			q, total, err := s.QuarantineList(0)
			if err != nil || total != 1 || len(q) != 1 || !q[0].At.Equal(now) || q[0].Length != 300 {
				t.Fatalf("quarantine: %+v %d %v", q, total, err)
			}
			if s.CorruptFound() != 1 {
				t.Fatalf("CorruptFound %d", s.CorruptFound())
			}
			// A good copy put again is stored and served.
			if err := s.Put(ctx, bad); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, bad.Cid()); err != nil || !bytes.Equal(got.RawData(), bad.RawData()) {
				t.Fatalf("after a repair: %v", err)
			}
		})
	}
}

func TestMissingPackIsQuarantined(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{MaxPackSize: 64})
	b := block(t, string(bytes.Repeat([]byte("m"), 100)))
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l, _, _ := s.lookup(string(b.Cid().Hash()), true)
	// Cut the pack short, as a lost tail of a file would.
	if err := os.Truncate(s.packPath(l.pack), int64(l.offset)+10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, b.Cid()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get of a block cut short: %v", err)
	}
	if has, _ := s.Has(ctx, b.Cid()); has {
		t.Fatal("still there")
	}
}

func TestScrub(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	dir := t.TempDir()
	s := open(t, dir, Options{MaxPackSize: 4 << 10, OnCorrupt: rec.onCorrupt})
	var bs []blocks.Block
	for i := range 40 {
		bs = append(bs, block(t, fmt.Sprintf("%03d %s", i, bytes.Repeat([]byte("s"), 500))))
	}
	if err := s.PutMany(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	downgrade(t, s) // the scrub gives old entries their checksums
	flipBit(t, s, bs[3], 7)
	flipBit(t, s, bs[31], 400)

	var paced int
	pass, err := s.Scrub(ctx, func(_ context.Context, n int) error { paced += n; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if pass.Blocks != 40 || pass.Corrupt != 2 || pass.Finished.IsZero() || paced < 40*500 {
		t.Fatalf("pass %+v, paced %d", pass, paced)
	}
	if got := rec.got(); len(got) != 2 {
		t.Fatalf("OnCorrupt told of %d blocks", len(got))
	}
	for i, b := range bs {
		has, _ := s.Has(ctx, b.Cid())
		if has != (i != 3 && i != 31) {
			t.Fatalf("block %d: has %v", i, has)
		}
	}
	// Every entry left has its checksum now.
	if err := s.forEach(func(k string, l loc) error {
		if !l.hasCRC {
			return fmt.Errorf("entry %x has no checksum", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st, err := s.ScrubStatus()
	if err != nil || st.Current != nil || st.Last == nil || st.Last.Blocks != 40 {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestScrubResumes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, Options{MaxPackSize: 2 << 10})
	var bs []blocks.Block
	for i := range 20 {
		bs = append(bs, block(t, fmt.Sprintf("%03d %s", i, bytes.Repeat([]byte("r"), 600))))
	}
	if err := s.PutMany(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Stop the pass after 5 blocks, as a shutdown would.
	stop := errors.New("stop")
	n := 0
	if _, err := s.Scrub(ctx, func(context.Context, int) error {
		if n++; n > 5 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) {
		t.Fatalf("scrub: %v", err)
	}
	st, _ := s.ScrubStatus()
	if st.Current == nil || st.NextPack == 0 {
		t.Fatalf("no pass under way after a stop: %+v", st)
	}
	s.Close()
	s = open(t, dir, Options{MaxPackSize: 2 << 10})
	pass, err := s.Scrub(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The resumed pass counts the blocks of the packs it finished before
	// and checks the rest: every block once, none twice.
	if pass.Blocks < 20 || pass.Blocks > 20+5 {
		t.Fatalf("resumed pass checked %d blocks", pass.Blocks)
	}
	if pass.Started != st.Current.Started {
		t.Fatalf("a new pass started instead of resuming")
	}
}

func TestCompactionDoesNotLaunder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, Options{MaxPackSize: 8 << 10})
	var bs []blocks.Block
	for i := range 10 {
		bs = append(bs, block(t, fmt.Sprintf("%03d %s", i, bytes.Repeat([]byte("c"), 500))))
	}
	if err := s.PutMany(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Reopen, so that the pack is no longer the one being written.
	s.Close()
	s = open(t, dir, Options{MaxPackSize: 8 << 10})
	flipBit(t, s, bs[1], 3)
	// Keep two blocks only, so the pack is rewritten: the bad one must not
	// come out with a fresh checksum.
	keep := map[string]bool{bs[1].Cid().KeyString(): true, bs[2].Cid().KeyString(): true}
	st, err := s.Collect(ctx, func(_ context.Context, k func(cid.Cid)) error {
		for _, b := range bs {
			if keep[b.Cid().KeyString()] {
				k(b.Cid())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.PacksRewritten == 0 {
		t.Fatalf("no pack rewritten: %+v", st)
	}
	if has, _ := s.Has(ctx, bs[1].Cid()); has {
		t.Fatal("the corrupt block was copied by compaction")
	}
	if got, err := s.Get(ctx, bs[2].Cid()); err != nil || !bytes.Equal(got.RawData(), bs[2].RawData()) {
		t.Fatalf("the good block after compaction: %v", err)
	}
}

// TestQuarantinedPendingBlockStaysOut: a block that fails its check before
// its first sync is not committed by that sync, nor found after a reopen.
func TestQuarantinedPendingBlockStaysOut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, Options{})
	b := block(t, string(bytes.Repeat([]byte("p"), 400)))
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	flipBit(t, s, b, 100) // the lookup writes the buffered bytes out first
	if _, err := s.Get(ctx, b.Cid()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get: %v", err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.Has(ctx, b.Cid()); has {
		t.Fatal("the sync committed a quarantined block")
	}
	s.Close()
	s = open(t, dir, Options{})
	if has, _ := s.Has(ctx, b.Cid()); has {
		t.Fatal("a quarantined block is back after a reopen")
	}
}
