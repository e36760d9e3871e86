package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/time/rate"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// Content that checks itself: every block read is checked by the block
// store (see package blockstore), and a scrubber re-hashes every block in
// the background at a bounded rate, resuming after a restart. A block
// that fails either check is quarantined; the node then checks that each
// version it is recorded as holding is still complete (placement's
// Unhold), gives up the holder records of those that are not, and fetches
// them again from the other holders. The same check runs at start-up
// (nothing is verified yet) and after each scrub pass.

// DefaultScrubRate is the default of Config.ScrubRate: 16 MiB/s, about 1 %
// of one core for SHA-256 and a small share of a disk's bandwidth; a
// 100 GiB store is checked in about two hours.
const DefaultScrubRate = 16 << 20

// DefaultScrubEvery is the default of Config.ScrubEvery: a pass a day at
// most.
const DefaultScrubEvery = 24 * time.Hour

// DefaultReadOpenTimeout is the default of Config.ReadOpenTimeout: a read
// of content nobody can serve answers 503 within 10 s of its arrival.
const DefaultReadOpenTimeout = 8 * time.Second

// scrubber runs one scrub pass at a time: the background loop's, or an
// operator's (repo verify), which stops the background pass first and
// goes ahead of the next one.
type scrubber struct {
	// gate is held for reading by a background pass and for writing by
	// an operator's: a waiting operator's pass keeps the background loop
	// from starting another (a pending Lock blocks new RLocks).
	gate sync.RWMutex

	mu      sync.Mutex
	cancel  context.CancelFunc // of the background pass under way
	waiting int                // operators' passes waiting for the gate
}

// onCorrupt is blockstore.Options.OnCorrupt: a block failed its check and
// is quarantined.
func (n *Node) onCorrupt(c cid.Cid, reason string) {
	n.metrics.quarantined.Inc()
	n.log.Error("a block failed its check and is quarantined: it is never served again, and what needs it is fetched from another holder",
		"block", c, "reason", reason)
	n.recheckHoldings()
}

// recheckHoldings makes the next placement run check again that every
// version this node holds is complete here, and runs it soon.
func (n *Node) recheckHoldings() {
	n.verified.retain(func(string) bool { return false })
	n.placeAll.Store(true)
	kick(n.placeKick)
}

// scrubLoop runs scrub passes in the background, each no sooner than
// ScrubEvery after the last one started, at ScrubRate.
func (n *Node) scrubLoop(ctx context.Context) {
	defer n.wg.Done()
	if n.cfg.ScrubRate < 0 {
		return
	}
	burst := max(int(n.cfg.ScrubRate), 4<<20)
	lim := rate.NewLimiter(rate.Limit(n.cfg.ScrubRate), burst)
	throttle := func(ctx context.Context, size int) error { return lim.WaitN(ctx, min(size, burst)) }
	for {
		st, err := n.bs.ScrubStatus()
		if err != nil {
			n.log.Warn("reading the scrub state", "err", err)
		}
		if st.Current == nil && st.Last != nil {
			if wait := time.Until(st.Last.Started.Add(n.cfg.ScrubEvery)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		n.scrub.gate.RLock()
		pctx, cancel := context.WithCancel(ctx)
		n.scrub.mu.Lock()
		n.scrub.cancel = cancel
		if n.scrub.waiting > 0 {
			cancel() // an operator's pass asked first
		}
		n.scrub.mu.Unlock()
		pass, err := n.bs.Scrub(pctx, throttle)
		n.scrub.mu.Lock()
		n.scrub.cancel = nil
		n.scrub.mu.Unlock()
		cancel()
		n.scrub.gate.RUnlock()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.Canceled):
			continue // an operator's pass took over; it counts as this one
		case err != nil:
			n.log.Warn("scrub pass failed; trying again in a minute", "err", err)
			t := time.NewTimer(time.Minute)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		n.scrubbed(pass)
	}
}

// scrubbed records a finished pass and checks what this node holds.
func (n *Node) scrubbed(pass blockstore.ScrubPass) {
	n.metrics.scrubPasses.Inc()
	n.metrics.scrubBytes.Add(float64(pass.Bytes))
	n.metrics.scrubLastDone.Set(float64(pass.Finished.Unix()))
	n.log.Info("scrub pass finished", "blocks", pass.Blocks, "bytes", pass.Bytes, "corrupt", pass.Corrupt,
		"took", pass.Finished.Sub(pass.Started).Round(time.Millisecond))
	n.recheckHoldings()
}

// VerifyResult is what a repo verify found.
type VerifyResult struct {
	Pass        blockstore.ScrubPass     `json:"pass"`
	Quarantined []blockstore.Quarantined `json:"quarantined"`       // the first 100 records
	Total       int                      `json:"quarantined_total"` // quarantined blocks in all, this pass's and earlier ones
}

// Verify runs a whole scrub pass now, at full speed, in place of the
// background pass under way, and reports it with the quarantined blocks.
// Versions that lost blocks are given up and fetched again, as after any
// pass. Admins only.
func (n *Node) Verify(ctx context.Context, caller artmesh.Agent) (VerifyResult, error) {
	if !caller.ManagesNode(n.peerID.String()) {
		return VerifyResult{}, artmesh.E(artmesh.PermissionDenied, "only a mesh admin or this node's agent may verify the repo")
	}
	n.scrub.mu.Lock()
	n.scrub.waiting++
	if n.scrub.cancel != nil {
		n.scrub.cancel()
	}
	n.scrub.mu.Unlock()
	n.scrub.gate.Lock()
	defer n.scrub.gate.Unlock()
	n.scrub.mu.Lock()
	n.scrub.waiting--
	n.scrub.mu.Unlock()
	if err := n.bs.RestartScrub(); err != nil {
		return VerifyResult{}, err
	}
	pass, err := n.bs.Scrub(ctx, nil)
	if err != nil {
		return VerifyResult{Pass: pass}, artmesh.E(artmesh.Op("node.Verify"), "scrubbing", err)
	}
	n.scrubbed(pass)
	q, total, err := n.bs.QuarantineList(100)
	if err != nil {
		return VerifyResult{Pass: pass}, err
	}
	return VerifyResult{Pass: pass, Quarantined: q, Total: total}, nil
}

// ScrubState is the block store's scrubbing, for repo stat.
func (n *Node) ScrubState() (blockstore.ScrubState, int, error) {
	st, err := n.bs.ScrubStatus()
	if err != nil {
		return st, 0, err
	}
	_, total, err := n.bs.QuarantineList(1)
	return st, total, err
}
