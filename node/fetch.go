package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// fetcher moves whole DAGs from the members that hold them into the local
// store, one stream per DAG (mesh.DAGProtocol), and lets readers wait for
// blocks as they arrive: a download on a node that lacks the content
// starts streaming with the first blocks, not after the last. It is the
// exchange of the content store's block service.
type fetcher struct {
	n *Node

	mu       sync.Mutex
	inflight map[string]*fetch // by root CID
	changed  chan struct{}     // closed and replaced whenever a block lands or a fetch ends
}

// fetch is one DAG being fetched.
type fetch struct {
	done  chan struct{}
	err   error        // set before done is closed
	bytes atomic.Int64 // block bytes received so far
}

func newFetcher(n *Node) *fetcher {
	return &fetcher{n: n, inflight: make(map[string]*fetch), changed: make(chan struct{})}
}

// broadcast wakes every waiting reader. Called with mu held.
func (f *fetcher) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// ensure starts fetching the DAG under root unless a fetch of it is
// already running, and returns that fetch.
func (f *fetcher) ensure(ctx context.Context, root cid.Cid) *fetch {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fe, ok := f.inflight[root.KeyString()]; ok {
		return fe
	}
	fe := &fetch{done: make(chan struct{})}
	f.inflight[root.KeyString()] = fe
	f.n.wg.Add(1)
	go f.run(ctx, root, fe)
	return fe
}

// run fetches root from one holder after another until one serves the
// whole DAG, verified block by block; a holder that sends a corrupt block
// is disconnected.
func (f *fetcher) run(ctx context.Context, root cid.Cid, fe *fetch) {
	defer f.n.wg.Done()
	err := f.fetchFromHolders(ctx, root, fe)
	f.mu.Lock()
	fe.err = err
	close(fe.done)
	delete(f.inflight, root.KeyString())
	f.broadcastLocked()
	f.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		f.n.log.Warn("fetching content failed", "cid", root, "err", err)
	}
	// The fetched content may be over the cache budget now.
	kick(f.n.collectKick)
}

// holderPasses is how many times a fetch goes over the holders before it
// falls back to bitswap, a second apart: a holder that was restarting a
// moment ago is back within them.
const holderPasses = 5

func (f *fetcher) fetchFromHolders(ctx context.Context, root cid.Cid, fe *fetch) error {
	self := f.n.peerID.String()
	sess := f.n.bs.NewSession()
	defer sess.Close()
	var lastErr error
	corrupt := make(map[peer.ID]bool) // holders that sent a bad block: not asked again
	for pass := 0; pass < holderPasses; pass++ {
		if pass > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		holders, err := f.n.cat.Holders(root.String())
		if err != nil {
			return err
		}
		var peers []peer.ID
		for _, h := range holders {
			if id, err := peer.Decode(h); err == nil && h != self && !corrupt[id] {
				peers = append(peers, id)
			}
		}
		if len(peers) == 0 && pass > 0 {
			break
		}
		if len(peers) == 0 {
			// No holder is on record (content from before placement, or a
			// holder that left): ask whoever is connected, with bitswap.
			return f.bitswapFallback(ctx, root, artmesh.E(artmesh.Unavailable, fmt.Sprintf("no member of the mesh is known to hold %s", root)))
		}
		rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
		for _, p := range peers {
			err := f.fetchFrom(ctx, p, root, sess, fe)
			if err == nil {
				// Durable, but not a holder: only the placement reconciler
				// records holders, for what is allocated or pinned here;
				// other fetched content is a cache.
				return f.n.bs.Sync(ctx)
			}
			lastErr = err
			if errors.Is(err, mesh.ErrCorruptBlock) {
				f.n.log.Warn("a peer sent a corrupt block: disconnecting it", "peer", p, "cid", root)
				_ = f.n.host.Network().ClosePeer(p)
				corrupt[p] = true
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return f.bitswapFallback(ctx, root, artmesh.E(artmesh.Unavailable, fmt.Sprintf("no holder of %s could serve it", root), lastErr))
}

// bitswapFallback fetches root with bitswap after the DAG stream could
// not; it returns why the stream failed when bitswap fails too.
func (f *fetcher) bitswapFallback(ctx context.Context, root cid.Cid, streamErr error) error {
	if len(f.n.host.Network().Peers()) == 0 {
		return streamErr
	}
	if err := f.n.fetchBitswap(ctx, root); err != nil {
		f.n.log.Warn("bitswap fallback failed", "cid", root, "err", err)
		return streamErr
	}
	return nil
}

// fetchFrom streams the DAG from one peer. Verified blocks go to a writer
// goroutine that stores them and wakes waiting readers, so that the
// network, the hashing and the store overlap.
func (f *fetcher) fetchFrom(ctx context.Context, p peer.ID, root cid.Cid, sess *blockstore.Session, fe *fetch) error {
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
			f.mu.Lock()
			f.broadcastLocked()
			f.mu.Unlock()
		}
	}()
	err := mesh.FetchDAG(ctx, f.n.host, p, root, func(c cid.Cid, data []byte) error {
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

// progress returns how many bytes a running fetch of root received.
func (f *fetcher) progress(root cid.Cid) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fe, ok := f.inflight[root.KeyString()]; ok {
		return fe.bytes.Load()
	}
	return 0
}

// GetBlock waits for a block that a running fetch brings, and fails when
// no fetch is running that could bring it.
func (f *fetcher) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	for {
		f.mu.Lock()
		changed := f.changed
		running := len(f.inflight)
		f.mu.Unlock()
		blk, err := f.n.bs.Get(ctx, c)
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
func (f *fetcher) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	out := make(chan blocks.Block)
	f.n.wg.Add(1)
	go func() {
		defer f.n.wg.Done()
		defer close(out)
		for _, c := range cs {
			blk, err := f.GetBlock(ctx, c)
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
	return out, nil
}

// NotifyNewBlocks is part of boxo's exchange interface; blocks stored
// locally need no announcement here.
func (f *fetcher) NotifyNewBlocks(context.Context, ...blocks.Block) error { return nil }

// Close is part of boxo's exchange interface; the node's context stops
// running fetches.
func (f *fetcher) Close() error { return nil }
