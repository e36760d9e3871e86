package node

import (
	"context"
	"time"

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

// residencyLoop keeps the node's resident file pages near
// fileResidentBudget until ctx ends.
func (n *Node) residencyLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(residencyEvery)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.trimIfOver(fileResidentBudget); err != nil && !warned {
			warned = true // once: the next ones would say the same
			n.log.Warn("keeping the bbolt files' pages out of resident memory", "err", err)
		}
	}
}

// trimIfOver drops the catalog's and the block index's pages from the
// process's memory when its resident file pages exceed budget.
func (n *Node) trimIfOver(budget int64) error {
	resident, err := residency.FileResident()
	if err != nil || resident <= budget {
		return err
	}
	if err := n.cat.TrimResidency(); err != nil {
		return err
	}
	return n.bs.TrimResidency()
}
