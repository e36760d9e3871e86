// Package exchange moves verified blocks between members: it fetches a
// DAG split across every member that holds it or is fetching it too
// (split.go: a skeleton request names the leaves, workers take batches of
// them from each source, every block checked against its CID and its
// place before it is stored), serves what a fetch has so far to other
// fetchers (mesh.HaveProtocol), falls back to boxo's bitswap, which it
// also runs to serve this node's blocks in bitswap's terms, and lets
// readers wait for blocks as they arrive (it is the content store's boxo
// exchange). Where content is held and who fetches it come from the
// caller (Config.Holders, Config.Fetchers): the exchange knows nothing of
// the catalog.
package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// Config is what an Exchange needs.
type Config struct {
	Self  peer.ID
	Host  host.Host
	Store *blockstore.Store
	Log   *slog.Logger // nil: discard
	// Holders returns the members recorded as holding the DAG under a
	// root CID.
	Holders func(cid string) ([]string, error)
	// Fetchers returns the members recorded as fetching the DAG under a
	// root CID right now, which serve what they have verified of it (nil:
	// none are known).
	Fetchers func(cid string) ([]string, error)
	// OnFetched, when set, is called after each fetch ends (the
	// collector may have work).
	OnFetched func()
	// OnServing, when set, is called when what Serving returns may have
	// changed.
	OnServing func()
	// BitswapRootTimeout is how long the bitswap fallback waits for a
	// root block.
	BitswapRootTimeout time.Duration
	// OnFetchEnd, when set, is told of every fetch that ends: its source
	// (SourceStream or SourceBitswap) and result (ResultOK, ResultError,
	// ResultCanceled). It is for metrics and must not block.
	OnFetchEnd func(source, result string)
}

// The sources and results that Config.OnFetchEnd is told of.
const (
	SourceStream   = "stream"  // the DAG stream from holders and fetchers
	SourceBitswap  = "bitswap" // the bitswap fallback
	ResultOK       = "ok"
	ResultError    = "error"
	ResultCanceled = "canceled"
)

// Exchange fetches DAGs from members and serves waiting readers. Its
// methods are safe for concurrent use; Close stops its fetches.
type Exchange struct {
	cfg    Config
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	bswap  *bitswap.Bitswap
	recent *recentStore
	bufs   bufPool // block buffers of DAG stream fetches

	mu       sync.Mutex
	inflight map[string]*Fetch    // by root CID
	finished map[string]time.Time // roots whose fetch succeeded lately, by root CID
	changed  chan struct{}        // closed and replaced whenever a block lands or a fetch ends
}

// Fetch is one DAG being fetched.
type Fetch struct {
	root  cid.Cid
	done  chan struct{}
	err   error        // set before done is closed
	bytes atomic.Int64 // block bytes received so far
	plan  *plan        // guarded by the exchange's mu; nil until the skeleton is here
}

// Done is closed when the fetch has ended.
func (fe *Fetch) Done() <-chan struct{} { return fe.done }

// Err is why the fetch failed, once Done is closed (nil: the whole DAG is
// stored durably).
func (fe *Fetch) Err() error { return fe.err }

// Bytes is how many block bytes the fetch received so far.
func (fe *Fetch) Bytes() int64 { return fe.bytes.Load() }

// New starts an exchange over cfg.Host, bitswap included.
func New(cfg Config) *Exchange {
	if cfg.BitswapRootTimeout <= 0 {
		cfg.BitswapRootTimeout = 15 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Exchange{cfg: cfg, ctx: ctx, cancel: cancel, inflight: make(map[string]*Fetch), finished: make(map[string]time.Time), changed: make(chan struct{})}
	mesh.Serve(cfg.Host, mesh.HaveProtocol, x.serveHave)
	x.recent = &recentStore{Store: cfg.Store}
	// A peer's wantlist and its CIDs are capped: a member that asks for
	// more is asking for nothing real (a file's DAG is fetched a subtree
	// at a time).
	x.bswap = bitswap.New(ctx, bsnet.NewFromIpfsHost(cfg.Host), meshProviders{cfg.Host}, x.recent,
		bitswap.MaxQueuedWantlistEntriesPerPeer(maxWantlist), bitswap.MaxCidSize(maxCIDBytes))
	return x
}

// broadcast wakes every waiting reader. Called with mu held.
func (f *Exchange) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Ensure starts fetching the DAG under root unless a fetch of it is
// already running, and returns that fetch. Fetches run until they end or
// the exchange closes.
func (f *Exchange) Ensure(root cid.Cid) *Fetch {
	ctx := f.ctx
	f.mu.Lock()
	defer f.mu.Unlock()
	if fe, ok := f.inflight[root.KeyString()]; ok {
		return fe
	}
	fe := &Fetch{root: root, done: make(chan struct{})}
	f.inflight[root.KeyString()] = fe
	f.wg.Add(1)
	go f.run(ctx, root, fe)
	return fe
}

// run fetches root from one holder after another until one serves the
// whole DAG, verified block by block; a holder that sends a corrupt block
// is disconnected.
func (f *Exchange) run(ctx context.Context, root cid.Cid, fe *Fetch) {
	defer f.wg.Done()
	err := f.fetchFromHolders(ctx, root, fe)
	f.mu.Lock()
	fe.err = err
	close(fe.done)
	delete(f.inflight, root.KeyString())
	if err == nil && fe.plan != nil {
		f.finished[root.KeyString()] = time.Now()
	}
	f.broadcastLocked()
	f.mu.Unlock()
	f.servingChanged()
	if err != nil && ctx.Err() == nil {
		f.cfg.Log.Warn("fetching content failed", "cid", root, "err", err)
	}
	// The fetched content may be over the cache budget now.
	if f.cfg.OnFetched != nil {
		f.cfg.OnFetched()
	}
}

// fetchFromHolders fetches root from the members that hold or fetch it,
// split across them (see split.go), and falls back to bitswap when none
// can serve it.
func (f *Exchange) fetchFromHolders(ctx context.Context, root cid.Cid, fe *Fetch) (err error) {
	source := SourceStream
	if f.cfg.OnFetchEnd != nil {
		defer func() {
			result := ResultOK
			switch {
			case err != nil && ctx.Err() != nil:
				result = ResultCanceled
			case err != nil:
				result = ResultError
			}
			f.cfg.OnFetchEnd(source, result)
		}()
	}
	err = f.fetchSplit(ctx, root, fe)
	switch {
	case err == nil || ctx.Err() != nil:
		return err
	case errors.Is(err, errNoHolders):
		// No holder is on record (content from before placement, or a
		// holder that left): ask whoever is connected, with bitswap.
		return f.bitswapFallback(ctx, root, artmesh.E(artmesh.Unavailable, fmt.Sprintf("no member of the mesh is known to hold %s", root)), &source)
	case artmesh.KindOf(err) == artmesh.Unavailable:
		return f.bitswapFallback(ctx, root, err, &source)
	}
	return err
}

// bitswapFallback fetches root with bitswap after the DAG stream could
// not; it returns why the stream failed when bitswap fails too. It sets
// *source to SourceBitswap when it asks bitswap (with no peer connected,
// it does not).
func (f *Exchange) bitswapFallback(ctx context.Context, root cid.Cid, streamErr error, source *string) error {
	if len(f.cfg.Host.Network().Peers()) == 0 {
		return streamErr
	}
	*source = SourceBitswap
	if err := f.FetchBitswap(ctx, root); err != nil {
		f.cfg.Log.Warn("bitswap fallback failed", "cid", root, "err", err)
		return streamErr
	}
	return nil
}

// fetchFrom streams the DAG from one peer. Verified blocks go to a writer
// goroutine that stores them and wakes waiting readers, so that the
// network, the hashing and the store overlap.
func (f *Exchange) fetchFrom(ctx context.Context, p peer.ID, root cid.Cid, sess *blockstore.Session, fe *Fetch) error {
	queue := make(chan blocks.Block, 32)
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for blk := range queue {
			if werr != nil {
				continue // drain
			}
			if err := sess.Put(ctx, blk); err != nil {
				werr = err
				continue
			}
			fe.bytes.Add(int64(len(blk.RawData())))
			f.bufs.put(blk.RawData()) // the store copied it
			f.mu.Lock()
			f.broadcastLocked()
			f.mu.Unlock()
		}
	}()
	err := mesh.FetchDAGInto(ctx, f.cfg.Host, p, root, f.bufs.get, func(c cid.Cid, data []byte) error {
		blk, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return err
		}
		select {
		case queue <- blk:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(queue)
	<-done
	if err != nil {
		return err
	}
	return werr
}

// maxWantlist and maxCIDBytes cap what one peer's bitswap wantlist may
// hold.
const (
	maxWantlist = 1024
	maxCIDBytes = 128
)

// bufPool recycles block buffers of fetches: a block is stored (copied)
// and its buffer read into again, instead of a fresh 256 KiB per block.
type bufPool struct{ p sync.Pool }

// bufCap is the capacity of pooled buffers: the largest block a chunker
// makes. Larger blocks get their own.
const bufCap = 1 << 20

func (b *bufPool) get(n int) []byte {
	if n > bufCap {
		return make([]byte, n)
	}
	if v, ok := b.p.Get().(*[]byte); ok {
		return (*v)[:n]
	}
	return make([]byte, n, bufCap)
}

func (b *bufPool) put(buf []byte) {
	if cap(buf) != bufCap {
		return
	}
	buf = buf[:0]
	b.p.Put(&buf)
}

// Progress returns how many bytes a running fetch of root received.
func (f *Exchange) Progress(root cid.Cid) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fe, ok := f.inflight[root.KeyString()]; ok {
		return fe.bytes.Load()
	}
	return 0
}

// GetBlock waits for a block that a running fetch brings, and fails when
// no fetch is running that could bring it.
func (f *Exchange) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	for {
		f.mu.Lock()
		changed := f.changed
		running := len(f.inflight)
		f.mu.Unlock()
		blk, err := f.cfg.Store.Get(ctx, c)
		if err == nil {
			return blk, nil
		}
		if !ipld.IsNotFound(err) {
			return nil, err
		}
		if running == 0 {
			return nil, ipld.ErrNotFound{Cid: c}
		}
		// A block landing and a fetch ending both close changed.
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// GetBlocks fetches blocks one after the other.
func (f *Exchange) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	return f.inTurn(ctx, cs, f.GetBlock), nil
}

// inTurn sends the blocks cs, got one after the other with get, on the
// channel it returns, which closes after the last one or early when one
// cannot be had.
func (f *Exchange) inTurn(ctx context.Context, cs []cid.Cid, get func(context.Context, cid.Cid) (blocks.Block, error)) <-chan blocks.Block {
	out := make(chan blocks.Block)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(out)
		for _, c := range cs {
			blk, err := get(ctx, c)
			if err != nil {
				return
			}
			select {
			case out <- blk:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// NotifyNewBlocks is part of boxo's exchange interface; blocks stored
// locally need no announcement here.
func (f *Exchange) NotifyNewBlocks(context.Context, ...blocks.Block) error { return nil }

// Close is part of boxo's exchange interface; the content store calls it
// never. Shutdown stops the exchange.
func (f *Exchange) Close() error { return nil }

// Shutdown stops every fetch and bitswap, and waits for them.
func (f *Exchange) Shutdown() error {
	f.cancel()
	err := f.bswap.Close()
	f.wg.Wait()
	f.recent.close()
	return err
}

// CopyFrom streams the DAG under root from p into the store and makes it
// durable (for a copy that a member pushes here: the caller checks that it
// is complete).
func (f *Exchange) CopyFrom(ctx context.Context, p peer.ID, root cid.Cid) error {
	sess := f.cfg.Store.NewSession()
	defer sess.Close()
	fe := &Fetch{root: root, done: make(chan struct{})}
	if err := f.fetchFrom(ctx, p, root, sess, fe); err != nil {
		return err
	}
	return f.cfg.Store.Sync(ctx)
}

// servingChanged tells the node that Serving may answer differently.
func (f *Exchange) servingChanged() {
	if f.cfg.OnServing != nil {
		f.cfg.OnServing()
	}
}

// Serving returns the roots this node serves to other fetchers while it
// fetches them: large fetches that have their skeleton, and those that
// finished within lingerServe. The node records them in the catalog, so
// that others fetching the same DAG find this one.
func (f *Exchange) Serving() []cid.Cid {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cid.Cid
	for _, fe := range f.inflight {
		if fe.plan != nil && len(fe.plan.leaves) >= reportLeaves {
			out = append(out, fe.root)
		}
	}
	for k, at := range f.finished {
		if time.Since(at) > lingerServe {
			delete(f.finished, k)
			continue
		}
		if c, err := cid.Cast([]byte(k)); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// serveHave answers HaveProtocol: which leaves of a DAG this node has
// verified while it fetches it.
func (f *Exchange) serveHave(ctx context.Context, _ peer.ID, req []byte) ([]byte, error) {
	root, err := cid.Cast(req)
	if err != nil {
		return nil, artmesh.E(artmesh.Invalid, "a have request carries a root CID")
	}
	f.mu.Lock()
	var pl *plan
	if fe, ok := f.inflight[root.KeyString()]; ok {
		pl = fe.plan
	}
	at, finished := f.finished[root.KeyString()]
	f.mu.Unlock()
	switch {
	case pl != nil:
		return pl.have(), nil
	case finished && time.Since(at) < lingerServe:
		if ok, err := f.cfg.Store.Has(ctx, root); err == nil && ok {
			return []byte{haveComplete}, nil
		}
	}
	return []byte{haveNone}, nil
}
