package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

func block(t testing.TB, data string) blocks.Block {
	t.Helper()
	h, err := mh.Sum([]byte(data), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocks.NewBlockWithCid([]byte(data), cid.NewCidV1(cid.Raw, h))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPutGetHasDelete(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"tiny packs", Options{MaxPackSize: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, t.TempDir(), tc.opts)
			var bs []blocks.Block
			for i := 0; i < 20; i++ {
				bs = append(bs, block(t, fmt.Sprintf("block %d %s", i, bytes.Repeat([]byte("x"), i*10))))
			}
			if err := s.PutMany(ctx, bs); err != nil {
				t.Fatal(err)
			}
			// Readable before and after the sync.
			for round := 0; round < 2; round++ {
				for _, b := range bs {
					got, err := s.Get(ctx, b.Cid())
					if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
						t.Fatalf("round %d: get %s: %v", round, b.Cid(), err)
					}
					if n, err := s.GetSize(ctx, b.Cid()); err != nil || n != len(b.RawData()) {
						t.Fatalf("size %d %v", n, err)
					}
				}
				if err := s.Sync(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// Putting again stores nothing new.
			before, _ := s.Stat()
			if err := s.PutMany(ctx, bs); err != nil {
				t.Fatal(err)
			}
			after, _ := s.Stat()
			if after.Blocks != before.Blocks || after.Bytes != before.Bytes {
				t.Fatalf("duplicate puts changed the store: %+v -> %+v", before, after)
			}
			if err := s.DeleteBlock(ctx, bs[0].Cid()); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Has(ctx, bs[0].Cid()); ok {
				t.Fatal("deleted block is still there")
			}
			if _, err := s.Get(ctx, bs[0].Cid()); !ipld.IsNotFound(err) {
				t.Fatalf("get deleted: %v", err)
			}
			ch, err := s.AllKeysChan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range ch {
				n++
			}
			if n != len(bs)-1 {
				t.Fatalf("AllKeysChan listed %d, want %d", n, len(bs)-1)
			}
		})
	}
}

// TestReopen checks that synced blocks survive a reopen and that blocks
// never synced are not found (the index is the commit record).
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	synced, unsynced := block(t, "synced"), block(t, "unsynced")
	s.Put(ctx, synced)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, unsynced)
	// Simulate a crash: flush the bytes to the pack but never commit the
	// index entry, then drop the store without Close.
	s.mu.Lock()
	s.w.Flush()
	s.mu.Unlock()
	s.db.Close()

	s2 := open(t, dir, Options{})
	if ok, _ := s2.Has(ctx, synced.Cid()); !ok {
		t.Fatal("synced block lost")
	}
	if ok, _ := s2.Has(ctx, unsynced.Cid()); ok {
		t.Fatal("a block never synced is visible after a crash")
	}
	got, err := s2.Get(ctx, synced.Cid())
	if err != nil || !bytes.Equal(got.RawData(), synced.RawData()) {
		t.Fatalf("get after reopen: %v", err)
	}
	// The crashed run's pack holds garbage; a collection that keeps the
	// synced block rewrites or removes it.
	st, err := s2.Collect(ctx, func(ctx context.Context, keep func(cid.Cid)) error {
		keep(synced.Cid())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.BlocksRemoved != 0 {
		t.Fatalf("collected %d live blocks", st.BlocksRemoved)
	}
	if got, err := s2.Get(ctx, synced.Cid()); err != nil || !bytes.Equal(got.RawData(), synced.RawData()) {
		t.Fatalf("get after compaction: %v", err)
	}
}

// TestCollect checks that a collection removes what mark does not keep,
// frees the disk, and keeps what open sessions wrote.
func TestCollect(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, Options{MaxPackSize: 4096})
	var live, dead []blocks.Block
	for i := 0; i < 50; i++ {
		live = append(live, block(t, fmt.Sprintf("live %d %s", i, bytes.Repeat([]byte("l"), 100))))
		dead = append(dead, block(t, fmt.Sprintf("dead %d %s", i, bytes.Repeat([]byte("d"), 100))))
	}
	for i := range live {
		s.Put(ctx, live[i])
		s.Put(ctx, dead[i])
	}
	s.Sync(ctx)
	before, _ := s.Stat()

	// A session open during the collection: its block must stay though
	// mark does not name it.
	sess := s.NewSession()
	inflight := block(t, "in flight")
	if err := sess.Put(ctx, inflight); err != nil {
		t.Fatal(err)
	}
	st, err := s.Collect(ctx, func(ctx context.Context, keep func(cid.Cid)) error {
		for _, b := range live {
			keep(b.Cid())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	if st.BlocksRemoved != int64(len(dead)) {
		t.Fatalf("removed %d blocks, want %d", st.BlocksRemoved, len(dead))
	}
	after, _ := s.Stat()
	if after.PackBytes >= before.PackBytes {
		t.Fatalf("pack bytes %d -> %d: nothing freed", before.PackBytes, after.PackBytes)
	}
	for _, b := range live {
		if got, err := s.Get(ctx, b.Cid()); err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("live block %s: %v", b.Cid(), err)
		}
	}
	for _, b := range dead {
		if ok, _ := s.Has(ctx, b.Cid()); ok {
			t.Fatal("dead block survived")
		}
	}
	if ok, _ := s.Has(ctx, inflight.Cid()); !ok {
		t.Fatal("the collector removed a block of an open session")
	}
}

// TestCollectDuringImports runs collections while writers put and sync
// blocks in sessions, and checks that no block a writer was told is stored
// disappears while its session is open, and that blocks whose session
// closed after being marked live stay too.
func TestCollectDuringImports(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{MaxPackSize: 1 << 16, NoSync: true})
	var mu sync.Mutex
	committed := map[cid.Cid]bool{} // what the "catalog" references
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				sess := s.NewSession()
				b := block(t, fmt.Sprintf("w%d i%d %s", w, i, bytes.Repeat([]byte("z"), 500)))
				shared := block(t, fmt.Sprintf("shared %d", i%7)) // deduplicated across writers
				if err := sess.PutMany(ctx, []blocks.Block{b, shared}); err != nil {
					errc <- err
					return
				}
				if err := s.Sync(ctx); err != nil {
					errc <- err
					return
				}
				for _, c := range []cid.Cid{b.Cid(), shared.Cid()} {
					if ok, _ := s.Has(ctx, c); !ok {
						errc <- fmt.Errorf("block %s vanished inside its session", c)
						return
					}
				}
				mu.Lock()
				committed[b.Cid()] = true
				committed[shared.Cid()] = true
				mu.Unlock()
				sess.Close()
			}
		}(w)
	}
	stop := make(chan struct{})
	var gcwg sync.WaitGroup
	gcwg.Add(1)
	go func() {
		defer gcwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := s.Collect(ctx, func(ctx context.Context, keep func(cid.Cid)) error {
				mu.Lock()
				defer mu.Unlock()
				for c := range committed {
					keep(c)
				}
				return nil
			})
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	gcwg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for c := range committed {
		if _, err := s.Get(ctx, c); err != nil {
			t.Fatalf("committed block %s lost: %v", c, err)
		}
	}
}

func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Put(ctx, block(t, "x")); !errors.Is(err, errClosed) {
		t.Fatalf("put on a closed store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, indexFile)); err != nil {
		t.Fatal(err)
	}
}

// TestSessionKeep: Keep finds a stored block and protects it from a
// collection as a Put would; a block that is not there is not found and
// protects nothing.
func TestSessionKeep(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{})
	kept, gone := block(t, "stored by an earlier fetch"), block(t, "not kept")
	for _, b := range []blocks.Block{kept, gone} {
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sess := s.NewSession()
	defer sess.Close()
	if ok, err := sess.Keep(kept.Cid()); err != nil || !ok {
		t.Fatalf("Keep of a stored block: %v %v", ok, err)
	}
	if ok, err := sess.Keep(block(t, "never stored").Cid()); err != nil || ok {
		t.Fatalf("Keep of a block never stored: %v %v", ok, err)
	}
	if _, err := s.Collect(ctx, func(context.Context, func(cid.Cid)) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, kept.Cid()); !ok {
		t.Fatal("a block a session keeps was collected")
	}
	if ok, _ := s.Has(ctx, gone.Cid()); ok {
		t.Fatal("a block nothing keeps survived the collection")
	}
}
