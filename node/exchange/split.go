package exchange

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// A fetch splits a DAG across every member that can serve it. It first
// asks one of them for the skeleton (the dag-pb nodes, which name every
// leaf in file order: a few KiB for a GiB), then hands out the leaves in
// batches to workers, two per full holder and one per partial holder (a
// member that is fetching the same DAG and has verified some of it).
// Workers take the next batch when they finish one, so a fast holder
// serves more than a slow one; a failing holder's leaves go back to the
// others; at the end, idle workers ask for leaves still in flight
// elsewhere, so that one slow holder does not hold up the tail.
//
// Fetchers of one DAG find each other in the catalog (Config.Fetchers:
// the exchange reports what it serves, see Serving) and ask each other
// which leaves they have (HaveProtocol). A worker on a full holder
// prefers leaves that no partial holder has or is fetching, so that N
// nodes fetching one artifact at once take it from the source about
// once, and from each other for the rest.

const (
	// batchLeaves is how many leaves one request asks a holder for;
	// soleLeaves, the only holder there is (a stream per 4 MiB cost more
	// than its round trip: 16 MiB each was a fifth faster here);
	// sharedLeaves, a full holder while other members fetch the DAG too
	// (small batches, so that the others see sooner what this node took).
	batchLeaves  = 16
	soleLeaves   = 64
	soleAfter    = time.Second
	sharedLeaves = 4
	// endgameLeaves is how many leaves in flight elsewhere an idle worker
	// asks for at the end, once they have been in flight for
	// endgameAfter.
	endgameLeaves = 4
	endgameAfter  = time.Second
	// workersPerHolder is how many requests run at once against a full
	// holder: two, so that one's round trip hides behind the other.
	workersPerHolder = 2
	// haveEvery is how often a worker asks an idle partial holder what it
	// has.
	haveEvery = 100 * time.Millisecond
	// sourcePatience is how long a worker on a full holder leaves alone
	// leaves that a partial holder has or is fetching, before it takes
	// them from the full holder after all (a partial holder that stopped
	// making progress).
	sourcePatience = 5 * time.Second
	// ownerPatience is how long a worker on a full holder leaves alone
	// the leaves that another fetcher owns (see take).
	ownerPatience = 500 * time.Millisecond
	// stallAfter ends a fetch that has received nothing for that long.
	stallAfter = 30 * time.Second
	// noSourceFor ends a fetch that has had no holder to ask for that
	// long (a holder that was restarting a moment ago is back within it).
	noSourceFor = 5 * time.Second
	// benchFor is how long a holder that failed three times in a row is
	// left alone.
	benchFor = 2 * time.Second
	// lingerServe is how long a finished fetch keeps answering HaveProtocol
	// as complete and stays in Serving.
	lingerServe = 30 * time.Second
	// reportLeaves is the fewest leaves of a fetch that Serving reports:
	// smaller ones end before another fetcher could use them.
	reportLeaves = 16
)

// plan is the leaves of one DAG being fetched and where each stands.
type plan struct {
	root   cid.Cid
	leaves []cid.Cid      // the raw leaves, each once, in file order
	index  map[string]int // leaf CID key -> position

	mu           sync.Mutex
	done         []bool
	busy         []uint8     // requests in flight per leaf
	since        []time.Time // when the first request in flight for a leaf was made
	todo         int         // leaves neither done nor in flight
	left         int         // leaves not done
	lastProgress time.Time
	dupBytes     int64         // bytes of leaves received again after they were stored
	changed      chan struct{} // closed and replaced on every change
	complete     chan struct{} // closed when left reaches 0
}

func newPlan(root cid.Cid, leaves []cid.Cid, have func(cid.Cid) bool) *plan {
	pl := &plan{root: root, index: make(map[string]int, len(leaves)), changed: make(chan struct{}), complete: make(chan struct{}), lastProgress: time.Now()}
	for _, l := range leaves {
		if _, dup := pl.index[l.KeyString()]; dup {
			continue
		}
		pl.index[l.KeyString()] = len(pl.leaves)
		pl.leaves = append(pl.leaves, l)
	}
	pl.done = make([]bool, len(pl.leaves))
	pl.busy = make([]uint8, len(pl.leaves))
	pl.since = make([]time.Time, len(pl.leaves))
	for i, l := range pl.leaves {
		if have(l) {
			pl.done[i] = true
		} else {
			pl.left++
		}
	}
	pl.todo = pl.left
	if pl.left == 0 {
		close(pl.complete)
	}
	return pl
}

// changeLocked wakes the workers. Called with mu held.
func (pl *plan) changeLocked() {
	close(pl.changed)
	pl.changed = make(chan struct{})
}

// stored records that leaf i is stored here.
func (pl *plan) stored(i, size int) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.lastProgress = time.Now()
	if pl.done[i] {
		pl.dupBytes += int64(size)
		return
	}
	pl.done[i] = true
	if pl.busy[i] == 0 {
		pl.todo--
	}
	pl.left--
	if pl.left == 0 {
		close(pl.complete)
	}
	pl.changeLocked()
}

// have encodes what this node has of the plan for HaveProtocol: the
// number of leaves, then a bitmap of those stored and one of those in
// flight.
func (pl *plan) have() []byte {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	n := len(pl.leaves)
	b := binary.AppendUvarint([]byte{haveSome}, uint64(n))
	done := make([]byte, (n+7)/8)
	busy := make([]byte, (n+7)/8)
	for i := range n {
		if pl.done[i] {
			done[i/8] |= 1 << (i % 8)
		} else if pl.busy[i] > 0 {
			busy[i/8] |= 1 << (i % 8)
		}
	}
	return append(append(b, done...), busy...)
}

// The first byte of a HaveProtocol answer.
const (
	haveNone     byte = 0 // not fetching it, or not far enough to serve
	haveComplete byte = 1 // the whole DAG is here
	haveSome     byte = 2 // followed by the leaf count and two bitmaps
)

// peerHave is what a partial holder said it has.
type peerHave struct {
	complete   bool
	done, busy []byte // bitmaps over the plan's leaves
	at         time.Time
}

func bit(b []byte, i int) bool { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

// decodeHave reads a HaveProtocol answer about a plan of n leaves.
func decodeHave(b []byte, n int) (peerHave, error) {
	if len(b) == 0 {
		return peerHave{}, errors.New("empty have answer")
	}
	switch b[0] {
	case haveNone:
		return peerHave{}, nil
	case haveComplete:
		return peerHave{complete: true}, nil
	case haveSome:
		count, k := binary.Uvarint(b[1:])
		size := (n + 7) / 8
		if k <= 0 || count != uint64(n) || len(b) != 1+k+2*size {
			return peerHave{}, fmt.Errorf("have answer for %d leaves, not %d", count, n)
		}
		rest := b[1+k:]
		return peerHave{done: rest[:size], busy: rest[size:]}, nil
	}
	return peerHave{}, fmt.Errorf("unknown have answer %d", b[0])
}

// splitFetch is one run of a plan against the members that serve it.
type splitFetch struct {
	x       *Exchange
	self    peer.ID
	started time.Time
	root    cid.Cid
	sess    *blockstore.Session
	fe      *Fetch
	pl      *plan // set once the skeleton is here

	// Guarded by the plan's mutex once pl is set.
	workers map[peer.ID]*source
	corrupt map[peer.ID]bool
	benched map[peer.ID]time.Time
}

// source is a member a fetch takes leaves from.
type source struct {
	id      peer.ID
	partial bool // fetching the DAG itself: serves only what it has

	// Guarded by the plan's mutex.
	have      peerHave
	haveAsked time.Time
	cursor    int
	idleSince time.Time
	fetching  map[int]bool
	live      int   // workers running
	fails     int   // failures in a row
	got       int64 // bytes received from it
}

func (s *source) has(i int) bool {
	return !s.partial || s.have.complete || bit(s.have.done, i)
}

// claimed says whether a partial holder that answered lately has leaf i
// or is fetching it. Called with the plan's mutex held.
func (sf *splitFetch) claimedLocked(i int) bool {
	for _, w := range sf.workers {
		if w.partial && time.Since(w.have.at) < 2*time.Second && (bit(w.have.done, i) || bit(w.have.busy, i) || w.have.complete) {
			return true
		}
	}
	return false
}

// othersLocked returns the other members fetching the DAG (not those
// that have it whole already). Called with the plan's mutex held.
func (sf *splitFetch) othersLocked() []peer.ID {
	var out []peer.ID
	for _, w := range sf.workers {
		if w.partial && w.live > 0 && !w.have.complete {
			out = append(out, w.id)
		}
	}
	return out
}

// ownsLocked says whether leaf i is this node's to take from a full
// holder: its rendezvous hash is the highest of the fetchers'. Called with
// the plan's mutex held.
func (sf *splitFetch) ownsLocked(i int, others []peer.ID) bool {
	key := sf.pl.leaves[i].KeyString()
	mine := rendezvous(sf.self, key)
	for _, o := range others {
		if rendezvous(o, key) > mine {
			return false
		}
	}
	return true
}

// rendezvous is the score of a fetcher for a leaf.
func rendezvous(p peer.ID, leaf string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	h.Write([]byte(leaf))
	return h.Sum64()
}

// take picks the next leaves for a worker on s: leaves that nobody has
// yet, from the worker's cursor on (a full holder leaves to partial
// holders what they have or are fetching, for sourcePatience); when no
// leaf is left to anyone, a few still in flight elsewhere.
func (sf *splitFetch) take(s *source) []int {
	pl := sf.pl
	pl.mu.Lock()
	defer pl.mu.Unlock()
	n := len(pl.leaves)
	var out []int
	scan := func(max int, ok func(i int) bool) {
		for k := 0; k < n && len(out) < max; k++ {
			i := (s.cursor + k) % n
			if ok(i) {
				out = append(out, i)
			}
		}
	}
	todo := func(i int) bool { return !pl.done[i] && pl.busy[i] == 0 && s.has(i) }
	switch {
	case pl.todo > 0 && s.partial:
		scan(batchLeaves, todo)
	case pl.todo > 0:
		var idle time.Duration
		if !s.idleSince.IsZero() {
			idle = time.Since(s.idleSince)
		}
		unclaimed := func(i int) bool { return todo(i) && !sf.claimedLocked(i) }
		if others := sf.othersLocked(); len(others) == 0 {
			// Larger batches from the only holder, once the fetch has run
			// long enough for others fetching it too to have shown up
			// (fetchers that start together each take their first
			// batches from the source, before they see each other).
			max := batchLeaves
			if len(sf.workers) == 1 && time.Since(sf.started) > soleAfter {
				max = soleLeaves
			}
			scan(max, unclaimed)
		} else {
			// Other members fetch the DAG too: each takes from full
			// holders the leaves it owns (rendezvous hashing over the
			// fetchers, so that they agree without a word), and the rest
			// from the others once they have them; leaves of an owner
			// that is slow to take them are taken after ownerPatience.
			scan(sharedLeaves, func(i int) bool { return unclaimed(i) && sf.ownsLocked(i, others) })
			if len(out) == 0 && idle > ownerPatience {
				scan(sharedLeaves, unclaimed)
			}
		}
		if len(out) == 0 && idle > sourcePatience {
			scan(batchLeaves, todo)
		}
	default:
		// Leaves in flight from another holder for a while: the tail of
		// a slow holder.
		scan(endgameLeaves, func(i int) bool {
			return !pl.done[i] && pl.busy[i] == 1 && s.has(i) && !s.fetching[i] && time.Since(pl.since[i]) > endgameAfter
		})
	}
	if len(out) == 0 {
		if s.idleSince.IsZero() {
			s.idleSince = time.Now()
		}
		return nil
	}
	s.idleSince = time.Time{}
	for _, i := range out {
		if pl.busy[i] == 0 {
			pl.todo--
			pl.since[i] = time.Now()
		}
		pl.busy[i]++
		s.fetching[i] = true
	}
	s.cursor = (out[len(out)-1] + 1) % n
	return out
}

// release ends a worker's request for leaves: those not stored are up
// for the taking again.
func (sf *splitFetch) release(s *source, batch []int) {
	pl := sf.pl
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, i := range batch {
		pl.busy[i]--
		delete(s.fetching, i)
		if pl.busy[i] == 0 && !pl.done[i] {
			pl.todo++
		}
	}
	pl.changeLocked()
}

// run fetches the plan's leaves until all are stored.
func (sf *splitFetch) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	started := time.Now()
	lastSource := started
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	refreshed := time.Time{}
	for {
		if time.Since(refreshed) >= refreshInterval(refreshed, started) {
			refreshed = time.Now()
			if err := sf.startWorkers(ctx, &wg); err != nil {
				return err
			}
			sf.pl.mu.Lock()
			none := len(sf.workers) == 0
			sf.pl.mu.Unlock()
			if none && lastSource.Equal(started) {
				return errNoHolders
			}
		}
		sf.pl.mu.Lock()
		live := 0
		for _, w := range sf.workers {
			live += w.live
		}
		stalled := time.Since(sf.pl.lastProgress) > stallAfter
		sf.pl.mu.Unlock()
		if live > 0 {
			lastSource = time.Now()
		}
		switch {
		case stalled:
			return artmesh.E(artmesh.Unavailable, fmt.Sprintf("the fetch of %s received nothing for %s", sf.pl.root, stallAfter))
		case time.Since(lastSource) > noSourceFor:
			return artmesh.E(artmesh.Unavailable, fmt.Sprintf("no member could serve the rest of %s", sf.pl.root))
		}
		select {
		case <-sf.pl.complete:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// refreshInterval is how long a fetch waits before it reads the holders
// again: often in its first second (fetchers that started together find
// each other sooner), then every second.
func refreshInterval(last, started time.Time) time.Duration {
	switch {
	case last.IsZero():
		return 0
	case last.Sub(started) < time.Second:
		return 100 * time.Millisecond
	}
	return time.Second
}

// sources reads who can serve the DAG: full holders first, then members
// fetching it, without this node. ok filters them.
func (sf *splitFetch) sources(ok func(peer.ID) bool) ([]*source, error) {
	root := sf.root.String()
	holders, err := sf.x.cfg.Holders(root)
	if err != nil {
		return nil, err
	}
	var fetchers []string
	if sf.x.cfg.Fetchers != nil {
		if fetchers, err = sf.x.cfg.Fetchers(root); err != nil {
			return nil, err
		}
	}
	self := sf.x.cfg.Self
	seen := make(map[peer.ID]bool)
	var out []*source
	add := func(ids []string, partial bool) {
		for _, h := range ids {
			id, err := peer.Decode(h)
			if err != nil || id == self || seen[id] || !ok(id) {
				continue
			}
			seen[id] = true
			out = append(out, &source{id: id, partial: partial, fetching: make(map[int]bool)})
		}
	}
	add(holders, false)
	add(fetchers, true)
	return out, nil
}

// startWorkers starts workers on sources that have none running.
func (sf *splitFetch) startWorkers(ctx context.Context, wg *sync.WaitGroup) error {
	srcs, err := sf.sources(func(peer.ID) bool { return true })
	if err != nil {
		return err
	}
	sf.pl.mu.Lock()
	defer sf.pl.mu.Unlock()
	for _, s := range srcs {
		if old, ok := sf.workers[s.id]; (ok && old.live > 0) || sf.corrupt[s.id] || time.Now().Before(sf.benched[s.id]) {
			continue
		}
		sf.workers[s.id] = s
		n := 1
		if !s.partial {
			n = workersPerHolder
		}
		for range n {
			s.live++
			wg.Add(1)
			go func() {
				defer wg.Done()
				sf.work(ctx, s)
			}()
		}
	}
	return nil
}

// work is one worker's loop: take leaves, fetch them, until the plan is
// complete, the fetch ends, or the source fails three times in a row.
func (sf *splitFetch) work(ctx context.Context, s *source) {
	defer func() {
		sf.pl.mu.Lock()
		s.live--
		sf.pl.changeLocked()
		sf.pl.mu.Unlock()
	}()
	for ctx.Err() == nil {
		if s.partial {
			sf.askHave(ctx, s)
		}
		batch := sf.take(s)
		if len(batch) == 0 {
			sf.pl.mu.Lock()
			changed := sf.pl.changed
			sf.pl.mu.Unlock()
			t := time.NewTimer(haveEvery)
			select {
			case <-changed:
			case <-t.C:
			case <-ctx.Done():
			case <-sf.pl.complete:
				t.Stop()
				return
			}
			t.Stop()
			continue
		}
		err := sf.fetchBatch(ctx, s, batch)
		sf.release(s, batch)
		if err == nil {
			sf.pl.mu.Lock()
			s.fails = 0
			sf.pl.mu.Unlock()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, mesh.ErrCorruptBlock) {
			sf.x.cfg.Log.Warn("a peer sent a corrupt block: disconnecting it", "peer", s.id, "cid", sf.pl.root)
			_ = sf.x.cfg.Host.Network().ClosePeer(s.id)
			sf.pl.mu.Lock()
			sf.corrupt[s.id] = true
			sf.pl.mu.Unlock()
			return
		}
		sf.pl.mu.Lock()
		s.fails++
		fails := s.fails
		s.haveAsked = time.Time{} // what it has may have changed
		if fails >= 3 {
			sf.benched[s.id] = time.Now().Add(benchFor)
		}
		sf.pl.mu.Unlock()
		if fails >= 3 {
			sf.x.cfg.Log.Debug("a holder failed three times: leaving it alone", "peer", s.id, "cid", sf.pl.root, "err", err)
			return
		}
		select {
		case <-time.After(time.Duration(fails) * 200 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// askHave asks a partial holder what it has, at most every haveEvery.
func (sf *splitFetch) askHave(ctx context.Context, s *source) {
	sf.pl.mu.Lock()
	if time.Since(s.haveAsked) < haveEvery {
		sf.pl.mu.Unlock()
		return
	}
	s.haveAsked = time.Now()
	sf.pl.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := mesh.Call(cctx, sf.x.cfg.Host, s.id, mesh.HaveProtocol, sf.pl.root.Bytes())
	var h peerHave
	if err == nil {
		h, err = decodeHave(resp, len(sf.pl.leaves))
	}
	if err != nil {
		h = peerHave{}
	}
	h.at = time.Now()
	sf.pl.mu.Lock()
	s.have = h
	sf.pl.mu.Unlock()
}

// fetchBatch asks s for the leaves of batch and stores each as it comes,
// verified.
func (sf *splitFetch) fetchBatch(ctx context.Context, s *source, batch []int) error {
	roots := make([]cid.Cid, len(batch))
	for k, i := range batch {
		roots[k] = sf.pl.leaves[i]
	}
	return mesh.FetchDAGs(ctx, sf.x.cfg.Host, s.id, roots, 0, sf.x.bufs.get, func(c cid.Cid, data []byte) error {
		i, ok := sf.pl.index[c.KeyString()]
		if !ok {
			return mesh.ErrCorruptBlock
		}
		blk, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return err
		}
		if err := sf.sess.Put(ctx, blk); err != nil {
			return err
		}
		sf.x.bufs.put(data) // the store copied it
		sf.pl.mu.Lock()
		s.got += int64(len(data))
		sf.pl.mu.Unlock()
		sf.fe.bytes.Add(int64(len(data)))
		sf.pl.stored(i, len(data))
		sf.x.mu.Lock()
		sf.x.broadcastLocked()
		sf.x.mu.Unlock()
		return nil
	})
}

// errNoHolders says that no member is on record as holding or fetching a
// DAG.
var errNoHolders = errors.New("no member of the mesh is known to hold it")

// fetchSplit fetches the DAG under root across the members that serve it.
func (f *Exchange) fetchSplit(ctx context.Context, root cid.Cid, fe *Fetch) error {
	sess := f.cfg.Store.NewSession()
	defer sess.Close()
	sf := &splitFetch{x: f, self: f.cfg.Self, started: time.Now(), root: root, sess: sess, fe: fe,
		workers: make(map[peer.ID]*source), corrupt: make(map[peer.ID]bool), benched: make(map[peer.ID]time.Time)}
	leaves, err := sf.skeleton(ctx)
	if err != nil {
		return err
	}
	// Leaves an earlier fetch stored count as done, and the session keeps
	// them from the collector until the fetch ends.
	sf.pl = newPlan(root, leaves, func(c cid.Cid) bool {
		ok, err := sess.Keep(c)
		return err == nil && ok
	})
	f.mu.Lock()
	fe.plan = sf.pl
	f.mu.Unlock()
	f.servingChanged()
	err = sf.run(ctx)
	sf.pl.mu.Lock()
	for _, s := range sf.workers {
		f.cfg.Log.Debug("fetch split", "cid", root, "peer", s.id, "partial", s.partial, "bytes", s.got)
	}
	f.cfg.Log.Debug("fetch ended", "cid", root, "leaves", len(sf.pl.leaves), "duplicate_bytes", sf.pl.dupBytes, "err", err)
	sf.pl.mu.Unlock()
	if err != nil {
		return err
	}
	return f.cfg.Store.Sync(ctx)
}

// skeleton makes sure the DAG's dag-pb nodes are here, fetching them from
// a holder when they are not, and returns the DAG's raw leaves in file
// order.
func (sf *splitFetch) skeleton(ctx context.Context) ([]cid.Cid, error) {
	f := sf.x
	leaves, err := f.localLeaves(ctx, sf.root, sf.sess)
	if err == nil {
		return leaves, nil
	}
	var lastErr error
	deadline := time.Now().Add(noSourceFor)
	for pass := 0; ; pass++ {
		if pass > 0 {
			if time.Now().After(deadline) {
				return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("no holder of %s could serve it", sf.root), lastErr)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		srcs, err := sf.sources(func(id peer.ID) bool { return !sf.corrupt[id] })
		if err != nil {
			return nil, err
		}
		if len(srcs) == 0 {
			if pass == 0 {
				return nil, errNoHolders
			}
			continue
		}
		// Full holders in random order, then members fetching it.
		full := 0
		for full < len(srcs) && !srcs[full].partial {
			full++
		}
		rand.Shuffle(full, func(i, j int) { srcs[i], srcs[j] = srcs[j], srcs[i] })
		for _, s := range srcs {
			err := mesh.FetchDAGs(ctx, f.cfg.Host, s.id, []cid.Cid{sf.root}, mesh.SkipRaw, func(n int) []byte { return make([]byte, n) }, func(c cid.Cid, data []byte) error {
				blk, err := blocks.NewBlockWithCid(data, c)
				if err != nil {
					return err
				}
				return sf.sess.Put(ctx, blk)
			})
			if err == nil {
				if leaves, err = f.localLeaves(ctx, sf.root, sf.sess); err == nil {
					return leaves, nil
				}
			}
			lastErr = err
			if errors.Is(err, mesh.ErrCorruptBlock) {
				f.cfg.Log.Warn("a peer sent a corrupt block: disconnecting it", "peer", s.id, "cid", sf.root)
				_ = f.cfg.Host.Network().ClosePeer(s.id)
				sf.corrupt[s.id] = true
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
}

// localLeaves walks the dag-pb nodes of the DAG under root in the local
// store, keeping each in sess, and returns its raw leaves in file order;
// it fails when a dag-pb node is missing.
func (f *Exchange) localLeaves(ctx context.Context, root cid.Cid, sess *blockstore.Session) ([]cid.Cid, error) {
	var leaves []cid.Cid
	var visit func(c cid.Cid) error
	visit = func(c cid.Cid) error {
		if c.Prefix().Codec == cid.Raw {
			leaves = append(leaves, c)
			return nil
		}
		if ok, err := sess.Keep(c); err != nil || !ok {
			return cmp.Or(err, error(ipld.ErrNotFound{Cid: c}))
		}
		blk, err := f.cfg.Store.Get(ctx, c)
		if err != nil {
			return err
		}
		links, err := mesh.LinksOf(c, blk.RawData())
		if err != nil {
			return err
		}
		for _, l := range links {
			if err := visit(l); err != nil {
				return err
			}
		}
		return nil
	}
	if root.Prefix().Codec == cid.Raw {
		// A one-block file: its root is its only leaf.
		return []cid.Cid{root}, nil
	}
	if err := visit(root); err != nil {
		return nil, err
	}
	return leaves, nil
}
