package blockstore

import (
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	bolt "go.etcd.io/bbolt"
)

// CollectStats tells what a collection did.
type CollectStats struct {
	BlocksRemoved  int64         `json:"blocks_removed"`
	BytesRemoved   int64         `json:"bytes_removed"`
	PacksRemoved   int           `json:"packs_removed"`
	PacksRewritten int           `json:"packs_rewritten"`
	DiskFreed      int64         `json:"disk_bytes_freed"`
	Duration       time.Duration `json:"-"`
}

// MarkFunc calls keep for every block that must stay. It runs while the
// collection is under way; blocks written by open sessions meanwhile are
// kept without it.
type MarkFunc func(ctx context.Context, keep func(cid.Cid)) error

// Collect removes every block that mark does not keep and that no session
// open at any time during the collection wrote or found, then compacts the
// packs. It is safe while imports run: an import's blocks are protected by
// its session until the catalog references them, and mark starts after the
// collection began, so whatever a session closed before is reachable from
// what mark sees.
func (s *Store) Collect(ctx context.Context, mark MarkFunc) (CollectStats, error) {
	start := time.Now()
	var st CollectStats
	s.mu.Lock()
	if s.gcActive {
		s.mu.Unlock()
		return st, fmt.Errorf("blockstore: a collection is already running")
	}
	s.gcActive = true
	s.gcKeep = make(map[string]struct{})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.gcActive = false
		s.gcKeep = nil
		s.mu.Unlock()
	}()

	live := make(map[string]struct{})
	if err := mark(ctx, func(c cid.Cid) { live[string(c.Hash())] = struct{}{} }); err != nil {
		return st, fmt.Errorf("blockstore: mark: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}

	// Sweep with writes held off, so that no session adds a key between the
	// check and the delete.
	s.mu.Lock()
	keep := func(k string) bool {
		if _, ok := live[k]; ok {
			return true
		}
		if _, ok := s.gcKeep[k]; ok {
			return true
		}
		if _, ok := s.pending[k]; ok {
			return true
		}
		for sess := range s.sessions {
			if _, ok := sess.keys[k]; ok {
				return true
			}
		}
		return false
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketIndex))
		var dead [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if keep(string(k)) {
				return nil
			}
			l, err := decodeLoc(v)
			if err != nil {
				return err
			}
			dead = append(dead, append([]byte(nil), k...))
			st.BlocksRemoved++
			st.BytesRemoved += int64(l.length)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	s.mu.Unlock()
	if err != nil {
		return st, fmt.Errorf("blockstore: sweep: %w", err)
	}
	if err := s.compact(ctx, &st); err != nil {
		return st, err
	}
	st.Duration = time.Since(start)
	return st, nil
}

// compactRatio is the share of a pack's bytes that must be live for the
// pack to be left as it is.
const compactRatio = 0.5

// compact removes packs that hold no live block and rewrites packs that are
// mostly garbage.
func (s *Store) compact(ctx context.Context, st *CollectStats) error {
	ids, err := s.packIDs()
	if err != nil {
		return err
	}
	s.mu.Lock()
	busy := map[uint32]bool{s.activeID: true}
	for _, f := range s.unsynced {
		busy[packIDOf(f.Name())] = true
	}
	for _, l := range s.pending {
		busy[l.pack] = true
	}
	s.mu.Unlock()

	liveBytes := make(map[uint32]int64)
	members := make(map[uint32][]string)
	if err := s.forEach(func(k string, l loc) error {
		liveBytes[l.pack] += int64(l.length)
		members[l.pack] = append(members[l.pack], k)
		return nil
	}); err != nil {
		return err
	}
	var remove []uint32
	for _, id := range ids {
		if busy[id] {
			continue
		}
		fi, err := os.Stat(s.packPath(id))
		if err != nil {
			continue
		}
		size := fi.Size()
		switch {
		case liveBytes[id] == 0:
			remove = append(remove, id)
			st.DiskFreed += size
		case float64(liveBytes[id]) < compactRatio*float64(size):
			if err := s.rewrite(ctx, id, members[id]); err != nil {
				return err
			}
			remove = append(remove, id)
			st.PacksRewritten++
			st.DiskFreed += size - liveBytes[id]
		}
	}
	if len(remove) == 0 {
		return nil
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for _, id := range remove {
		s.fmu.Lock()
		if f, ok := s.files[id]; ok {
			f.Close()
			delete(s.files, id)
		}
		s.fmu.Unlock()
		if err := os.Remove(s.packPath(id)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("blockstore: remove pack: %w", err)
		}
		st.PacksRemoved++
	}
	return nil
}

// rewrite copies the live blocks of pack id to the active pack. Their new
// places become the index entries at the next Sync.
func (s *Store) rewrite(ctx context.Context, id uint32, keys []string) error {
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.rmu.RLock()
		l, ok, err := s.lookup(k)
		var data []byte
		if err == nil && ok && l.pack == id {
			data = make([]byte, l.length)
			err = s.readAt(l, data)
		}
		s.rmu.RUnlock()
		if err != nil && unreadable(err) {
			// A block that cannot be read is not copied: it is
			// quarantined, and the pack goes with the rest.
			_ = s.quarantine(mh.Multihash(k), l, fmt.Sprintf("its bytes cannot be read: %v", err))
			continue
		}
		if err != nil {
			return err
		}
		if data == nil {
			continue
		}
		// A copy is checked before it gets a new checksum: compaction
		// never launders a bad block into a good-looking one.
		if reason := check(mh.Multihash(k), l, data); reason != "" {
			_ = s.quarantine(mh.Multihash(k), l, reason)
			continue
		}
		sum := l.crc
		if !l.hasCRC {
			sum = crc32.Checksum(data, castagnoli)
		}
		s.mu.Lock()
		if _, moved := s.pending[k]; !moved {
			err = s.appendLocked(k, data, sum)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func packIDOf(path string) uint32 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), packSuffix), 10, 32)
	return uint32(n)
}
