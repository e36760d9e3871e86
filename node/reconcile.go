package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/blockstore"
	"github.com/artmesh/artmesh/node/membership"
	"github.com/artmesh/artmesh/node/placement"
)

// Side effects are reconcilers. Each waits on the catalog's watch (and,
// where time matters, a ticker), compares committed state with what this
// node has, and acts on the difference:
//
//   - catchUpLoop: after start, brings the local catalog up to the
//     leader's commit index; until then the node answers 503, and no
//     other reconciler runs.
//
// Open runs each of the others as a reconcileLoop with its topics, kick
// channel, tick and delay:
//
//   - "garbage collection", collect: removes blocks that nothing keeps
//     here, only with a leader and after a read-index barrier.
//   - "placement", place: fetches what is allocated or pinned here,
//     records this node as a holder once the whole DAG is verified and
//     durable, and gives up holder records that are no longer allocated
//     here.
//   - "allocation", allocate: on the leader, allocates each version to
//     members and replaces holders that are gone.
//   - "fetching rows", reportFetching (fetching.go): keeps this node's
//     rows in the catalog's fetching table in step with its fetches.
//
// The membership reconciler is membership.Manager.Run; scrubLoop,
// janitorLoop and residencyLoop run on timers, not on the watch.
//
// None of them walks every version: they act on the CIDs each batch of
// the catalog's watch reports, read the catalog's replica index (by
// member, by level, or a page of a sweep that resumes from a cursor) for
// what a change cannot tell them, and take counts from counters the
// catalog keeps at apply time (see catalog/replicaindex.go).

// ErrNoLeader is why a collection did not run: the catalog has no leader
// this node knows of, so it cannot know that its state is current.
var ErrNoLeader = errors.New("node: no catalog leader: collection needs one")

// DefaultDeadHolderAfter is how long a holder may be unreachable before
// its copies are rebuilt elsewhere.
const DefaultDeadHolderAfter = 60 * time.Second

// DefaultCacheSize is the default of Config.CacheSize.
const DefaultCacheSize = 1 << 30

// collectInterval is how often a collection runs with no catalog change,
// to free what failed imports left behind.
const collectInterval = 10 * time.Minute

// CaughtUp reports whether this node's catalog has applied every write the
// leader had committed when the node started.
func (n *Node) CaughtUp() bool { return n.caughtUp.Load() }

// behind returns an Unavailable error while the node catches up, and a
// Conflict error, for good, once it knows it was removed from its mesh.
func (n *Node) behind() error {
	if r, gone := n.members.Removed(); gone {
		return artmesh.E(artmesh.Conflict, fmt.Sprintf("this node (%s) was removed from its mesh (found out at %s: %s); it serves nothing and takes no part in the catalog any more. %s",
			n.peerID, r.At.Format(time.RFC3339), r.Reason, membership.RejoinHint))
	}
	if n.caughtUp.Load() {
		return nil
	}
	return artmesh.E(artmesh.Unavailable, "this node is catching up with the mesh's catalog; try again in a moment")
}

// catchUpLoop waits until the local catalog has applied the leader's
// commit index (a read-index barrier), then lets the node serve.
func (n *Node) catchUpLoop(ctx context.Context) {
	defer n.wg.Done()
	start := time.Now()
	if n.caughtUp.Load() {
		n.migratePins(ctx) // caught up at bootstrap
	}
	for attempt := 0; !n.caughtUp.Load(); attempt++ {
		if _, gone := n.members.Removed(); gone {
			return // there is nobody to catch up with
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.Consistent(cctx)
		cancel()
		if err == nil {
			n.markCaughtUp(time.Since(start).Round(time.Millisecond).String())
			n.migratePins(ctx)
			return
		}
		if attempt%20 == 5 {
			n.log.Info("catalog still catching up", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// markCaughtUp lets the node serve: its catalog has applied the leader's
// commit index.
func (n *Node) markCaughtUp(after string) {
	if n.caughtUp.CompareAndSwap(false, true) {
		close(n.caughtUpCh)
		n.log.Info("catalog caught up with the leader", "applied_index", n.cat.AppliedIndex(), "after", after)
	}
}

// waitCaughtUp blocks until the node has caught up or ctx ends.
func (n *Node) waitCaughtUp(ctx context.Context) bool {
	select {
	case <-n.caughtUpCh:
		return true
	case <-ctx.Done():
		return false
	}
}

// reconcileLoop runs fn now and whenever the catalog applies a command of
// topics, a kick arrives, or every tick (0: never), with delay between a
// change and the run so that a burst shares one. It starts once the node
// has caught up.
func (n *Node) reconcileLoop(ctx context.Context, name string, topics catalog.Topic, kick <-chan struct{}, tick, delay time.Duration, fn func(context.Context) error) {
	defer n.wg.Done()
	if !n.waitCaughtUp(ctx) {
		return
	}
	var ticker <-chan time.Time
	if tick > 0 {
		t := time.NewTicker(tick)
		defer t.Stop()
		ticker = t.C
	}
	seen, changed := n.cat.Watch()
	for {
		if _, gone := n.members.Removed(); gone {
			return // removed from the mesh: nothing to reconcile with
		}
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn(name+" failed", "err", err)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				var idx uint64
				idx, changed = n.cat.Watch()
				if !n.cat.ChangedSince(seen, topics) {
					seen = idx
					continue
				}
				seen = idx
			case <-kick:
			case <-ticker:
			}
			break
		}
		if delay > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
		seen, changed = n.cat.Watch()
	}
}

// kick asks a reconciler to run soon.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// collectGate is what a collection checks before it may remove anything.
type collectGate interface {
	// HasLeader reports whether the catalog has a leader this node knows.
	HasLeader() bool
	// Barrier waits until the local catalog has applied the leader's
	// commit index as read now.
	Barrier(ctx context.Context) error
}

// gated runs collect only with a leader and after the barrier: the state
// it marks from then reflects every write acknowledged before the
// collection started, so nothing acknowledged looks like garbage.
func gated(ctx context.Context, g collectGate, collect func(context.Context) (blockstore.CollectStats, error)) (blockstore.CollectStats, error) {
	if !g.HasLeader() {
		return blockstore.CollectStats{}, artmesh.E(artmesh.Unavailable, "no catalog leader: nothing is collected without one", ErrNoLeader)
	}
	if err := g.Barrier(ctx); err != nil {
		return blockstore.CollectStats{}, artmesh.E(artmesh.Unavailable, "the catalog could not catch up with the leader: nothing is collected", err)
	}
	return collect(ctx)
}

// nodeGate is the node's collectGate.
type nodeGate struct{ n *Node }

func (g nodeGate) HasLeader() bool {
	addr, _ := g.n.cat.Raft().LeaderWithID()
	return addr != ""
}

func (g nodeGate) Barrier(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return g.n.Consistent(ctx)
}

// collect removes every block that nothing keeps on this node (see
// keepRoots), behind the gate.
func (n *Node) collect(ctx context.Context) (blockstore.CollectStats, error) {
	n.gcMu.Lock()
	defer n.gcMu.Unlock()
	st, err := gated(ctx, nodeGate{n}, func(ctx context.Context) (blockstore.CollectStats, error) {
		return n.bs.Collect(ctx, func(ctx context.Context, keep func(cid.Cid)) error {
			return n.keepRoots(ctx, func(c cid.Cid) error { return n.content.Walk(ctx, c, keep) })
		})
	})
	n.metrics.observeCollect(st, err)
	if err != nil {
		return st, err
	}
	if st.BlocksRemoved > 0 || st.PacksRemoved > 0 {
		n.log.Info("garbage collection", "blocks_removed", st.BlocksRemoved, "bytes_removed", st.BytesRemoved,
			"packs_removed", st.PacksRemoved, "disk_freed", st.DiskFreed, "duration", st.Duration.Round(time.Millisecond))
	} else {
		n.log.Debug("garbage collection found nothing to remove", "duration", st.Duration.Round(time.Millisecond))
	}
	return st, nil
}

// keepRoots calls root with each root whose DAG this node keeps: versions
// allocated to it or recorded as held by it (a holder record is only
// given up by the placement reconciler, once enough other copies exist),
// versions with no placement at all (content from before placement),
// pins on this node, received uploads, replicas being pushed here, and
// the most recently read other content within the cache budget. A root
// may come more than once.
//
// It reads the catalog's replica index by member (this node's, and ""
// for content with no placement) and looks up the few other roots it
// knows of (pins, cache, pushes, reads) one by one: what it reads grows
// with what this node keeps, not with the catalog. The roots of the
// index go to root page by page, never all in memory at once: at a
// million versions held here, maps of them took hundreds of MB of heap
// for each collection.
func (n *Node) keepRoots(ctx context.Context, root func(cid.Cid) error) error {
	self := n.peerID.String()
	// The DAGs verified complete here: whether they are still kept.
	verified := make(map[string]bool)
	for _, c := range n.verified.keys() {
		verified[c] = false
	}
	// kept parses a root that is kept, and notes a verified DAG as kept.
	kept := func(c string) (cid.Cid, error) {
		parsed, err := cid.Decode(c)
		if err != nil {
			return cid.Undef, fmt.Errorf("node: catalog holds a bad cid %q: %w", c, err)
		}
		if _, ok := verified[c]; ok {
			verified[c] = true
		}
		return parsed, nil
	}
	emit := func(c string) error {
		parsed, err := kept(c)
		if err != nil {
			return err
		}
		return root(parsed)
	}
	// On the index pages, every replica is kept: it is held or allocated
	// here, or has no placement at all. Both indexes are read first, into
	// a compact list (the CIDs' bytes, about 40 bytes a root), and walked
	// after: a root that moved between the two indexes during a long walk
	// could otherwise be seen in neither. What changed while they were
	// read is looked up again below.
	since, _ := n.cat.Watch()
	var listed []byte // uvarint length, then the CID's bytes, for each root
	for _, peer := range []string{self, ""} {
		err := n.eachReplicaOn(ctx, peer, func(r catalog.Replica) error {
			if slices.Contains(r.Holders, self) {
				// A copy pushed here by replicas=N is recorded now: from
				// here on the holder record keeps it, and a delete frees it.
				n.pending.remove(r.CID)
			}
			c, err := kept(r.CID)
			if err != nil {
				return err
			}
			listed = binary.AppendUvarint(listed, uint64(c.ByteLen()))
			listed = append(listed, c.Bytes()...)
			return nil
		})
		if err != nil {
			return err
		}
	}
	// The other catalog reads of the mark come before the changes are
	// taken: a root that moves from one read to another after its read
	// (an upload confirmed into a version held here, after the indexes
	// were read and before the received uploads were) is among the
	// changes since the first read, which cover every read.
	pins, err := n.cat.Pins(self)
	if err != nil {
		return err
	}
	received := n.cat.ReceivedUploadCIDs()
	changed, ok := n.cat.ChangedCIDs(since)
	if !ok {
		return artmesh.E(artmesh.Unavailable, "the catalog changed more than its watch remembers while the collection read it: nothing is collected this time")
	}
	if n.afterMarkChanges != nil {
		n.afterMarkChanges() // a test's seam
	}
	for rest := listed; len(rest) > 0; {
		l, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < l {
			return fmt.Errorf("node: the collection's list of roots is corrupt")
		}
		c, err := cid.Cast(rest[k : k+int(l)])
		if err != nil {
			return fmt.Errorf("node: the collection's list of roots: %w", err)
		}
		if err := root(c); err != nil {
			return err
		}
		rest = rest[k+int(l):]
	}
	listed = nil

	// The few other roots this node knows of.
	keep := make(map[string]bool)
	live := make(map[string]bool) // of the roots looked at: a version or a received upload references it
	var cacheable []placement.CacheEntry
	consider := func(r catalog.Replica) {
		if _, seen := live[r.CID]; seen {
			return
		}
		live[r.CID] = true
		if slices.Contains(r.Holders, self) {
			n.pending.remove(r.CID)
		}
		switch {
		case slices.Contains(r.Holders, self), slices.Contains(r.Allocated, self),
			len(r.Holders) == 0 && len(r.Allocated) == 0:
			keep[r.CID] = true
		default:
			if used, ok := n.cache.get(r.CID); ok {
				cacheable = append(cacheable, placement.CacheEntry{CID: r.CID, Size: r.SizeBytes, LastUsed: used})
			}
		}
	}
	lookup := func(cids []string) error {
		rs, err := n.cat.ReplicasOf(cids)
		if err != nil {
			return err
		}
		for _, r := range rs {
			consider(r)
		}
		for _, c := range cids {
			if _, ok := live[c]; !ok {
				live[c] = false
			}
		}
		return nil
	}
	if err := lookup(n.cache.keys()); err != nil {
		return err
	}
	// Roots whose placement changed while the indexes were read: one
	// allocated here meanwhile is kept like the others.
	if err := lookup(changed); err != nil {
		return err
	}
	pinned := make([]string, 0, len(pins))
	for _, p := range pins {
		keep[p.CID] = true
		pinned = append(pinned, p.CID)
	}
	if err := lookup(pinned); err != nil {
		return err
	}
	for _, u := range received {
		keep[u], live[u] = true, true
	}
	liveOf := func(c string) bool {
		if l, ok := live[c]; ok {
			return l
		}
		l := n.live(c)
		live[c] = l
		return l
	}
	// A pushed copy whose write was recorded and deleted before a
	// collection saw this node as its holder is not kept for pendingTTL.
	n.pending.releaseDeleted(time.Now(), liveOf, func(c string, since uint64) (bool, bool) {
		cids, ok := n.cat.ChangedCIDs(since)
		return slices.Contains(cids, c), ok
	})
	for _, c := range n.pending.roots() {
		keep[c] = true
	}
	for _, c := range n.reading.roots() {
		keep[c] = true
	}
	for _, e := range placement.KeepCache(cacheable, n.cfg.CacheSize) {
		keep[e.CID] = true
	}
	// Forget cache entries of content that is gone or evicted, and
	// verifications of content no longer kept.
	n.cache.retain(func(c string) bool { return live[c] && keep[c] })
	for c := range keep {
		if !liveOf(c) && !n.pending.has(c) {
			continue
		}
		if err := emit(c); err != nil {
			return err
		}
	}
	n.verified.retain(func(c string) bool { return verified[c] || keep[c] })
	return nil
}

// replicaPage is how many replicas a reconciler reads from the catalog's
// replica index at a time.
const replicaPage = 2048

// eachReplicaOn calls fn with every replica that member peer holds or is
// allocated (peer "": every replica with neither), page by page, until fn
// fails.
func (n *Node) eachReplicaOn(ctx context.Context, peer string, fn func(catalog.Replica) error) error {
	for after := ""; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		rs, err := n.cat.ReplicasOn(peer, after, replicaPage)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(rs) < replicaPage {
			return nil
		}
		after = rs[len(rs)-1].CID
	}
}

// place is the placement reconciler's step: what is allocated or pinned
// here is fetched and recorded; what is held here but no longer wanted is
// given up once enough allocated copies exist elsewhere. Each run looks at what changed
// since the last, at every pin here, at what failed to be fetched, and at
// the next page of a sweep over what this node holds or is allocated
// (the catalog's index by member): the sweep retries what nothing else
// brings back, and after a restore or a quarantine starts over.
func (n *Node) place(ctx context.Context) error {
	self := n.peerID.String()
	if n.placeAll.Swap(false) {
		n.placeView.restart() // what this node holds must be checked again
	}
	pins, err := n.cat.Pins(self)
	if err != nil {
		return err
	}
	pinned := make(map[string]bool, len(pins))
	pinCIDs := make([]string, 0, len(pins))
	for _, p := range pins {
		pinned[p.CID] = true
		pinCIDs = append(pinCIDs, p.CID)
	}
	// Besides what changed and the next page of what is held or
	// allocated here: every pin here, and what failed to be fetched.
	replicas, err := n.placeView.look(n.cat, func(after string) ([]catalog.Replica, error) {
		return n.cat.ReplicasOn(self, after, replicaPage)
	}, append(pinCIDs, n.placing.failedCIDs()...))
	if err != nil {
		return err
	}
	members, _ := n.cat.Members()
	acts := placement.Reconcile(self, replicas, pinned, max(1, len(members)), func(c string) placement.Local {
		if n.verifiedHere(ctx, c) {
			return placement.Local{Verified: true}
		}
		root, err := cid.Decode(c)
		return placement.Local{Lost: err == nil && n.content.Missing(ctx, root)}
	})
	for _, c := range acts.Unhold {
		// Recorded as a holder, but blocks are missing (a store lost or
		// emptied, blocks quarantined after a failed check): the record
		// goes first, so that nobody counts on this copy; a fetch from
		// the other holders follows when the version is wanted here.
		if err := n.cat.DropLostHolder(ctx, c, self); err != nil {
			return err
		}
		n.metrics.unheld.Inc()
		n.log.Error("this node no longer holds all of a version it was recorded as holding: gave up its holder record", "cid", c)
	}
	for _, r := range acts.Fetch {
		n.startPlacementFetch(ctx, r)
	}
	for _, c := range acts.Record {
		if err := n.cat.AddHolder(ctx, c, self); err != nil {
			return err
		}
	}
	for _, c := range acts.Drop {
		if err := n.cat.RemoveHolder(ctx, c, self); err != nil {
			return err
		}
		n.log.Info("gave up a copy that is no longer allocated here", "cid", c)
	}
	if len(acts.Drop) > 0 {
		kick(n.collectKick)
	}
	return nil
}

// verifiedHere reports whether every block of the DAG under c is in the
// local store; a positive answer is remembered until the collector stops
// keeping c.
func (n *Node) verifiedHere(ctx context.Context, c string) bool {
	if _, ok := n.verified.get(c); ok {
		return true
	}
	root, err := cid.Decode(c)
	if err != nil || !n.complete(ctx, root) {
		return false
	}
	n.verified.set(c, struct{}{})
	return true
}

// maxPlacementFetches bounds how many placement fetches of large content
// run at once; maxSmallPlacementFetches, of content of up to
// smallFetchMax bytes, beside them: a small fetch costs round trips and a
// catalog write more than bandwidth, so more of them run at once, and a
// backlog of large copies does not hold the small ones up.
const (
	maxPlacementFetches      = 2
	maxSmallPlacementFetches = 8
	smallFetchMax            = 1 << 20
)

// errNoCopy is why a placement fetch did not start: no other member is
// recorded as holding the version, or as fetching it.
var errNoCopy = artmesh.E(artmesh.Unavailable, "no member of the mesh holds a copy")

// errGone is why a placement fetch stopped: the version was deleted
// meanwhile, so there is nothing to hold.
var errGone = errors.New("node: the content was deleted meanwhile")

// startPlacementFetch fetches a replica's DAG in the background unless a
// fetch of it is under way, then records this node as a holder. A fetch
// of content deleted meanwhile is dropped quietly.
func (n *Node) startPlacementFetch(ctx context.Context, r catalog.Replica) {
	if !n.placing.start(r.CID) {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_, failedBefore := n.placing.state(r.CID)
		err := n.fetchAndHold(ctx, r)
		if errors.Is(err, errGone) {
			n.log.Debug("dropped the fetch of an allocated copy: its version was deleted", "cid", r.CID)
			err = nil
		}
		n.placing.finish(r.CID, err)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, errNoCopy):
			// Said once, not at every placement run while it lasts.
			if failedBefore != artmesh.Message(err) {
				n.log.Error("an allocated version has no copy on any member: it cannot be fetched until a member that has it comes back", "cid", r.CID)
			}
		case errors.Is(err, artmesh.InsufficientStorage):
			// Every allocated copy fails alike while the disk is full:
			// one line a minute says so.
			now := time.Now().UnixNano()
			if last := n.fullLogged.Load(); now-last >= int64(time.Minute) && n.fullLogged.CompareAndSwap(last, now) {
				n.log.Warn("allocated copies wait for disk space; retrying later", "cid", r.CID, "err", err)
			}
		default:
			n.log.Warn("fetching an allocated copy failed; retrying later", "cid", r.CID, "err", err)
		}
	}()
}

// copyElsewhere reports whether another member holds or fetches the DAG
// under c, as the catalog says now (true when it cannot say).
func (n *Node) copyElsewhere(c string) bool {
	self := n.peerID.String()
	hs, err := n.cat.Holders(c)
	if err != nil {
		return true
	}
	fs, err := n.cat.Fetchers(c)
	if err != nil {
		return true
	}
	for _, p := range append(hs, fs...) {
		if p != self {
			return true
		}
	}
	return false
}

// live reports whether a version still references c (true when the
// catalog cannot say).
func (n *Node) live(c string) bool {
	rs, err := n.cat.ReplicasOf([]string{c})
	return err != nil || len(rs) > 0
}

// fetchAndHold fetches the DAG of r, makes it durable and records this
// node as its holder. It answers errGone, at once or when the fetch
// fails, if the version was deleted meanwhile.
func (n *Node) fetchAndHold(ctx context.Context, r catalog.Replica) error {
	sem := n.placeSem
	if r.SizeBytes <= smallFetchMax {
		sem = n.smallSem
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sem }()
	if !n.live(r.CID) {
		return errGone
	}
	if !n.copyElsewhere(r.CID) {
		// Nobody to fetch from (the only copy was lost or quarantined
		// here): no fetch ties up a slot waiting for one.
		return errNoCopy
	}
	root, err := cid.Decode(r.CID)
	if err != nil {
		return err
	}
	if !n.complete(ctx, root) {
		if err := n.bs.CheckSpace(r.SizeBytes); err != nil {
			return err
		}
	}
	start := time.Now()
	fe := n.fetcher.Ensure(root)
	select {
	case <-fe.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := fe.Err(); err != nil {
		if !n.live(r.CID) {
			return errGone
		}
		return err
	}
	if !n.complete(ctx, root) {
		if !n.live(r.CID) {
			return errGone
		}
		return artmesh.E(artmesh.Unavailable, fmt.Sprintf("the content %s is not complete after its fetch", root))
	}
	if err := n.bs.Sync(ctx); err != nil {
		return err
	}
	n.verified.set(r.CID, struct{}{})
	if !n.live(r.CID) {
		return errGone // a holder record now would outlive the version
	}
	if err := n.cat.AddHolder(ctx, r.CID, n.peerID.String()); err != nil {
		return err
	}
	n.metrics.repairBytes.Add(float64(fe.Bytes()))
	d := time.Since(start)
	n.log.Info("holding an allocated copy", "cid", r.CID, "bytes", r.SizeBytes, "duration", d.Round(time.Millisecond),
		"mb_per_s", fmt.Sprintf("%.1f", float64(r.SizeBytes)/1e6/max(d.Seconds(), 1e-6)))
	return nil
}

// allocate is the leader's allocator step: it tracks when each member was
// last reachable and brings the allocation of each version to its factor.
// It never walks every version; each run looks at (see allocView):
//   - the versions whose content, placement or factor changed since the
//     last run (the watch's CIDs);
//   - after a change of the policy or of the members, or when the watch
//     no longer knows what changed, or when this node becomes leader, and
//     every underEvery: the versions with fewer copies than their factor,
//     page by page, from the catalog's index by level;
//   - for each member that stopped being live (or left Raft) since the
//     last run: what it holds or is allocated, page by page, from the
//     catalog's index by member;
//   - the next page of a sweep over every version, which resumes where the
//     last run stopped: what nothing above tells (a factor lowered by the
//     policy, something a failed write left) is found within one sweep.
//
// The bytes each member holds or is allocated, which new allocations
// balance, are the catalog's counters.
func (n *Node) allocate(ctx context.Context) error {
	if !n.cat.IsLeader() {
		n.seen.reset()
		n.allocView = allocView{}
		return nil
	}
	members, err := n.cat.Members()
	if err != nil {
		return err
	}
	servers, err := n.cat.Servers()
	if err != nil {
		return err
	}
	inRaft := make(map[string]bool, len(servers))
	for _, s := range servers {
		inRaft[s.ID] = true
	}
	now := time.Now()
	self := n.peerID.String()
	var ms []placement.Member
	liveNow := make(map[string]bool, len(members))
	for _, m := range members {
		if !inRaft[m.PeerID] {
			continue // left the mesh
		}
		reachable := m.PeerID == self
		if !reachable {
			if id, err := peer.Decode(m.PeerID); err == nil {
				reachable = n.host.Network().Connectedness(id) == network.Connected
			}
		}
		last := n.seen.observe(m.PeerID, reachable, now)
		live := reachable || now.Sub(last) < n.cfg.DeadHolderAfter
		liveNow[m.PeerID] = live
		ms = append(ms, placement.Member{ID: m.PeerID, Reachable: reachable, Live: live})
	}
	v := &n.allocView
	idx, _ := n.cat.Watch()
	cids, known := n.cat.ChangedCIDs(v.index)
	if !v.started || !known || n.cat.ChangedSince(v.index, catalog.TopicPolicy|catalog.TopicMembers) ||
		(!v.underOn && now.Sub(v.underAt) >= underEvery) {
		v.under, v.underOn, v.underAt = "", true, now
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		ids = append(ids, m.PeerID)
	}
	v.walkGone(ids, liveNow)
	replicas, err := v.look(n.cat, cids, max(1, len(ms)))
	if err != nil {
		return err
	}
	st, err := n.cat.ReplicaStats(max(1, len(ms)))
	if err != nil {
		return err
	}
	held := make(map[string]int64, len(st.Peers))
	for p, r := range st.Peers {
		held[p] = r.PlacedBytes
	}
	v.live, v.started = liveNow, true
	up := placement.Allocate(replicas, ms, held)
	if len(up.Allocations) == 0 && len(up.DropHolders) == 0 {
		v.index = idx
		return nil
	}
	// Bound one log entry: the rest follows in the next round, which
	// looks at the same changes again.
	const maxBatch = 2000
	whole := len(up.Allocations) <= maxBatch && len(up.DropHolders) <= maxBatch
	if len(up.Allocations) > maxBatch {
		up.Allocations = up.Allocations[:maxBatch]
	}
	if len(up.DropHolders) > maxBatch {
		up.DropHolders = up.DropHolders[:maxBatch]
	}
	if err := n.cat.UpdatePlacement(ctx, up); err != nil {
		return err
	}
	if whole {
		v.index = idx
	}
	for _, d := range up.DropHolders {
		n.log.Info("dropped the holder record of a member that is gone", "cid", d.CID, "peer", d.Peer)
	}
	n.log.Debug("allocated", "versions", len(up.Allocations))
	return nil
}

// allocView is the allocator's record of what it looked at, its loop's
// only.
type allocView struct {
	started bool
	index   uint64    // the catalog index whose changes were acted on
	sweep   string    // the sweep's cursor: the last CID looked at ("": from the start)
	under   string    // the cursor of the pass over the under-replicated
	underOn bool      // that pass is under way
	underAt time.Time // when the last one started
	// walks are the members whose replicas are being looked at, each
	// with its cursor; live, which members were live at the last run.
	walks map[string]string
	live  map[string]bool
}

// walkGone starts a walk of the replicas of each member that stopped
// being live since the last run (members: the catalog's; live: which are
// live now; one that left the catalog is not). A first run walks every
// member that is not live.
func (v *allocView) walkGone(members []string, live map[string]bool) {
	gone := func(p string) {
		if _, walking := v.walks[p]; walking || live[p] || (v.started && !v.live[p]) {
			return
		}
		if v.walks == nil {
			v.walks = make(map[string]string)
		}
		v.walks[p] = ""
	}
	for _, p := range members {
		gone(p)
	}
	for p := range v.live {
		gone(p)
	}
}

// look returns the replicas to look at in this run (see allocate), each
// once, and moves the cursors on.
func (v *allocView) look(cat *catalog.Catalog, changed []string, members int) ([]catalog.Replica, error) {
	var out []catalog.Replica
	seen := make(map[string]bool)
	add := func(rs []catalog.Replica) {
		for _, r := range rs {
			if !seen[r.CID] {
				seen[r.CID] = true
				out = append(out, r)
			}
		}
	}
	rs, err := cat.ReplicasOf(changed)
	if err != nil {
		return nil, err
	}
	add(rs)
	if v.underOn {
		rs, next, err := cat.UnderReplicated(members, v.under, replicaPage)
		if err != nil {
			return nil, err
		}
		add(rs)
		v.under, v.underOn = next, next != ""
	}
	for p, after := range v.walks {
		rs, err := cat.ReplicasOn(p, after, replicaPage)
		if err != nil {
			return nil, err
		}
		add(rs)
		if len(rs) < replicaPage {
			delete(v.walks, p)
		} else {
			v.walks[p] = rs[len(rs)-1].CID
		}
	}
	rs, err = cat.ReplicaPage(v.sweep, sweepPage)
	if err != nil {
		return nil, err
	}
	add(rs)
	v.sweep = ""
	if len(rs) == sweepPage {
		v.sweep = rs[len(rs)-1].CID
	}
	return out, nil
}

// sweepPage is how many versions the allocator's sweep looks at per run.
const sweepPage = 1024

// underEvery is how often the allocator goes over the under-replicated
// versions with nothing else to make it: a repair that could not be
// allocated (no spare member then) or that failed is tried again.
const underEvery = 30 * time.Second

// view is the placement reconciler's record of what it looked at, its
// loop's only: the catalog index, and the cursor of its sweep over what
// is held or allocated here.
type view struct {
	index uint64
	sweep string // the last CID looked at ("": from the start)
}

// restart makes the sweep start over: everything held or allocated here
// is looked at again, a page per run.
func (v *view) restart() { v.sweep = "" }

// look returns the replicas to look at now, each once: those whose
// versions, placement or pins changed since the last look, those of
// extra, and the next page of the sweep (page reads the one after a
// cursor). The sweep starts over when the watch no longer knows what
// changed.
func (v *view) look(cat *catalog.Catalog, page func(after string) ([]catalog.Replica, error), extra []string) ([]catalog.Replica, error) {
	idx, _ := cat.Watch()
	cids, ok := cat.ChangedCIDs(v.index)
	if !ok {
		v.sweep = ""
	}
	rs, err := cat.ReplicasOf(append(cids, extra...))
	if err != nil {
		return nil, err
	}
	pg, err := page(v.sweep)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		seen[r.CID] = true
	}
	for _, r := range pg {
		if !seen[r.CID] {
			rs = append(rs, r)
		}
	}
	v.sweep = ""
	if len(pg) == replicaPage {
		v.sweep = pg[len(pg)-1].CID
	}
	v.index = idx
	return rs, nil
}

// lastSeen tracks when the leader last reached each member.
type lastSeen struct {
	mu sync.Mutex
	at map[string]time.Time
}

// observe records a look at member id and returns when it was last
// reachable (now if it is; the first look counts as reachable, so a new
// leader gives every member the full time).
func (s *lastSeen) observe(id string, reachable bool, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = make(map[string]time.Time)
	}
	t, ok := s.at[id]
	if reachable || !ok {
		s.at[id] = now
		return now
	}
	return t
}

func (s *lastSeen) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = nil
}

// cidMap is a map keyed by CID (or peer id), safe for concurrent use: the
// set of DAGs verified here (V struct{}), the cache's last reads (V
// time.Time), and the members kept out of extra copies until a time.
type cidMap[V any] struct {
	mu sync.Mutex
	m  map[string]V
	// limit, if above 0, bounds the entries: a set beyond it forgets one
	// entry at random. Only for a map that is a cache (an entry that is
	// gone is worked out again), such as the verified DAGs.
	limit int
}

func (s *cidMap[V]) set(c string, v V) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]V)
	}
	if _, ok := s.m[c]; !ok && s.limit > 0 && len(s.m) >= s.limit {
		for old := range s.m { // Go starts a map's range at random
			delete(s.m, old)
			break
		}
	}
	s.m[c] = v
}

// len returns how many entries the map holds.
func (s *cidMap[V]) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// maxVerified bounds the DAGs remembered as verified complete here (a
// string and a map entry each, about 120 bytes: 8 MiB). Without a bound
// the set grew with everything the node holds, about 120 MB of heap at a
// million artifacts on one node; one that is forgotten is checked again
// against the block store (a lookup per block) when placement next asks.
const maxVerified = 1 << 16

func (s *cidMap[V]) get(c string) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[c]
	return v, ok
}

// keys returns the CIDs in the map.
func (s *cidMap[V]) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for c := range s.m {
		out = append(out, c)
	}
	return out
}

// retain forgets every CID that keep refuses.
func (s *cidMap[V]) retain(keep func(string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.m {
		if !keep(c) {
			delete(s.m, c)
		}
	}
}

// refCounts counts the reads of each root under way.
type refCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (r *refCounts) acquire(c string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]int)
	}
	r.m[c]++
}

func (r *refCounts) release(c string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[c]--; r.m[c] <= 0 {
		delete(r.m, c)
	}
}

func (r *refCounts) roots() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.m))
	for c := range r.m {
		out = append(out, c)
	}
	return out
}

// pendingSet is content pushed here by a write with replicas=N or an
// extra copy: kept from the collector until the write is seen recorded,
// until it expires (by then the write is recorded, or it failed), or once
// its write was recorded and deleted meanwhile (see releaseDeleted).
type pendingSet struct {
	mu sync.Mutex
	m  map[string]pendingEntry // by root CID
}

// pendingEntry is one pushed root: when it came, the catalog index
// applied here then (its write is recorded after it), and its expiry.
type pendingEntry struct {
	added, expires time.Time
	index          uint64
}

// pendingTTL is how long pushed content is kept before the write that
// pushed it must have recorded it.
const pendingTTL = 10 * time.Minute

// pendingGrace is how long a pushed root stays protected in any case: a
// write is recorded right after its copies are made.
const pendingGrace = time.Second

// add protects root c, pushed here when the catalog had applied index.
func (p *pendingSet) add(c string, index uint64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]pendingEntry)
	}
	p.m[c] = pendingEntry{added: now, expires: now.Add(pendingTTL), index: index}
}

func (p *pendingSet) remove(c string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, c)
}

func (p *pendingSet) has(c string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[c]
	return ok && time.Now().Before(e.expires)
}

func (p *pendingSet) roots() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var out []string
	for c, e := range p.m {
		if now.After(e.expires) {
			delete(p.m, c)
			continue
		}
		out = append(out, c)
	}
	return out
}

// releaseDeleted ends the protection of the pushed roots that no live
// version references although a version or placement of theirs changed
// after the push (changed answers that, ok false when it cannot tell):
// their write was recorded, and deleted before this node saw itself as a
// holder. Roots pushed less than pendingGrace ago stay.
func (p *pendingSet) releaseDeleted(now time.Time, live func(string) bool, changed func(c string, since uint64) (bool, bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, e := range p.m {
		if live(c) || now.Sub(e.added) < pendingGrace {
			continue
		}
		if ch, ok := changed(c, e.index); ok && ch {
			delete(p.m, c)
		}
	}
}

// fetchStates tracks this node's placement fetches, for pin states.
type fetchStates struct {
	mu      sync.Mutex
	running map[string]bool
	failed  map[string]string // last error by CID
}

// start marks c as being fetched; false if it is already.
func (f *fetchStates) start(c string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running == nil {
		f.running, f.failed = make(map[string]bool), make(map[string]string)
	}
	if f.running[c] {
		return false
	}
	f.running[c] = true
	return true
}

func (f *fetchStates) finish(c string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, c)
	if err != nil {
		f.failed[c] = artmesh.Message(err)
	} else {
		delete(f.failed, c)
	}
}

// failedCIDs returns the CIDs whose last fetch failed.
func (f *fetchStates) failedCIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.failed))
	for c := range f.failed {
		out = append(out, c)
	}
	return out
}

// state returns whether c is being fetched and its last error.
func (f *fetchStates) state(c string) (running bool, failed string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[c], f.failed[c]
}
