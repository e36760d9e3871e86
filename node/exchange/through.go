package exchange

import (
	"context"
	"errors"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/mesh"
)

// Through is an exchange for reading the DAG under one root without
// storing what it fetches: what a node whose disk is full serves remote
// content with. Blocks this node lacks are asked for from the members that
// hold the DAG, a batch per request (each verified against its CID by the
// DAG stream), and handed to the reader only. It implements boxo's
// exchange.Interface.
type Through struct {
	f    *Exchange
	root cid.Cid
}

// Through returns a pass-through exchange for the DAG under root.
func (f *Exchange) Through(root cid.Cid) *Through {
	return &Through{f: f, root: root}
}

// maxThroughBatch bounds the blocks of one request (a DAG stream request
// names at most 1024 roots).
const maxThroughBatch = 256

// errGotAll ends a DAG stream once every wanted block came.
var errGotAll = errors.New("exchange: every wanted block came")

// fetch asks the holders of the root, one after the other, for the blocks
// cs (their dag-pb descendants are skipped past) and calls got for each
// wanted block, once.
func (t *Through) fetch(ctx context.Context, cs []cid.Cid, got func(blocks.Block) error) error {
	for len(cs) > maxThroughBatch {
		if err := t.fetch(ctx, cs[:maxThroughBatch], got); err != nil {
			return err
		}
		cs = cs[maxThroughBatch:]
	}
	if len(cs) == 0 {
		return nil
	}
	want := make(map[string]bool, len(cs))
	for _, c := range cs {
		want[c.KeyString()] = true
	}
	holders, err := t.f.cfg.Holders(t.root.String())
	if err != nil {
		return err
	}
	lastErr := artmesh.E(artmesh.Unavailable, fmt.Sprintf("no other member is known to hold %s", t.root))
	for _, h := range holders {
		id, err := peer.Decode(h)
		if err != nil || id == t.f.cfg.Self {
			continue
		}
		var roots []cid.Cid
		for _, c := range cs {
			if want[c.KeyString()] {
				roots = append(roots, c)
			}
		}
		err = mesh.FetchDAGs(ctx, t.f.cfg.Host, id, roots, mesh.SkipRaw, func(n int) []byte { return make([]byte, n) }, func(c cid.Cid, data []byte) error {
			if !want[c.KeyString()] {
				return nil
			}
			blk, err := blocks.NewBlockWithCid(data, c)
			if err != nil {
				return err
			}
			delete(want, c.KeyString())
			if err := got(blk); err != nil {
				return err
			}
			if len(want) == 0 {
				return errGotAll
			}
			return nil
		})
		if err == nil || errors.Is(err, errGotAll) || len(want) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lastErr = artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not serve %s", id, t.root), err)
	}
	return lastErr
}

// GetBlock returns the block from the store, or else from a holder
// without storing it.
func (t *Through) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if blk, err := t.f.cfg.Store.Get(ctx, c); err == nil {
		return blk, nil
	}
	var out blocks.Block
	err := t.fetch(ctx, []cid.Cid{c}, func(b blocks.Block) error {
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("no member sent block %s of %s", c, t.root))
	}
	return out, nil
}

// GetBlocks fetches the blocks in one request per holder tried, sending
// them as they come.
func (t *Through) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	out := make(chan blocks.Block)
	t.f.wg.Add(1)
	go func() {
		defer t.f.wg.Done()
		defer close(out)
		send := func(b blocks.Block) error {
			select {
			case out <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var missing []cid.Cid
		for _, c := range cs {
			blk, err := t.f.cfg.Store.Get(ctx, c)
			if err != nil {
				missing = append(missing, c)
				continue
			}
			if send(blk) != nil {
				return
			}
		}
		if err := t.fetch(ctx, missing, send); err != nil && ctx.Err() == nil {
			t.f.cfg.Log.Warn("reading content through without storing it failed", "cid", t.root, "err", err)
		}
	}()
	return out, nil
}

// NotifyNewBlocks is part of boxo's exchange interface: nothing to do.
func (t *Through) NotifyNewBlocks(context.Context, ...blocks.Block) error { return nil }

// Close is part of boxo's exchange interface: nothing to do.
func (t *Through) Close() error { return nil }
