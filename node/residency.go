package node

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/artmesh/artmesh/internal/residency"
)

// fileResidentBudget is how many bytes of file pages the node lets stay
// resident before it drops its bbolt files' pages from its memory
// (see package residency): the catalog's state and the block index. The
// binary's own text, about 30 MiB, counts in it.
//
// A fixed period would trim too often on a small node (the hot pages,
// roots and branches of the B+trees, fault back in after every trim) and
// too seldom on a large one: at a million artifacts under a steady
// create load, file pages came back at 300-400 MB a second, and a trim
// every 2 s left 770 MiB of the catalog's file resident.
const fileResidentBudget = 160 << 20

// residencyEvery is how often the node looks at its resident file pages
// (reading /proc/self/statm, a few microseconds).
const residencyEvery = 250 * time.Millisecond

// trimBackoff is the least time between two trims when a trim leaves
// the node over its budget (file pages of other files, or a hot set
// larger than the budget): trimming again at once would only evict the
// hot pages every residencyEvery.
const trimBackoff = 2 * time.Second

// residencyLoop keeps the node's resident file pages near
// fileResidentBudget until ctx ends.
func (n *Node) residencyLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(residencyEvery)
	defer t.Stop()
	var rt residencyTrimmer
	warn := rate.NewLimiter(rate.Every(time.Minute), 1) // the next ones would say the same
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		err := rt.step(now, fileResidentBudget, residency.FileResident, func() error {
			if err := n.cat.TrimResidency(); err != nil {
				return err
			}
			return n.bs.TrimResidency()
		})
		if err != nil && warn.Allow() {
			n.log.Warn("keeping the bbolt files' pages out of resident memory", "err", err)
		}
	}
}

// residencyTrimmer decides when to trim: when the resident file pages
// exceed the budget, but not again within trimBackoff of a trim that
// left them over it.
type residencyTrimmer struct {
	notBefore time.Time
}

// step reads the resident file pages and trims when they are over
// budget and the backoff allows it.
func (r *residencyTrimmer) step(now time.Time, budget int64, resident func() (int64, error), trim func() error) error {
	if now.Before(r.notBefore) {
		return nil
	}
	before, err := resident()
	if err != nil || before <= budget {
		return err
	}
	if err := trim(); err != nil {
		return err
	}
	after, err := resident()
	if err != nil {
		return err
	}
	if after > budget {
		r.notBefore = now.Add(trimBackoff)
	}
	return nil
}
