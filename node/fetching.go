package node

import (
	"context"
	"time"

	"github.com/artmesh/artmesh/catalog"
)

// The fetching reconciler keeps this node's rows in the catalog's
// fetching table equal to what its exchange serves to other fetchers
// (exchange.Serving): a row for every large fetch under way or just
// finished, renewed while it lasts, dropped when it ends. On the leader
// it also drops rows that nobody renewed for catalog.FetchingStale: a
// fetcher that stalled, or died before it could drop its own.

// fetchingRenew is how often a row of a fetch under way is renewed: well
// within catalog.FetchingStale.
const fetchingRenew = 10 * time.Second

func (n *Node) reportFetching(ctx context.Context) error {
	self := n.peerID.String()
	serving := make(map[string]bool)
	for _, c := range n.fetcher.Serving() {
		serving[c.String()] = true
	}
	rows, err := n.cat.AllFetching()
	if err != nil {
		return err
	}
	now := time.Now()
	var put, drop, stale []catalog.Fetching
	have := make(map[string]bool)
	for _, r := range rows {
		switch {
		case r.Peer == self && !serving[r.CID]:
			drop = append(drop, r)
		case r.Peer == self:
			have[r.CID] = true
			if now.Sub(r.Seen) > fetchingRenew {
				put = append(put, catalog.Fetching{CID: r.CID, Peer: self, Seen: now})
			}
		case now.Sub(r.Seen) > catalog.FetchingStale:
			stale = append(stale, r)
		}
	}
	for c := range serving {
		if !have[c] {
			put = append(put, catalog.Fetching{CID: c, Peer: self, Seen: now})
		}
	}
	if err := n.cat.PutFetching(ctx, put); err != nil {
		return err
	}
	if err := n.cat.DropFetching(ctx, drop, time.Time{}); err != nil {
		return err
	}
	if n.cat.IsLeader() {
		return n.cat.DropFetching(ctx, stale, now.Add(-catalog.FetchingStale))
	}
	return nil
}
