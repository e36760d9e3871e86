package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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

// extraCopyTimeout bounds how long a write waits to open an extra copy,
// for its blocks to be sent once the import is done, and for it to be
// durable: a slow or cut-off
// member then gets its copy from the placement reconcilers instead, and
// is given no extra copies for extraCopyBackoff.
const (
	extraCopyTimeout = 3 * time.Second
	extraCopyBackoff = 30 * time.Second
)

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

// pushFan feeds one import's blocks to several members. The first
// required targets must take their copies or the write fails; the others
// are extra copies, made while they cost the write little (it never waits
// for their queues, and at most extraCopyTimeout for their sync): an
// extra target is dropped when it fails, when its queue is full, once the
// import passes optMax bytes, or when its sync takes too long, and the
// write goes on without it (the placement reconcilers make that copy
// later).
type pushFan struct {
	targets  []peer.ID
	required int
	optMax   int64
	sent     int64 // bytes teed so far; the tee's own
	pushes   []*mesh.Push
	queues   []chan pushItem
	errs     []error       // each written by its sender until wg is done
	dropped  []atomic.Bool // extra targets given up
	failed   atomic.Bool   // a required target failed
	onFail   func(peer.ID) // told of each extra target that failed or timed out
	wg       sync.WaitGroup
	close    sync.Once
	done     bool // finish succeeded
}

// openPushes opens a push to every target and starts their senders: the
// first required ones must take their copies; the rest are extra copies
// of imports of up to optMax bytes. An extra target that cannot be opened
// is left out.
func (n *Node) openPushes(ctx context.Context, targets []peer.ID, required int, optMax int64) (*pushFan, error) {
	f := &pushFan{required: required, optMax: optMax, onFail: n.extraCopyFailed}
	for i, t := range targets {
		octx, cancel := ctx, context.CancelFunc(func() {})
		if i >= required {
			octx, cancel = context.WithTimeout(ctx, extraCopyTimeout)
		}
		ps, err := mesh.OpenPush(octx, n.host, t)
		cancel()
		if err != nil && i >= required {
			n.log.Debug("an extra copy could not start; it is made later", "peer", t, "err", err)
			f.onFail(t)
			continue
		}
		if err != nil {
			for _, p := range f.pushes {
				p.Abort()
			}
			return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not take a copy; nothing was recorded", t), err)
		}
		f.targets = append(f.targets, t)
		f.pushes = append(f.pushes, ps)
	}
	f.errs = make([]error, len(f.targets))
	f.dropped = make([]atomic.Bool, len(f.targets))
	for i, ps := range f.pushes {
		q := make(chan pushItem, pushQueue)
		f.queues = append(f.queues, q)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for it := range q {
				if f.errs[i] == nil && !f.dropped[i].Load() {
					if err := ps.Send(it.b.Cid(), it.b.RawData()); err != nil {
						f.errs[i] = err
						if i < f.required {
							f.failed.Store(true)
						} else {
							f.dropped[i].Store(true)
						}
					}
				} // else drain, so that the tee never blocks on a dead member
				it.done()
			}
		}()
	}
	return f, nil
}

// extra reports whether target i is an extra copy.
func (f *pushFan) extra(i int) bool { return i >= f.required }

// tee hands each block to every sender, waiting while a required
// member's queue is full: the import runs at the pace of the slowest
// required copy. An extra copy never makes it wait.
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
		f.sent += int64(len(b.RawData()))
		for i, q := range f.queues {
			if f.extra(i) {
				if f.sent > f.optMax {
					f.dropped[i].Store(true)
				}
				if f.dropped[i].Load() {
					it.done()
					continue
				}
				select {
				case q <- it:
				default:
					f.dropped[i].Store(true) // it would make the write wait
					it.done()
				}
				continue
			}
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
// An extra copy's sender still busy after extraCopyTimeout (a member that
// stopped reading) is cut off, so that it holds the write up no longer.
func (f *pushFan) stop() {
	f.close.Do(func() {
		for _, q := range f.queues {
			close(q)
		}
		cut := time.AfterFunc(extraCopyTimeout, f.cutExtras)
		f.wg.Wait()
		cut.Stop()
	})
}

// cutExtras drops every extra copy and resets its stream, which ends a
// Send that blocks on it.
func (f *pushFan) cutExtras() {
	for i := f.required; i < len(f.pushes); i++ {
		if !f.dropped[i].Swap(true) {
			f.onFail(f.targets[i])
		}
		f.pushes[i].Abort()
	}
}

// err returns the first required sender's error, after stop.
func (f *pushFan) err() error {
	for i, err := range f.errs[:min(f.required, len(f.errs))] {
		if err != nil {
			return artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not take a copy; nothing was recorded", f.targets[i]), err)
		}
	}
	return nil
}

// finish names the root to every member still pushed to and waits until
// each holds the whole DAG durably, within the replicate timeout; it
// returns the peer ids of the required members and of the extra ones that
// took their copies. Extra targets that did not are aborted.
func (f *pushFan) finish(ctx context.Context, root cid.Cid) ([]string, error) {
	f.stop()
	if err := f.err(); err != nil {
		return nil, err
	}
	errs := make([]error, len(f.pushes))
	var wg sync.WaitGroup
	for i, ps := range f.pushes {
		if f.extra(i) && f.dropped[i].Load() {
			ps.Abort()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fctx := ctx
			if f.extra(i) {
				var cancel context.CancelFunc
				fctx, cancel = context.WithTimeout(ctx, extraCopyTimeout)
				defer cancel()
			}
			errs[i] = ps.Finish(fctx, root)
		}()
	}
	wg.Wait()
	var out []string
	for i, err := range errs {
		switch {
		case f.extra(i) && (err != nil || f.dropped[i].Load()):
			if err != nil || f.errs[i] != nil {
				f.onFail(f.targets[i])
			}
			if err != nil {
				f.pushes[i].Abort()
			}
		case err != nil:
			return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not take a copy; nothing was recorded", f.targets[i]), err)
		default:
			out = append(out, f.targets[i].String())
		}
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
	idx, _ := s.n.cat.Watch()
	s.n.pending.add(root.String(), idx, time.Now())
	s.n.verified.set(root.String(), struct{}{})
	return nil
}

func (s *pushSink) Abort() { s.sess.Close() }
