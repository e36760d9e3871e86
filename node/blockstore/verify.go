package blockstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
	bolt "go.etcd.io/bbolt"
)

// # Every read is verified
//
// A block's bytes are hashed when they enter the store: an import makes
// the CID from the bytes, and a block from a peer is checked against its
// CID on arrival. The store then computes a CRC-32C of the bytes and keeps
// it in the block's index entry (as Ceph's BlueStore keeps a checksum per
// blob). Every Get checks the bytes it read against that CRC, which costs
// a few percent of a hash, so no byte leaves the node, over HTTP or to a
// peer, that differs from what was hashed. Index entries from before the
// checksums (16 bytes) are verified by their multihash instead.
//
// A block that fails is quarantined: its index entry is removed (so it is
// never served again and counts as missing: Has is false, a fetch brings
// it back), a record of it is kept in the quarantine bucket, and
// Options.OnCorrupt is told, so that the node stops being a holder of
// what needs it and repairs it from another holder.
//
// Scrub re-hashes every block in the background against its multihash
// (a deep check, which also catches a block whose checksum was computed
// over bad bytes), pack by pack, resuming where the last pass stopped.

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and
// arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	bucketQuarantine = "quarantine"
	bucketMeta       = "meta"
	keyScrub         = "scrub"
)

// ErrCorrupt is matched (errors.Is) by the error of a read whose bytes did
// not match the block's checksum or multihash.
var ErrCorrupt = errors.New("blockstore: block is corrupt")

// CorruptError is the error of a read that found a block's bytes bad. The
// block is quarantined by then. It matches ErrCorrupt and also ipld's
// ErrNotFound, so that a reader with an exchange fetches a good copy.
type CorruptError struct {
	Hash   mh.Multihash
	Pack   uint32
	Offset uint64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("blockstore: block %s (pack %d, offset %d) is corrupt: %s; it is quarantined", cid.NewCidV1(cid.Raw, e.Hash), e.Pack, e.Offset, e.Reason)
}

// Is matches ErrCorrupt and ipld.ErrNotFound.
func (e *CorruptError) Is(target error) bool {
	if target == ErrCorrupt {
		return true
	}
	_, ok := target.(ipld.ErrNotFound)
	return ok
}

// Quarantined is the record of one block taken out of service.
type Quarantined struct {
	CID    string    `json:"cid"` // as a raw-codec CIDv1 of its multihash
	Pack   uint32    `json:"pack"`
	Offset uint64    `json:"offset"`
	Length uint32    `json:"length"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// check returns why data is not the block stored under hash at l, or ""
// when it is: the CRC-32C when the entry has one, else the multihash.
func check(hash mh.Multihash, l loc, data []byte) string {
	if uint32(len(data)) != l.length {
		return fmt.Sprintf("read %d bytes of %d", len(data), l.length)
	}
	if l.hasCRC {
		if got := crc32.Checksum(data, castagnoli); got != l.crc {
			return fmt.Sprintf("CRC-32C %08x, stored with %08x", got, l.crc)
		}
		return ""
	}
	return deepCheck(hash, data)
}

// readChecked reads the bytes of the block stored under hash at l and
// checks them with verify (nil: no check). Bytes that cannot be read, or
// fail the check, are quarantined, and the error is the quarantine's.
// Called with rmu read-locked.
func (s *Store) readChecked(hash mh.Multihash, l loc, verify func(mh.Multihash, loc, []byte) string) ([]byte, error) {
	data := make([]byte, l.length)
	if err := s.readAt(l, data); err != nil {
		if unreadable(err) {
			return nil, s.quarantine(hash, l, fmt.Sprintf("its bytes cannot be read: %v", err))
		}
		return nil, err
	}
	if verify != nil {
		if reason := verify(hash, l, data); reason != "" {
			return nil, s.quarantine(hash, l, reason)
		}
	}
	return data, nil
}

// deepCheck returns why data does not hash to hash, or "".
func deepCheck(hash mh.Multihash, data []byte) string {
	dec, err := mh.Decode(hash)
	if err != nil {
		return fmt.Sprintf("its multihash does not decode: %v", err)
	}
	sum, err := mh.Sum(data, dec.Code, dec.Length)
	if err != nil {
		return fmt.Sprintf("hashing: %v", err)
	}
	if !bytes.Equal(sum, hash) {
		return "its bytes do not match its multihash"
	}
	return ""
}

// unreadable reports whether a read error means the block's bytes are
// gone or damaged (a pack file missing or cut short, an I/O error of the
// medium), rather than a state of the store.
func unreadable(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EIO)
}

// quarantine takes the block stored under hash at l out of service and
// returns the error a read of it reports. Nothing happens to the index
// when the block has moved or gone meanwhile. Called with rmu read-locked
// or not at all, never with mu held.
func (s *Store) quarantine(hash mh.Multihash, l loc, reason string) error {
	key := string(hash)
	cerr := &CorruptError{Hash: hash, Pack: l.pack, Offset: l.offset, Reason: reason}
	rec, _ := json.Marshal(Quarantined{
		CID: cid.NewCidV1(cid.Raw, hash).String(), Pack: l.pack, Offset: l.offset, Length: l.length,
		At: s.now().UTC(), Reason: reason,
	})
	removed := false
	s.mu.Lock()
	if cur, ok := s.pending[key]; ok && cur == l {
		delete(s.pending, key)
		s.dropped[key] = l
		removed = true
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketIndex))
		if v := b.Get([]byte(key)); v != nil {
			if cur, err := decodeLoc(v); err == nil && cur == l {
				if err := b.Delete([]byte(key)); err != nil {
					return err
				}
				removed = true
			}
		}
		if !removed {
			return nil
		}
		q, err := tx.CreateBucketIfNotExists([]byte(bucketQuarantine))
		if err != nil {
			return err
		}
		return q.Put([]byte(key), rec)
	})
	s.mu.Unlock()
	if err != nil {
		return errors.Join(cerr, fmt.Errorf("blockstore: quarantine: %w", err))
	}
	if removed {
		s.corrupt.Add(1)
		if s.opts.OnCorrupt != nil {
			s.opts.OnCorrupt(cid.NewCidV1(cid.Raw, hash), reason)
		}
	}
	return cerr
}

func (s *Store) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// CorruptFound is how many blocks this Store quarantined since it was
// opened.
func (s *Store) CorruptFound() int64 { return s.corrupt.Load() }

// QuarantineList returns the quarantined blocks, at most limit of them
// (all when limit <= 0), and how many there are in all.
func (s *Store) QuarantineList(limit int) ([]Quarantined, int, error) {
	var out []Quarantined
	total := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		q := tx.Bucket([]byte(bucketQuarantine))
		if q == nil {
			return nil
		}
		return q.ForEach(func(_, v []byte) error {
			total++
			if limit > 0 && len(out) >= limit {
				return nil
			}
			var r Quarantined
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("blockstore: quarantine record: %w", err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, total, err
}

// ScrubPass is what one scrub pass checked and found.
type ScrubPass struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Blocks   int64     `json:"blocks"`
	Bytes    int64     `json:"bytes"`
	Corrupt  int64     `json:"corrupt"`
}

// ScrubState is a store's scrubbing, kept in its index across restarts:
// the pass under way, if any, and the last one that finished.
type ScrubState struct {
	Current *ScrubPass `json:"current,omitempty"`
	// NextPack is the first pack the current pass has not checked.
	NextPack uint32     `json:"next_pack,omitempty"`
	Last     *ScrubPass `json:"last,omitempty"`
}

// ScrubStatus returns the scrubbing's state.
func (s *Store) ScrubStatus() (ScrubState, error) {
	var st ScrubState
	err := s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte(bucketMeta))
		if m == nil {
			return nil
		}
		if v := m.Get([]byte(keyScrub)); v != nil {
			return json.Unmarshal(v, &st)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("blockstore: scrub state: %w", err)
	}
	return st, nil
}

func (s *Store) saveScrub(st ScrubState) error {
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return m.Put([]byte(keyScrub), v)
	})
}

// Throttle is called before a scrub reads n bytes; it waits as long as
// the scrub's rate allows, and its error ends the pass.
type Throttle func(ctx context.Context, n int) error

// scrubBatch is how many index entries a scrub reads per index
// transaction: a long read transaction would keep bbolt from reusing
// pages.
const scrubBatch = 1024

// Scrub runs a pass over every block, or resumes the pass an earlier call
// (or run) left unfinished, pack by pack from the oldest: each block is
// read and hashed against its multihash, and what fails is quarantined.
// throttle (nil: none) paces the reads. The state is saved after each
// pack, so a pass cut short resumes with the first pack it had not
// finished. It returns the pass once it finished.
func (s *Store) Scrub(ctx context.Context, throttle Throttle) (ScrubPass, error) {
	st, err := s.ScrubStatus()
	if err != nil {
		return ScrubPass{}, err
	}
	if st.Current == nil {
		st.Current = &ScrubPass{Started: s.now().UTC()}
		st.NextPack = 0
	}
	for {
		ids, err := s.packIDs()
		if err != nil {
			return *st.Current, err
		}
		next := -1
		for _, id := range ids {
			if id >= st.NextPack {
				next = int(id)
				break
			}
		}
		if next < 0 {
			break
		}
		if err := s.scrubPack(ctx, uint32(next), st.Current, throttle); err != nil {
			_ = s.saveScrub(st)
			return *st.Current, err
		}
		st.NextPack = uint32(next) + 1
		if err := s.saveScrub(st); err != nil {
			return *st.Current, fmt.Errorf("blockstore: scrub state: %w", err)
		}
	}
	pass := *st.Current
	pass.Finished = s.now().UTC()
	st.Current, st.NextPack, st.Last = nil, 0, &pass
	if err := s.saveScrub(st); err != nil {
		return pass, fmt.Errorf("blockstore: scrub state: %w", err)
	}
	return pass, nil
}

// scrubPack checks every block whose index entry points into pack id.
func (s *Store) scrubPack(ctx context.Context, id uint32, pass *ScrubPass, throttle Throttle) error {
	type entry struct {
		key string
		l   loc
	}
	var after []byte
	var fixes []checksumFix
	for {
		var batch []entry
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(bucketIndex)).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < scrubBatch; k, v = c.Next() {
				after = append(after[:0], k...)
				l, err := decodeLoc(v)
				if err != nil || l.pack != id {
					continue
				}
				batch = append(batch, entry{string(k), l})
			}
			if k == nil {
				after = nil
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("blockstore: scrub: %w", err)
		}
		for _, e := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if throttle != nil {
				// A block costs a seek besides its bytes: small blocks
				// are paced as 4 KiB at least.
				if err := throttle(ctx, max(int(e.l.length), 4096)); err != nil {
					return err
				}
			}
			bad, fix, err := s.scrubOne(e.key, e.l)
			if err != nil {
				return err
			}
			pass.Blocks++
			pass.Bytes += int64(e.l.length)
			if bad {
				pass.Corrupt++
			}
			if fix != nil {
				fixes = append(fixes, *fix)
			}
		}
		s.fixChecksums(fixes)
		fixes = fixes[:0]
		if after == nil {
			return nil
		}
	}
}

// checksumFix is an index entry whose block is good but whose checksum
// is wrong or missing.
type checksumFix struct {
	key string
	l   loc
	sum uint32
}

// scrubOne hashes the block stored under key at l, if it is still there,
// and quarantines it when it fails. bad reports that it did; fix, when
// not nil, is a checksum to store.
func (s *Store) scrubOne(key string, l loc) (bad bool, fix *checksumFix, err error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	cur, ok, err := s.lookup(key, true)
	if err != nil || !ok || cur != l {
		return false, nil, err // moved or gone meanwhile
	}
	data, err := s.readChecked(mh.Multihash(key), l, func(h mh.Multihash, _ loc, d []byte) string { return deepCheck(h, d) })
	if errors.Is(err, ErrCorrupt) {
		return true, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	if sum := crc32.Checksum(data, castagnoli); !l.hasCRC || sum != l.crc {
		// The bytes are good but their checksum is not (or there is none
		// yet, in an entry from before checksums): store the right one,
		// so that reads pass the cheap check.
		return false, &checksumFix{key: key, l: l, sum: sum}, nil
	}
	return false, nil, nil
}

// fixChecksums stores the checksums of fixes, in one transaction, for the
// entries that are still as they were.
func (s *Store) fixChecksums(fixes []checksumFix) {
	if len(fixes) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketIndex))
		for _, f := range fixes {
			if _, ok := s.pending[f.key]; ok {
				continue
			}
			v := b.Get([]byte(f.key))
			if v == nil {
				continue
			}
			if cur, err := decodeLoc(v); err != nil || cur != f.l {
				continue
			}
			nl := f.l
			nl.crc, nl.hasCRC = f.sum, true
			if err := b.Put([]byte(f.key), nl.encode()); err != nil {
				return err
			}
		}
		return nil
	})
}

// RestartScrub drops the pass under way, if any, so that the next Scrub
// starts a whole new one.
func (s *Store) RestartScrub() error {
	st, err := s.ScrubStatus()
	if err != nil {
		return err
	}
	if st.Current == nil {
		return nil
	}
	st.Current, st.NextPack = nil, 0
	if err := s.saveScrub(st); err != nil {
		return fmt.Errorf("blockstore: scrub state: %w", err)
	}
	return nil
}
