package blockstore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/artmesh/artmesh"
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

	live := newMarkSet()
	if err := mark(ctx, func(c cid.Cid) { live.add(c.Hash()) }); err != nil {
		return st, fmt.Errorf("blockstore: mark: %w", err)
	}
	live.seal()
	if err := ctx.Err(); err != nil {
		return st, err
	}

	// Sweep with writes held off, so that no session adds a key between the
	// check and the delete.
	s.mu.Lock()
	keep := func(k string) bool {
		if live.has(k) {
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

// markSet is the set of blocks a collection keeps, as 64-bit
// fingerprints of their keys (maphash, with a seed of its own for each
// collection): 8 bytes a block, where a map of the keys took about 100.
// Two keys that share a fingerprint keep a dead block until the next
// collection (at a million blocks, odds of about one in ten million); a
// live block is never lost to it.
type markSet struct {
	seed   maphash.Seed
	fps    []uint64
	sorted int // fps[:sorted] is sorted and without repeats
}

func newMarkSet() *markSet { return &markSet{seed: maphash.MakeSeed()} }

// add records the block of key k. A block reached from many roots is
// added many times: the repeats are dropped whenever the set doubles.
func (m *markSet) add(k []byte) {
	m.fps = append(m.fps, maphash.Bytes(m.seed, k))
	if len(m.fps) >= 1<<16 && len(m.fps) >= 2*m.sorted {
		m.seal()
	}
}

// seal sorts the set and drops its repeats; has needs it.
func (m *markSet) seal() {
	slices.Sort(m.fps)
	m.fps = slices.Compact(m.fps)
	m.sorted = len(m.fps)
}

// has reports whether the block of key k was added (or shares its
// fingerprint with one that was), once the set is sealed.
func (m *markSet) has(k string) bool {
	_, ok := slices.BinarySearch(m.fps[:m.sorted], maphash.String(m.seed, k))
	return ok
}

// compactRatio is the share of a pack's disk space that must be live for
// the pack to be left as it is.
const compactRatio = 0.5

// punchAlign is the unit holes are punched in: dead ranges are shrunk to
// whole units so that no live byte shares a punched block.
const punchAlign = 4096

// span is a record's bytes in its pack: [start, end).
type span struct{ start, end int64 }

// compact frees the disk space of removed blocks without needing any: it
// removes packs that hold no live block, then, for each pack that is
// mostly garbage, moves its live blocks to the active pack when they fit
// (using at most half the reserve) or else punches holes over its dead
// ranges. The active pack and packs not yet synced have their dead ranges
// punched too, so that a store whose whole content is in one pack gets
// space back.
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
	activeID, activeWritten := s.activeID, s.w.off
	s.mu.Unlock()

	spans, liveBytes, members, err := s.liveSpans()
	if err != nil {
		return err
	}
	var remove, rewritten []uint32
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Stat(s.packPath(id))
		if err != nil {
			continue
		}
		size, used := fi.Size(), allocated(fi)
		switch {
		case busy[id]:
			end := size
			if id == activeID {
				end = activeWritten // beyond it, bytes may be being written
			}
			freed, err := s.punchDead(id, spans[id], end)
			if err != nil {
				return err
			}
			st.DiskFreed += freed
		case liveBytes[id] == 0:
			remove = append(remove, id)
			st.DiskFreed += used
		}
	}
	if err := s.removePacks(remove, st); err != nil {
		return err
	}
	// Then mostly-dead packs, with the room the dead ones left.
	for _, id := range ids {
		if busy[id] || liveBytes[id] == 0 {
			continue
		}
		fi, err := os.Stat(s.packPath(id))
		if err != nil {
			continue
		}
		used := allocated(fi)
		if float64(liveBytes[id]) >= compactRatio*float64(used) {
			continue
		}
		s.mu.Lock()
		room := s.roomLocked(liveBytes[id], true)
		s.mu.Unlock()
		if room == nil {
			if err := s.rewrite(ctx, id, members[id]); err == nil {
				rewritten = append(rewritten, id)
				st.PacksRewritten++
				st.DiskFreed += used - liveBytes[id]
				continue
			} else if artmesh.KindOf(err) != artmesh.InsufficientStorage {
				return err
			}
			// The room went meanwhile: punch instead. What was moved
			// stays pending and is committed with the next sync.
		}
		freed, err := s.punchDead(id, spans[id], fi.Size())
		if err != nil {
			return err
		}
		st.DiskFreed += freed
	}
	if len(rewritten) == 0 {
		return nil
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	return s.removePacks(rewritten, st)
}

// liveSpans lists, per pack, the records that the index or a pending write
// points to. A block moved by a compaction whose sync is still to come is
// live in both packs.
func (s *Store) liveSpans() (spans map[uint32][]span, liveBytes map[uint32]int64, members map[uint32][]string, err error) {
	spans = make(map[uint32][]span)
	liveBytes = make(map[uint32]int64)
	members = make(map[uint32][]string)
	add := func(k string, l loc) {
		start := int64(l.offset) - int64(recordHeader+len(k))
		spans[l.pack] = append(spans[l.pack], span{start, int64(l.offset) + int64(l.length)})
		liveBytes[l.pack] += int64(l.length)
		members[l.pack] = append(members[l.pack], k)
	}
	s.mu.Lock()
	for k, l := range s.pending {
		add(k, l)
	}
	s.mu.Unlock()
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketIndex)).ForEach(func(k, v []byte) error {
			l, err := decodeLoc(v)
			if err != nil {
				return err
			}
			add(string(k), l)
			return nil
		})
	})
	return spans, liveBytes, members, err
}

// punchDead punches holes over the bytes of pack id below end that no live
// record uses, and returns the disk space that came back.
func (s *Store) punchDead(id uint32, live []span, end int64) (int64, error) {
	sort.Slice(live, func(i, j int) bool { return live[i].start < live[j].start })
	var dead []span
	at := int64(0)
	for _, sp := range append(live, span{end, end}) {
		lo := (at + punchAlign - 1) / punchAlign * punchAlign
		hi := min(sp.start, end) / punchAlign * punchAlign
		if hi > lo {
			dead = append(dead, span{lo, hi})
		}
		at = max(at, sp.end)
	}
	if len(dead) == 0 {
		return 0, nil
	}
	f, err := os.OpenFile(s.packPath(id), os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("blockstore: open pack: %w", err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("blockstore: %w", err)
	}
	// A reader holds rmu from its lookup to its pread, so none reads a
	// range while it is punched.
	s.rmu.Lock()
	for _, d := range dead {
		ok, err := punchHole(f, d.start, d.end-d.start)
		if err != nil {
			s.rmu.Unlock()
			return 0, fmt.Errorf("blockstore: punch pack %d: %w", id, err)
		}
		if !ok {
			break // the filesystem cannot; the pack is rewritten when there is room
		}
	}
	s.rmu.Unlock()
	after, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("blockstore: %w", err)
	}
	return max(allocated(before)-allocated(after), 0), nil
}

// removePacks deletes the pack files ids.
func (s *Store) removePacks(ids []uint32, st *CollectStats) error {
	if len(ids) == 0 {
		return nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for _, id := range ids {
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
		// A copy is checked before it gets a new checksum: compaction
		// never launders a bad block into a good-looking one. A block
		// that fails is quarantined, not copied, and the pack goes with
		// the rest.
		s.rmu.RLock()
		l, ok, err := s.lookup(k, true)
		var data []byte
		if err == nil && ok && l.pack == id {
			data, err = s.readChecked(mh.Multihash(k), l, check)
		}
		s.rmu.RUnlock()
		if errors.Is(err, ErrCorrupt) {
			continue
		}
		if err != nil {
			return err
		}
		if data == nil {
			continue
		}
		sum := l.crc
		if !l.hasCRC {
			sum = crc32.Checksum(data, castagnoli)
		}
		s.mu.Lock()
		if _, moved := s.pending[k]; !moved {
			err = s.appendLocked(k, data, sum, true)
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
