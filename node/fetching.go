package node

import (
	"context"
	"maps"
	"slices"
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
	serving := make(map[string]bool)
	for _, c := range n.fetcher.Serving() {
		serving[c.String()] = true
	}
	rows, err := n.cat.AllFetching()
	if err != nil {
		return err
	}
	now := time.Now()
	put, drop, stale := fetchingPlan(n.peerID.String(), serving, rows, now)
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

// fetchingPlan compares this node's rows with what it serves: rows to put
// (new, or due for renewal), its own rows to drop (fetches it no longer
// serves), and other members' rows that are stale (for the leader to
// drop).
func fetchingPlan(self string, serving map[string]bool, rows []catalog.Fetching, now time.Time) (put, drop, stale []catalog.Fetching) {
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
	for _, c := range slices.Sorted(maps.Keys(serving)) {
		if !have[c] {
			put = append(put, catalog.Fetching{CID: c, Peer: self, Seen: now})
		}
	}
	return put, drop, stale
}
