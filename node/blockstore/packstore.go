// Package blockstore is the node's persistent block store: blocks are
// appended to pack files and found through an on-disk index.
//
// # Why pack files
//
// An import of a large file writes thousands of blocks of about 256 KiB in a
// row, and the write is acknowledged only when every block is durable. A
// store of one file per block (flatfs) pays a file create, and to be durable
// an fsync of the file and its directory, for every block: on this class of
// machine that caps a durable import at a fraction of the disk's sequential
// speed. Key-value stores (pebble, badger) write a block's bytes twice (log,
// then table) or need value-log garbage collection of their own. A pack store
// writes each block's bytes once, sequentially, into an append-only file, and
// makes a whole import durable with one fdatasync of the pack plus one commit
// of the index (a bbolt B+tree keyed by multihash): the ingest ceiling is the
// disk's sequential write speed. Concurrent writers share the pack and its
// syncs (group commit), which is what lets thousands of small snippet
// creates a second be durable. Blocks are read with one pread each.
//
// # Durability and crash safety
//
// The index is the commit record: a block exists only once its index entry is
// committed, and entries are committed only after the bytes they point to
// were synced. A crash loses at most unsynced tail bytes of the active pack,
// which nothing references; Compact reclaims them.
//
// # Deletion
//
// DeleteBlock removes the index entry. A collection removes packs with no
// live block, then, for packs whose live bytes fell under half their disk
// space, moves the live blocks to the active pack when they fit within
// half the reserve, or else punches the dead ranges out (fallocate
// PUNCH_HOLE, the active pack included), so disk space comes back even on
// a full disk.
//
// # Full disks
//
// Writes keep a reserve of free space (Options.Reserve): a record that
// would eat into it is refused with artmesh.InsufficientStorage before it
// is buffered, and CheckSpace lets a caller that knows its size refuse
// before it starts. A pack write that fails (ENOSPC) keeps the buffer and
// cuts the pack back to its last whole record, and the next flush retries
// in the same pack: nothing accepted is lost, no partial record stays, and
// failures do not start new packs.
package blockstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
	bolt "go.etcd.io/bbolt"

	"github.com/artmesh/artmesh/internal/residency"
)

const (
	packSuffix  = ".pack"
	indexFile   = "index.db"
	packsDir    = "packs"
	bucketIndex = "index"
	// locSize is an index entry with its block's CRC-32C; oldLocSize one
	// written before the store kept checksums (its block is verified by
	// its multihash instead).
	locSize      = 20
	oldLocSize   = 16
	recordHeader = 4 + 1 // data length, key length; then key, then data
	// DefaultMaxPackSize is the size at which the active pack is closed and
	// a new one started.
	DefaultMaxPackSize = 1 << 30
	writeBufferSize    = 1 << 20
)

// loc is where a block's bytes are: pack number, offset of the data,
// length, and the CRC-32C (Castagnoli) of the data when hasCRC is set.
type loc struct {
	pack   uint32
	offset uint64
	length uint32
	crc    uint32
	hasCRC bool
}

func (l loc) encode() []byte {
	b := make([]byte, locSize)
	binary.BigEndian.PutUint32(b[0:4], l.pack)
	binary.BigEndian.PutUint64(b[4:12], l.offset)
	binary.BigEndian.PutUint32(b[12:16], l.length)
	binary.BigEndian.PutUint32(b[16:20], l.crc)
	return b
}

func decodeLoc(b []byte) (loc, error) {
	if len(b) != locSize && len(b) != oldLocSize {
		return loc{}, fmt.Errorf("blockstore: index entry of %d bytes, want %d", len(b), locSize)
	}
	l := loc{
		pack:   binary.BigEndian.Uint32(b[0:4]),
		offset: binary.BigEndian.Uint64(b[4:12]),
		length: binary.BigEndian.Uint32(b[12:16]),
	}
	if len(b) == locSize {
		l.crc, l.hasCRC = binary.BigEndian.Uint32(b[16:20]), true
	}
	return l, nil
}

// Options tune a Store.
type Options struct {
	// MaxPackSize is the size at which a new pack is started
	// (DefaultMaxPackSize when zero).
	MaxPackSize int64
	// NoSync skips fsync: for tests and benchmarks of the code path only.
	NoSync bool
	// SkipReadChecks serves blocks without checking them: for the
	// benchmark that measures what the checks cost, only.
	SkipReadChecks bool
	// OnCorrupt, when set, is told of every block that a read or a scrub
	// quarantined, by its raw-codec CID and why. It runs on the reader's
	// goroutine, with the store read-locked against pack removal: it must
	// not block, nor call back into the store.
	OnCorrupt func(c cid.Cid, reason string)
	// Now is the clock of quarantine records and scrub passes (nil:
	// time.Now).
	Now func() time.Time
	// Reserve is how many bytes of the filesystem writes leave free: a
	// write that would leave less fails with artmesh.InsufficientStorage
	// before it stores a byte. Zero means DefaultReserve of the
	// filesystem's size; negative keeps none. Compaction may use half of
	// it to move live blocks out of mostly-dead packs.
	Reserve int64
	// DiskSpace measures the filesystem (statfs when nil).
	DiskSpace DiskSpace
}

// Store is a persistent block store of pack files under one folder. It
// implements boxo's blockstore.Blockstore. All methods are safe for
// concurrent use.
type Store struct {
	dir  string
	opts Options
	db   *bolt.DB

	// mu guards the write state below.
	mu       sync.Mutex
	active   *os.File
	activeID uint32
	w        *packWriter
	size     int64 // bytes written to the active pack (including buffered)
	pending  map[string]loc
	unsynced []*os.File // packs with bytes written since the last sync, besides active
	seq      uint64     // incremented for every write; synced covers a prefix
	sessions map[*Session]struct{}
	// unmeasured is how many bytes may be appended before the free space
	// is measured again (see roomLocked).
	unmeasured int64
	gcKeep     map[string]struct{} // keys of sessions that ended during a collection
	gcActive   bool

	// syncMu serialises syncs, which makes concurrent Sync calls share one.
	syncMu sync.Mutex
	synced uint64 // guarded by syncMu: writes up to this seq are durable

	// rmu is held for reading from an index lookup to the end of the pread,
	// and for writing while packs are removed, so a reader never finds its
	// pack gone. Lock order: rmu, then mu, then fmu.
	rmu sync.RWMutex
	// fmu guards files, the open pack files.
	fmu   sync.Mutex
	files map[uint32]*os.File

	closed bool

	corrupt atomic.Int64 // blocks quarantined since Open
	// dropped holds the pending entries quarantined since the last Sync
	// (guarded by mu): a Sync that took them into its batch before takes
	// them out of the index again after its commit.
	dropped map[string]loc
	// writeAt writes to packs; tests replace it before the first write to
	// fail writes as a full disk does.
	writeAt writeAtFunc
}

// Open opens or creates the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxPackSize <= 0 {
		opts.MaxPackSize = DefaultMaxPackSize
	}
	if opts.DiskSpace == nil {
		opts.DiskSpace = statfsSpace
	}
	if err := os.MkdirAll(filepath.Join(dir, packsDir), 0o700); err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, indexFile), 0o600, &bolt.Options{NoFreelistSync: true, NoSync: opts.NoSync})
	if err != nil {
		return nil, fmt.Errorf("blockstore: open index: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(bucketIndex))
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("blockstore: init index: %w", err)
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		db:       db,
		pending:  make(map[string]loc),
		dropped:  make(map[string]loc),
		files:    make(map[uint32]*os.File),
		sessions: make(map[*Session]struct{}),
		writeAt:  fileWriteAt,
	}
	ids, err := s.packIDs()
	if err != nil {
		db.Close()
		return nil, err
	}
	next := uint32(1)
	if len(ids) > 0 {
		next = ids[len(ids)-1] + 1
	}
	// Every open starts a new pack, so a torn tail of an earlier run is never
	// appended to; Compact reclaims it.
	if err := s.startPack(next); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) packPath(id uint32) string {
	return filepath.Join(s.dir, packsDir, fmt.Sprintf("%08d%s", id, packSuffix))
}

// packIDs lists the pack files on disk, in order.
func (s *Store) packIDs() ([]uint32, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, packsDir))
	if err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	var ids []uint32
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), packSuffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 32)
		if err != nil {
			continue
		}
		ids = append(ids, uint32(n))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// startPack closes the active pack for writing and starts pack id. Called
// with mu held (or before the store is shared). When the active pack's
// buffer cannot be written, nothing changes: no new pack is started.
func (s *Store) startPack(id uint32) error {
	if s.active != nil {
		if err := s.w.Flush(); err != nil {
			return s.writeErr("flush pack", err)
		}
	}
	f, err := os.OpenFile(s.packPath(id), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return s.writeErr("new pack", err)
	}
	if !s.opts.NoSync {
		if err := syncDir(filepath.Join(s.dir, packsDir)); err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
	}
	if s.active != nil {
		s.unsynced = append(s.unsynced, s.active)
	}
	s.active, s.activeID, s.size = f, id, 0
	s.w = newPackWriter(f, func(f *os.File, b []byte, off int64) (int, error) { return s.writeAt(f, b, off) })
	s.fmu.Lock()
	s.files[id] = f
	s.fmu.Unlock()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blockstore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("blockstore: sync dir: %w", err)
	}
	return nil
}

// TrimResidency drops the block index's pages from the process's
// resident memory (see package residency).
func (s *Store) TrimResidency() error { return residency.Trim(s.db) }

// Close syncs what was written and closes the store. It is safe to call
// twice.
func (s *Store) Close() error {
	err := s.Sync(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.fmu.Lock()
	for _, f := range s.files {
		f.Close()
	}
	s.files = nil
	s.fmu.Unlock()
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("blockstore: close index: %w", cerr)
	}
	return err
}

var errClosed = errors.New("blockstore: closed")

// lookup returns where key's bytes are. ok is false when the block is not
// in the store. With flush, the bytes of a block still in the write buffer
// are written out, so that they can be read (on a full disk that fails);
// a lookup only of whether or where a block is, does not.
func (s *Store) lookup(key string, flush bool) (l loc, ok bool, err error) {
	s.mu.Lock()
	l, ok = s.pending[key]
	if ok {
		// The bytes may still be in the write buffer.
		if flush && l.pack == s.activeID && s.w.Buffered() > 0 {
			if ferr := s.w.Flush(); ferr != nil {
				err = s.writeErr("flush pack", ferr)
			}
		}
		s.mu.Unlock()
		return l, true, err
	}
	s.mu.Unlock()
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketIndex)).Get([]byte(key))
		if v == nil {
			return nil
		}
		var derr error
		l, derr = decodeLoc(v)
		ok = derr == nil
		return derr
	})
	return l, ok, err
}

// Has reports whether the block is in the store.
func (s *Store) Has(_ context.Context, c cid.Cid) (bool, error) {
	_, ok, err := s.lookup(string(c.Hash()), false)
	return ok, err
}

// GetSize returns the size of the block's data.
func (s *Store) GetSize(_ context.Context, c cid.Cid) (int, error) {
	l, ok, err := s.lookup(string(c.Hash()), false)
	if err != nil {
		return -1, err
	}
	if !ok {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	return int(l.length), nil
}

// Get returns the block, read from its pack.
func (s *Store) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	l, ok, err := s.lookup(string(c.Hash()), true)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	verify := check
	if s.opts.SkipReadChecks {
		verify = nil
	}
	data, err := s.readChecked(c.Hash(), l, verify)
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(data, c)
}

// readAt reads a block's bytes. Called with rmu read-locked.
func (s *Store) readAt(l loc, data []byte) error {
	f, err := s.packFile(l.pack)
	if err != nil {
		return err
	}
	if _, err := f.ReadAt(data, int64(l.offset)); err != nil {
		return fmt.Errorf("blockstore: read pack %d at %d: %w", l.pack, l.offset, err)
	}
	return nil
}

// packFile returns the open file of pack id, opening it if need be.
func (s *Store) packFile(id uint32) (*os.File, error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.files == nil {
		return nil, errClosed
	}
	if f, ok := s.files[id]; ok {
		return f, nil
	}
	f, err := os.Open(s.packPath(id))
	if err != nil {
		return nil, fmt.Errorf("blockstore: open pack: %w", err)
	}
	s.files[id] = f
	return f, nil
}

// Put stores the block. Its bytes become durable at the next Sync.
func (s *Store) Put(_ context.Context, b blocks.Block) error {
	return s.put(nil, b.Cid().Hash(), b.RawData())
}

// PutMany stores the blocks.
func (s *Store) PutMany(ctx context.Context, bs []blocks.Block) error {
	for _, b := range bs {
		if err := s.Put(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// put stores a block. Its caller vouches that data hashes to hash: the
// import made hash from data, and every block from a peer was verified
// against its CID on arrival (mesh.verify, bitswap). The CRC-32C computed
// here is what every later read checks.
func (s *Store) put(sess *Session, hash mh.Multihash, data []byte) error {
	key := string(hash)
	if len(key) > 255 {
		return fmt.Errorf("blockstore: multihash of %d bytes is too long", len(key))
	}
	if uint64(len(data)) > 1<<31 {
		return fmt.Errorf("blockstore: block of %d bytes is too large", len(data))
	}
	sum := crc32.Checksum(data, castagnoli)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if sess != nil {
		sess.keys[key] = struct{}{}
	}
	if _, ok := s.pending[key]; ok {
		return nil
	}
	var exists bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		exists = tx.Bucket([]byte(bucketIndex)).Get([]byte(key)) != nil
		return nil
	}); err != nil {
		return fmt.Errorf("blockstore: index: %w", err)
	}
	if exists {
		return nil
	}
	return s.appendLocked(key, data, sum, false)
}

// appendLocked writes a record to the active pack, if it fits in the free
// space beyond the reserve (beyond half of it for compaction); sum is the
// data's CRC-32C. Called with mu held. A record is buffered whole or not
// at all.
func (s *Store) appendLocked(key string, data []byte, sum uint32, compaction bool) error {
	rec := int64(recordHeader + len(key) + len(data))
	if err := s.roomLocked(rec, compaction); err != nil {
		return err
	}
	if s.size > 0 && s.size+rec > s.opts.MaxPackSize {
		if err := s.startPack(s.activeID + 1); err != nil {
			return err
		}
	}
	if b := int64(s.w.Buffered()); b > 0 && b+rec > writeBufferSize {
		if err := s.w.Flush(); err != nil {
			return s.writeErr("write pack", err)
		}
	}
	var hdr [recordHeader]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(data)))
	hdr[4] = byte(len(key))
	s.w.Write(hdr[:])
	s.w.WriteString(key)
	off := s.size + int64(recordHeader+len(key))
	s.w.Write(data)
	s.size += rec
	s.pending[key] = loc{pack: s.activeID, offset: uint64(off), length: uint32(len(data)), crc: sum, hasCRC: true}
	s.seq++
	return nil
}

// Sync makes every block put before the call durable and findable after a
// crash. Concurrent calls share one fsync and one index commit.
func (s *Store) Sync(ctx context.Context) error {
	s.mu.Lock()
	want := s.seq
	s.mu.Unlock()

	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= want {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if err := s.w.Flush(); err != nil {
		s.mu.Unlock()
		return s.writeErr("flush", err)
	}
	files := append(s.unsynced, s.active)
	s.unsynced = nil
	batch := make(map[string]loc, len(s.pending))
	for k, l := range s.pending {
		batch[k] = l
	}
	seq := s.seq
	s.mu.Unlock()

	if !s.opts.NoSync {
		for i, f := range files {
			if err := fdatasync(f); err != nil {
				// The packs not known to be durable stay on the list, so
				// that no index entry is committed before a later sync of
				// them succeeds.
				s.mu.Lock()
				for _, g := range files[i:] {
					if g != s.active && !slices.Contains(s.unsynced, g) {
						s.unsynced = append(s.unsynced, g)
					}
				}
				s.mu.Unlock()
				return s.writeErr("sync pack", err)
			}
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketIndex))
		for k, l := range batch {
			if err := b.Put([]byte(k), l.encode()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return s.writeErr("commit index", err)
	}
	s.mu.Lock()
	var back []string // quarantined after the batch was taken: committed again above
	for k, l := range batch {
		if cur, ok := s.pending[k]; ok && cur == l {
			delete(s.pending, k)
		}
		if d, ok := s.dropped[k]; ok && d == l {
			back = append(back, k)
		}
	}
	clear(s.dropped)
	s.mu.Unlock()
	if len(back) > 0 {
		if err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketIndex))
			for _, k := range back {
				if v := b.Get([]byte(k)); v != nil {
					if cur, err := decodeLoc(v); err == nil && cur == batch[k] {
						if err := b.Delete([]byte(k)); err != nil {
							return err
						}
					}
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("blockstore: quarantine: %w", err)
		}
	}
	s.synced = seq
	return nil
}

// DeleteBlock removes the block from the index. Its bytes are reclaimed by
// Compact.
func (s *Store) DeleteBlock(_ context.Context, c cid.Cid) error {
	key := []byte(c.Hash())
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, string(key))
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketIndex)).Delete(key)
	})
}

// AllKeysChan lists every block as a raw-codec CID (the store keeps
// multihashes only).
func (s *Store) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	var keys []cid.Cid
	err := s.forEach(func(key string, _ loc) error {
		keys = append(keys, cid.NewCidV1(cid.Raw, mh.Multihash(key)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	ch := make(chan cid.Cid)
	go func() {
		defer close(ch)
		for _, k := range keys {
			select {
			case ch <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// forEach calls fn for every committed and pending block.
func (s *Store) forEach(fn func(key string, l loc) error) error {
	s.mu.Lock()
	pend := make(map[string]loc, len(s.pending))
	for k, l := range s.pending {
		pend[k] = l
	}
	s.mu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketIndex)).ForEach(func(k, v []byte) error {
			if _, ok := pend[string(k)]; ok {
				return nil
			}
			l, err := decodeLoc(v)
			if err != nil {
				return err
			}
			return fn(string(k), l)
		})
	})
	if err != nil {
		return err
	}
	for k, l := range pend {
		if err := fn(k, l); err != nil {
			return err
		}
	}
	return nil
}

// Stat describes the store's size.
type Stat struct {
	Blocks    int64  `json:"blocks"`     // blocks in the store
	Bytes     int64  `json:"bytes"`      // bytes of block data
	Packs     int    `json:"packs"`      // pack files on disk
	PackBytes int64  `json:"pack_bytes"` // disk space the pack files use, garbage included (holes punched by collections excluded)
	Path      string `json:"path"`
}

// Stat counts the store's blocks and bytes.
func (s *Store) Stat() (Stat, error) {
	st := Stat{Path: s.dir}
	err := s.forEach(func(_ string, l loc) error {
		st.Blocks++
		st.Bytes += int64(l.length)
		return nil
	})
	if err != nil {
		return st, err
	}
	ids, err := s.packIDs()
	if err != nil {
		return st, err
	}
	st.Packs = len(ids)
	s.mu.Lock()
	if s.w != nil {
		_ = s.w.Flush()
	}
	s.mu.Unlock()
	for _, id := range ids {
		fi, err := os.Stat(s.packPath(id))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return st, err
		}
		st.PackBytes += allocated(fi)
	}
	return st, nil
}

// Session tracks the blocks that one import writes or finds already
// present, so that a collection running at the same time keeps them. An
// import opens a session before its first block and closes it once the
// catalog references its root (or it gave up).
type Session struct {
	s    *Store
	keys map[string]struct{}
}

// NewSession opens a session.
func (s *Store) NewSession() *Session {
	sess := &Session{s: s, keys: make(map[string]struct{})}
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	return sess
}

// Put stores the block as part of the session.
func (sess *Session) Put(_ context.Context, b blocks.Block) error {
	return sess.s.put(sess, b.Cid().Hash(), b.RawData())
}

// PutMany stores the blocks as part of the session.
func (sess *Session) PutMany(ctx context.Context, bs []blocks.Block) error {
	for _, b := range bs {
		if err := sess.Put(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// Keep reports whether the block is in the store and, if it is, makes it
// part of the session, as a Put of it would, without its bytes: a fetch
// that resumes keeps what an earlier one stored. It is atomic with respect
// to a collection: a block Keep finds stays.
func (sess *Session) Keep(c cid.Cid) (bool, error) {
	s := sess.s
	key := string(c.Hash())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, errClosed
	}
	_, ok := s.pending[key]
	if !ok {
		if err := s.db.View(func(tx *bolt.Tx) error {
			ok = tx.Bucket([]byte(bucketIndex)).Get([]byte(key)) != nil
			return nil
		}); err != nil {
			return false, fmt.Errorf("blockstore: index: %w", err)
		}
	}
	if ok {
		sess.keys[key] = struct{}{}
	}
	return ok, nil
}

// Close ends the session. Safe to call twice.
func (sess *Session) Close() {
	s := sess.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if s.gcActive {
		for k := range sess.keys {
			s.gcKeep[k] = struct{}{}
		}
	}
}

// Ensure Store is readable at least as an io.ReaderAt-less block source.
var _ io.Closer = (*Store)(nil)
