package exchange

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// Bitswap, boxo's want-list block exchange, runs next to the DAG stream:
// it serves this node's blocks to any member that asks in bitswap's
// terms (IPFS tooling inside the private mesh), and it is the fallback
// when no holder can stream a whole DAG. It moves blocks one want-list at
// a time, several times slower than the DAG stream, which is why the
// stream comes first.

// recentStore is the block store as bitswap sees it: blocks that bitswap
// stores are kept from the collector for a while (two rotations of a
// session), long enough for the fetch that wanted them to record its
// version; later the collector treats them like any other block.
type recentStore struct {
	*blockstore.Store
	mu       sync.Mutex
	cur, old *blockstore.Session
	rotated  time.Time
}

// recentWindow is how long a session of recentStore collects blocks
// before it is rotated.
const recentWindow = 10 * time.Minute

func (r *recentStore) session() *blockstore.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || time.Since(r.rotated) > recentWindow {
		if r.old != nil {
			r.old.Close()
		}
		r.old, r.cur, r.rotated = r.cur, r.Store.NewSession(), time.Now()
	}
	return r.cur
}

// Put stores a block within the current session.
func (r *recentStore) Put(ctx context.Context, b blocks.Block) error {
	return r.session().Put(ctx, b)
}

// PutMany stores blocks within the current session.
func (r *recentStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	return r.session().PutMany(ctx, bs)
}

// close ends the sessions.
func (r *recentStore) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range []*blockstore.Session{r.cur, r.old} {
		if s != nil {
			s.Close()
		}
	}
}

// meshProviders answers bitswap's provider queries with the peers this
// node is connected to: in a private mesh every one of them is a member.
type meshProviders struct{ h host.Host }

// FindProvidersAsync implements routing.ContentDiscovery.
func (m meshProviders) FindProvidersAsync(ctx context.Context, _ cid.Cid, max int) <-chan peer.AddrInfo {
	peers := m.h.Network().Peers()
	ch := make(chan peer.AddrInfo, len(peers))
	for i, p := range peers {
		if max > 0 && i >= max {
			break
		}
		ch <- peer.AddrInfo{ID: p}
	}
	close(ch)
	return ch
}

// FetchBitswap fetches the whole DAG under root with bitswap alone: the
// fallback of a fetch, exported for tests and tools.
func (f *Exchange) FetchBitswap(ctx context.Context, root cid.Cid) error {
	return f.fetchBitswap(ctx, root, bitswapStall)
}

// bitswapStall is how long a bitswap fetch may get no block before it
// gives up.
const bitswapStall = 30 * time.Second

func (f *Exchange) fetchBitswap(ctx context.Context, root cid.Cid, stall time.Duration) error {
	dag := merkledag.NewDAGService(blockservice.New(f.recent, f.bswap))
	// Nobody may have it: give up soon when not even the root comes.
	rctx, rcancel := context.WithTimeout(ctx, f.cfg.BitswapRootTimeout)
	_, err := dag.Get(rctx, root)
	rcancel()
	if err != nil {
		return artmesh.E(artmesh.Unavailable, fmt.Sprintf("no peer answered for %s with bitswap", root), err)
	}
	// Then as long as blocks keep coming: a fetch that gets nothing for
	// stall ends, so that nobody waits on it for ever (readers
	// wait while any fetch runs).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var pt merkledag.ProgressTracker
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(stall / 4)
		defer t.Stop()
		last, since := pt.Value(), time.Now()
		for {
			select {
			case <-stopWatch:
				return
			case now := <-t.C:
				if v := pt.Value(); v != last {
					last, since = v, now
				} else if now.Sub(since) >= stall {
					cancel(fmt.Errorf("no block came in %s", stall))
					return
				}
			}
		}
	}()
	err = merkledag.FetchGraph(pt.DeriveContext(ctx), root, dag)
	close(stopWatch)
	<-watched
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return artmesh.E(artmesh.Unavailable, fmt.Sprintf("fetching %s with bitswap", root), err)
	}
	return f.cfg.Store.Sync(ctx)
}
