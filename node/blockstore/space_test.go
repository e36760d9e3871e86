package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/artmesh/artmesh"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// fakeDisk is a DiskSpace whose free space the test sets.
type fakeDisk struct {
	free, total atomic.Int64
	calls       atomic.Int64 // measurements
}

func newFakeDisk(free, total int64) *fakeDisk {
	d := &fakeDisk{}
	d.free.Store(free)
	d.total.Store(total)
	return d
}

func (d *fakeDisk) space(string) (int64, int64, error) {
	d.calls.Add(1)
	return d.free.Load(), d.total.Load(), nil
}

// TestMeasuredNearTheReserve: far from the reserve the filesystem is
// measured about once a MiB of appends; near it, at every append, so that
// a block that would eat into the reserve is refused.
func TestMeasuredNearTheReserve(t *testing.T) {
	ctx := context.Background()
	disk := newFakeDisk(10<<30, 100<<30) // reserve 1 GiB
	s := open(t, t.TempDir(), Options{NoSync: true, DiskSpace: disk.space})
	for i := range 1000 {
		if err := s.Put(ctx, payload(t, i, 4<<10)); err != nil {
			t.Fatal(err)
		}
		disk.free.Add(-(4 << 10))
	}
	if c := disk.calls.Load(); c > 10 {
		t.Errorf("%d measurements for 4 MiB of appends far from the reserve, want about 4", c)
	}
	// Now 64 KiB above the reserve: every append measures, and the 17th
	// block of 4 KiB does not fit.
	disk.free.Store(1<<30 + 64<<10)
	var stored int
	for i := 1000; i < 1100; i++ {
		err := s.Put(ctx, payload(t, i, 4<<10))
		if errors.Is(err, artmesh.InsufficientStorage) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		disk.free.Add(-(4<<10 + 40))
		stored++
	}
	if stored < 14 || stored > 16 {
		t.Errorf("%d blocks of 4 KiB stored in the 64 KiB above the reserve, want about 15", stored)
	}
}

// payload is a block of n bytes that differs by seed.
func payload(t testing.TB, seed, n int) blocks.Block {
	return block(t, fmt.Sprintf("%08d", seed)+strings.Repeat("x", n-8))
}

func TestDefaultReserve(t *testing.T) {
	for _, tc := range []struct{ total, want int64 }{
		{1 << 30, (1 << 30) / 50},
		{100 << 30, 1 << 30},
		{48 << 20, MinReserve},
		{8 << 20, 2 << 20},
		{0, 0},
	} {
		if got := DefaultReserve(tc.total); got != tc.want {
			t.Errorf("DefaultReserve(%d) = %d, want %d", tc.total, got, tc.want)
		}
	}
}

// TestReserveRefusesBeforeWriting checks that a write that would leave less
// than the reserve free fails with InsufficientStorage, says how much is
// free, and stores no byte.
func TestReserveRefusesBeforeWriting(t *testing.T) {
	const total = 1000 << 20
	for _, tc := range []struct {
		name     string
		free     int64
		reserve  int64
		size     int
		wantFail bool
		full     bool // free is below the reserve
	}{
		{"room", 30 << 20, 0, 1000, false, false},
		{"default reserve reached", 20<<20 + 500, 0, 1000, true, false}, // 2 % of 1000 MiB is 20 MiB
		{"below the default reserve", 10 << 20, 0, 1000, true, true},
		{"set reserve reached", 5 << 20, 6 << 20, 1000, true, true},
		{"no reserve", 2000, -1, 1000, false, false},
		{"no reserve, no room", 500, -1, 1000, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := newFakeDisk(tc.free, total)
			s := open(t, t.TempDir(), Options{NoSync: true, Reserve: tc.reserve, DiskSpace: disk.space})
			ctx := context.Background()
			b := payload(t, 1, tc.size)
			err := s.Put(ctx, b)
			if !tc.wantFail {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				return
			}
			if !errors.Is(err, artmesh.InsufficientStorage) {
				t.Fatalf("Put: %v, want InsufficientStorage", err)
			}
			if msg := artmesh.Message(err); !strings.Contains(msg, "free") {
				t.Errorf("message %q does not say what is free", msg)
			}
			if err := s.CheckSpace(int64(tc.size)); !errors.Is(err, artmesh.InsufficientStorage) {
				t.Errorf("CheckSpace: %v, want InsufficientStorage", err)
			}
			if full := s.CheckSpace(0) != nil; full != tc.full {
				t.Errorf("CheckSpace(0) refuses: %v, want %v (free below the reserve)", full, tc.full)
			}
			if err := s.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Has(ctx, b.Cid()); ok {
				t.Error("the refused block is in the store")
			}
			st, err := s.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if st.PackBytes != 0 {
				t.Errorf("%d bytes were written for a refused block", st.PackBytes)
			}
		})
	}
}

// TestFullDiskMidWrite fails pack writes with ENOSPC: the failure is
// InsufficientStorage, the pack is cut back, no new pack is started per
// failure, and once writes work again every accepted block is stored.
func TestFullDiskMidWrite(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{NoSync: true, Reserve: -1})
	var full atomic.Bool
	s.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if full.Load() {
			// Half the bytes land, as on a disk that fills mid-write.
			n, err := f.WriteAt(b[:len(b)/2], off)
			if err != nil {
				return n, err
			}
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.WriteAt(b, off)
	}
	ctx := context.Background()
	var stored []blocks.Block
	for i := range 3 {
		b := payload(t, i, 300<<10)
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, b)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := s.Stat()
	if err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	// Blocks are accepted into the buffer until it must be written; then
	// puts and syncs fail.
	var accepted []blocks.Block
	var failures int
	for i := 3; i < 40 && failures < 5; i++ {
		b := payload(t, i, 300<<10)
		err := s.Put(ctx, b)
		if err == nil {
			accepted = append(accepted, b)
			continue
		}
		failures++
		if !errors.Is(err, artmesh.InsufficientStorage) {
			t.Fatalf("Put on a full disk: %v, want InsufficientStorage", err)
		}
	}
	if failures == 0 {
		t.Fatal("no Put failed on a full disk")
	}
	if err := s.Sync(ctx); !errors.Is(err, artmesh.InsufficientStorage) {
		t.Fatalf("Sync on a full disk: %v, want InsufficientStorage", err)
	}
	after, err := s.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if after.Packs != before.Packs {
		t.Errorf("%d packs after %d failed writes, %d before: a failed write started a pack", after.Packs, failures, before.Packs)
	}
	if after.PackBytes != before.PackBytes {
		t.Errorf("pack bytes %d after the failures, %d before: a partial record was left", after.PackBytes, before.PackBytes)
	}

	full.Store(false)
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync once there is room: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{NoSync: true, Reserve: -1})
	for _, b := range append(stored, accepted...) {
		got, err := s.Get(ctx, b.Cid())
		if err != nil {
			t.Fatalf("Get %s after reopening: %v", b.Cid(), err)
		}
		if !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("block %s reads back wrong", b.Cid())
		}
	}
}

// TestCollectOnFullDisk collects on a disk with no free space at all: dead
// packs are removed, a mostly-dead pack and the active pack get their dead
// ranges punched out, and the live blocks read back.
func TestCollectOnFullDisk(t *testing.T) {
	ctx := context.Background()
	disk := newFakeDisk(1<<30, 1<<30)
	dir := t.TempDir()
	// Packs of about 1 MiB: blocks of 100 KiB, 10 to a pack.
	s := open(t, dir, Options{NoSync: true, MaxPackSize: 1 << 20, Reserve: 1 << 20, DiskSpace: disk.space})
	var all []blocks.Block
	for i := range 35 {
		b := payload(t, i, 100<<10)
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		all = append(all, b)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	disk.free.Store(0) // full: nothing may be moved

	// Keep pack 1 whole, nothing of pack 2, every third block of pack 3 and
	// of the active pack 4.
	live := map[int]bool{}
	for i := range all {
		switch {
		case i < 10:
			live[i] = true
		case i >= 20 && i%3 == 0:
			live[i] = true
		}
	}
	usedBefore := diskUsed(t, dir)
	st, err := s.Collect(ctx, func(_ context.Context, keep func(c cid.Cid)) error {
		for i, b := range all {
			if live[i] {
				keep(b.Cid())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Collect on a full disk: %v", err)
	}
	usedAfter := diskUsed(t, dir)
	dead := int64(len(all)-len(live)) * 100 << 10
	if usedBefore-usedAfter < dead*3/4 {
		t.Errorf("the packs use %d bytes after the collection, %d before: %d of %d dead bytes came back",
			usedAfter, usedBefore, usedBefore-usedAfter, dead)
	}
	if st.PacksRemoved != 1 || st.DiskFreed < dead*3/4 {
		t.Errorf("stats %+v: want 1 pack removed and about %d bytes freed", st, dead)
	}
	for i, b := range all {
		got, err := s.Get(ctx, b.Cid())
		if !live[i] {
			continue
		}
		if err != nil {
			t.Fatalf("Get live block %d: %v", i, err)
		}
		if !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("live block %d reads back wrong", i)
		}
	}
}

// diskUsed sums the disk space the packs under dir use.
func diskUsed(t *testing.T, dir string) int64 {
	t.Helper()
	s := &Store{dir: dir}
	ids, err := s.packIDs()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, id := range ids {
		fi, err := os.Stat(s.packPath(id))
		if err != nil {
			t.Fatal(err)
		}
		n += allocated(fi)
	}
	return n
}
