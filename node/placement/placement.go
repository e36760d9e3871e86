// Package placement decides where content lives: which members the leader
// allocates each version to (Allocate), what one node must fetch, keep or
// give up to match the committed allocations and pins (Reconcile), and
// which cached content a node keeps within its budget (KeepCache).
//
// Everything here is a pure function of committed catalog state and of
// what the caller observed (reachability, what is verified locally), so
// that the decisions are easy to test; the node runs them as reconcilers
// and carries out their answers.
package placement

import (
	"cmp"
	"slices"
	"time"

	"github.com/artmesh/artmesh/catalog"
)

// Member is what the allocator knows of one member of the mesh.
type Member struct {
	ID string
	// Reachable: the leader reaches it now.
	Reachable bool
	// Live: reachable now, or unreachable for less than the dead-holder
	// time. A member that is not live is replaced.
	Live bool
}

// Effective returns the factor that can be had: the asked factor, at most
// the number of members, at least 1.
func Effective(factor, members int) int {
	return max(1, min(factor, members))
}

// Allocate compares each replica's allocation with the members and
// returns the changes that bring every replica to its factor:
//   - allocations keep their live members, and are topped up first from
//     live holders (they have the bytes already), then from reachable
//     members that hold the fewest bytes;
//   - allocations above the factor give up members that do not hold the
//     content first;
//   - holder records of members that are gone (removed, or not live) are
//     dropped once enough live holders remain, never the last one.
//
// held is the bytes each member holds or is allocated, which new
// allocations balance; nil counts them from replicas. Allocate adds what
// it allocates to it, so that a caller looking at a few replicas at a time
// can keep one map between calls.
func Allocate(replicas []catalog.Replica, members []Member, held map[string]int64) catalog.PlacementUpdate {
	var up catalog.PlacementUpdate
	if len(members) == 0 {
		return up
	}
	byID := make(map[string]Member, len(members))
	for _, m := range members {
		byID[m.ID] = m
	}
	live := func(id string) bool { return byID[id].Live }
	if held == nil {
		held = HeldBytes(replicas)
	}
	for _, r := range replicas {
		want := Effective(r.Factor, len(members))
		var alloc []string
		for _, p := range r.Allocated {
			if live(p) {
				alloc = append(alloc, p)
			}
		}
		if len(alloc) < want {
			for _, h := range r.Holders {
				if len(alloc) < want && live(h) && !slices.Contains(alloc, h) {
					alloc = append(alloc, h)
				}
			}
		}
		if len(alloc) < want {
			var spare []Member
			for _, m := range members {
				if m.Reachable && !slices.Contains(alloc, m.ID) {
					spare = append(spare, m)
				}
			}
			slices.SortFunc(spare, func(a, b Member) int {
				return cmp.Or(cmp.Compare(held[a.ID], held[b.ID]), cmp.Compare(a.ID, b.ID))
			})
			for _, m := range spare {
				if len(alloc) == want {
					break
				}
				alloc = append(alloc, m.ID)
				held[m.ID] += r.SizeBytes
			}
		}
		if len(alloc) > want {
			// Give up members that lack the content first, then those
			// that hold the most.
			slices.SortFunc(alloc, func(a, b string) int {
				ha, hb := slices.Contains(r.Holders, a), slices.Contains(r.Holders, b)
				if ha != hb {
					if ha {
						return -1
					}
					return 1
				}
				return cmp.Or(cmp.Compare(held[a], held[b]), cmp.Compare(a, b))
			})
			for _, p := range alloc[want:] {
				held[p] -= r.SizeBytes
			}
			alloc = alloc[:want]
		}
		slices.Sort(alloc)
		// A version with no allocation yet whose holders are just what it
		// would be allocated (the common case: the writer, plus its
		// replicas=N copies) needs no write: no allocation recorded means
		// "its holders", and nothing is given up before one is.
		implicit := len(r.Allocated) == 0 && slices.Equal(alloc, sortedCopy(r.Holders))
		if !implicit && !slices.Equal(alloc, r.Allocated) {
			up.Allocations = append(up.Allocations, catalog.Allocation{CID: r.CID, Peers: alloc})
		}
		liveHolders := 0
		for _, h := range r.Holders {
			if live(h) {
				liveHolders++
			}
		}
		if liveHolders >= want {
			for _, h := range r.Holders {
				if !live(h) {
					up.DropHolders = append(up.DropHolders, catalog.HolderRef{CID: r.CID, Peer: h})
				}
			}
		}
	}
	return up
}

// HeldBytes returns the bytes each member holds or is allocated.
func HeldBytes(replicas []catalog.Replica) map[string]int64 {
	held := make(map[string]int64)
	for _, r := range replicas {
		for _, p := range union(r.Holders, r.Allocated) {
			held[p] += r.SizeBytes
		}
	}
	return held
}

// Local is what one node knows of a replica besides the catalog.
type Local struct {
	// Verified: every block of the DAG is in this node's store, checked
	// since it started.
	Verified bool
	// Lost: a block of the DAG is certainly not in this node's store
	// (lost, or quarantined after a failed check). A DAG neither verified
	// nor lost could not be checked (an I/O error).
	Lost bool
}

// Actions is what a node must do to match committed placement.
type Actions struct {
	// Fetch: allocated or pinned here, and not verified here: fetch the
	// whole DAG, then record this node as a holder.
	Fetch []catalog.Replica
	// Record: verified here and wanted, but not recorded as held.
	Record []string
	// Drop: recorded as held here but neither allocated nor pinned here,
	// while enough allocated holders remain: give up the holder record.
	Drop []string
	// Unhold: recorded as held here, but blocks are lost here (or were
	// quarantined): the holder record must go at once. A version that is
	// also wanted here is in Fetch too.
	Unhold []string
}

// Reconcile returns what node self must do, given the replicas, the CIDs
// pinned on it, the number of members, and what it verified locally.
func Reconcile(self string, replicas []catalog.Replica, pinned map[string]bool, members int, local func(cid string) Local) Actions {
	var a Actions
	for _, r := range replicas {
		alloc := r.Allocated
		if len(alloc) == 0 {
			alloc = r.Holders // no allocation recorded: its holders are it
		}
		allocated := slices.Contains(alloc, self)
		holder := slices.Contains(r.Holders, self)
		wanted := allocated || pinned[r.CID]
		if !wanted && !holder {
			continue
		}
		lc := local(r.CID)
		verified := lc.Verified
		if holder && !verified && lc.Lost {
			a.Unhold = append(a.Unhold, r.CID)
		}
		switch {
		case wanted && !verified:
			a.Fetch = append(a.Fetch, r)
		case wanted && !holder:
			a.Record = append(a.Record, r.CID)
		case !wanted && holder && verified && len(r.Allocated) > 0:
			others := 0
			for _, h := range r.Holders {
				if h != self && slices.Contains(r.Allocated, h) {
					others++
				}
			}
			if others >= Effective(r.Factor, members) {
				a.Drop = append(a.Drop, r.CID)
			}
		}
	}
	return a
}

// CacheEntry is one version's content that a node keeps only as a cache.
type CacheEntry struct {
	CID      string
	Size     int64
	LastUsed time.Time
}

// KeepCache returns the entries to keep within budget bytes: the most
// recently used first, skipping any that would not fit.
func KeepCache(entries []CacheEntry, budget int64) []CacheEntry {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b CacheEntry) int {
		return cmp.Or(b.LastUsed.Compare(a.LastUsed), cmp.Compare(a.CID, b.CID))
	})
	var keep []CacheEntry
	var used int64
	for _, e := range sorted {
		if used+e.Size <= budget {
			keep = append(keep, e)
			used += e.Size
		}
	}
	return keep
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
