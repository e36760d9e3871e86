package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
	"github.com/artmesh/artmesh/node/content"
)

// Pushed copies: a write with replicas=N streams its blocks to the N-1
// members chosen to hold copies while it imports them (mesh.PushProtocol),
// so that a copy costs no second pass over the content: the write is
// acknowledged once the import is durable here and every member has
// answered that it holds the whole DAG durably, checked block by block.

// pushQueue is how many blocks may wait for one member's stream: with
// 256 KiB chunks, 16 MiB a member.
const pushQueue = 64

// errPushFailed ends an import whose copy a member could not take.
var errPushFailed = errors.New("a member could not take its copy")

// pushItem is a block on its way to the members; the last sender done
// with it releases its bytes.
type pushItem struct {
	b       blocks.Block
	release func()
	left    *atomic.Int32
}

func (it pushItem) done() {
	if it.left.Add(-1) == 0 {
		it.release()
	}
}

// pushFan feeds one import's blocks to several members.
type pushFan struct {
	targets []peer.ID
	pushes  []*mesh.Push
	queues  []chan pushItem
	errs    []error // each written by its sender until wg is done
	failed  atomic.Bool
	wg      sync.WaitGroup
	close   sync.Once
	done    bool // finish succeeded
}

// openPushes opens a push to every target and starts their senders.
func (n *Node) openPushes(ctx context.Context, targets []peer.ID) (*pushFan, error) {
	f := &pushFan{targets: targets, errs: make([]error, len(targets))}
	for _, t := range targets {
		ps, err := mesh.OpenPush(ctx, n.host, t)
		if err != nil {
			for _, p := range f.pushes {
				p.Abort()
			}
			return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not take a copy; nothing was recorded", t), err)
		}
		f.pushes = append(f.pushes, ps)
	}
	for i, ps := range f.pushes {
		q := make(chan pushItem, pushQueue)
		f.queues = append(f.queues, q)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for it := range q {
				if f.errs[i] == nil {
					if err := ps.Send(it.b.Cid(), it.b.RawData()); err != nil {
						f.errs[i] = err
						f.failed.Store(true)
					}
				} // else drain, so that the tee never blocks on a dead member
				it.done()
			}
		}()
	}
	return f, nil
}

// tee hands each block to every sender, waiting while a member's queue is
// full: the import runs at the pace of the slowest copy.
func (f *pushFan) tee(ctx context.Context) content.Tee {
	return func(b blocks.Block, release func()) error {
		it := pushItem{b: b, release: release, left: new(atomic.Int32)}
		it.left.Store(int32(len(f.queues)) + 1) // +1: the tee's own hold
		defer it.done()
		if f.failed.Load() {
			for range f.queues {
				it.done()
			}
			return errPushFailed
		}
		for i, q := range f.queues {
			select {
			case q <- it:
			case <-ctx.Done():
				for range f.queues[i:] {
					it.done() // the queues it never reached
				}
				return ctx.Err()
			}
		}
		return nil
	}
}

// stop ends the senders once their queues are empty. Safe to call twice.
func (f *pushFan) stop() {
	f.close.Do(func() {
		for _, q := range f.queues {
			close(q)
		}
		f.wg.Wait()
	})
}

// err returns the first sender's error, after stop.
func (f *pushFan) err() error {
	for i, err := range f.errs {
		if err != nil {
			return artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not take a copy; nothing was recorded", f.targets[i]), err)
		}
	}
	return nil
}

// finish names the root to every member and waits until each holds the
// whole DAG durably, within the replicate timeout; it returns their peer
// ids.
func (f *pushFan) finish(ctx context.Context, root cid.Cid) ([]string, error) {
	f.stop()
	if err := f.err(); err != nil {
		return nil, err
	}
	errs := make([]error, len(f.pushes))
	var wg sync.WaitGroup
	for i, ps := range f.pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ps.Finish(ctx, root)
		}()
	}
	wg.Wait()
	out := make([]string, len(f.targets))
	for i, err := range errs {
		if err != nil {
			return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not take a copy; nothing was recorded", f.targets[i]), err)
		}
		out[i] = f.targets[i].String()
	}
	f.done = true
	return out, nil
}

// abort ends every push that did not finish: the members drop what they
// got (it is garbage, collected later).
func (f *pushFan) abort() {
	if f == nil || f.done {
		return
	}
	f.stop()
	for _, ps := range f.pushes {
		ps.Abort()
	}
}

// pushSink takes one copy pushed here.
type pushSink struct {
	n    *Node
	sess *blockstore.Session // keeps the blocks from the collector until pending protects the root
}

// openPushSink accepts a push from a member.
func (n *Node) openPushSink(from peer.ID) (mesh.PushSink, error) {
	if _, err := n.cat.Member(from.String()); err != nil {
		return nil, fmt.Errorf("only members may push copies")
	}
	return &pushSink{n: n, sess: n.bs.NewSession()}, nil
}

// Put stores a block (the store copies its bytes).
func (s *pushSink) Put(ctx context.Context, c cid.Cid, data []byte) error {
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return err
	}
	return s.sess.Put(ctx, b)
}

func (s *pushSink) Done(ctx context.Context, root cid.Cid) error {
	defer s.sess.Close()
	if err := s.n.bs.Sync(ctx); err != nil {
		return fmt.Errorf("making the copy durable: %w", err)
	}
	if !s.n.complete(ctx, root) {
		return fmt.Errorf("the pushed copy of %s is not complete", root)
	}
	// Kept until the write records this node as a holder, or pendingTTL.
	s.n.pending.add(root.String())
	s.n.verified.set(root.String(), struct{}{})
	return nil
}

func (s *pushSink) Abort() { s.sess.Close() }
