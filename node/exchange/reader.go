package exchange

import (
	"context"
	"fmt"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/artmesh/artmesh"
)

// DefaultStall is how long a read waits for a block with no progress of
// the fetch that brings it before it fails.
const DefaultStall = 20 * time.Second

// fetchAttempts is how many fetches of its root one block read starts
// before it fails.
const fetchAttempts = 2

// RootReader is the boxo exchange of one read of the DAG under a root: a
// block that is not in the store (never fetched, or quarantined because it
// failed its check) is fetched with the DAG it belongs to, from the
// members that hold it, and waited for. A wait fails, with an Unavailable
// error, when the fetch ends without the block, or when the fetch makes
// no progress for the stall time; a read never hangs.
type RootReader struct {
	f     *Exchange
	root  cid.Cid
	stall time.Duration
}

// Reader returns the exchange of a read of the DAG under root (stall <= 0:
// DefaultStall).
func (f *Exchange) Reader(root cid.Cid, stall time.Duration) *RootReader {
	if stall <= 0 {
		stall = DefaultStall
	}
	return &RootReader{f: f, root: root, stall: stall}
}

// GetBlock returns block c of the reader's DAG, from the store or from a
// fetch of the DAG.
func (r *RootReader) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	f := r.f
	key := r.root.KeyString()
	started := 0
	var lastErr error
	var fe *Fetch
	lastBytes := int64(-1)
	progress := time.Now()
	timer := time.NewTimer(r.stall)
	defer timer.Stop()
	for {
		f.mu.Lock()
		changed := f.changed
		cur := f.inflight[key]
		f.mu.Unlock()
		blk, err := f.cfg.Store.Get(ctx, c)
		if err == nil {
			return blk, nil
		}
		if !ipld.IsNotFound(err) {
			return nil, err
		}
		if cur == nil {
			if fe != nil {
				// The fetch ended, and the block is still not here.
				<-fe.Done()
				lastErr = fe.Err()
			}
			if started == fetchAttempts {
				why := "no member of the mesh could serve it"
				if lastErr != nil {
					why = lastErr.Error()
				}
				return nil, artmesh.E(artmesh.Op("exchange.GetBlock"), artmesh.Unavailable,
					fmt.Sprintf("block %s of %s is not here and could not be fetched: %s", c, r.root, why))
			}
			cur = f.Ensure(r.root)
			started++
		}
		if cur != fe {
			fe, lastBytes, progress = cur, -1, time.Now()
		}
		if b := fe.Bytes(); b != lastBytes {
			lastBytes, progress = b, time.Now()
		}
		wait := r.stall - time.Since(progress)
		if wait <= 0 {
			return nil, artmesh.E(artmesh.Op("exchange.GetBlock"), artmesh.Unavailable,
				fmt.Sprintf("the fetch of %s made no progress for %s: giving up on block %s", r.root, r.stall, c))
		}
		timer.Reset(wait) // since Go 1.23 a reset timer never delivers a stale tick
		select {
		case <-changed:
		case <-fe.Done():
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// GetBlocks returns the blocks one after the other; the channel closes
// early when one cannot be had.
func (r *RootReader) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	return r.f.inTurn(ctx, cs, r.GetBlock), nil
}

// NotifyNewBlocks is part of boxo's exchange interface; nothing to do.
func (r *RootReader) NotifyNewBlocks(context.Context, ...blocks.Block) error { return nil }

// Close is part of boxo's exchange interface; a reader owns nothing.
func (r *RootReader) Close() error { return nil }
