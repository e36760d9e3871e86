package node

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
)

// Synchronous copies: a write with replicas=N is acknowledged only once N
// members hold every block durably and the catalog records them as
// holders. A create or update pushes its blocks to the N-1 other members
// while it imports them (push.go). An upload's content was imported when
// its last byte arrived, so its confirm asks N-1 other members over
// ReplicateProtocol to take a copy instead; each streams the DAG from the
// node that holds it (verifying every block, as any fetch does), makes it
// durable and answers. Only then is the write proposed, with every copy as
// a holder.
// If too few members are reachable, or one fails, the write is refused
// with Unavailable and nothing is recorded; the copies already made are
// collected once their protection (pendingTTL) ends.

// ReplicateProtocol asks a member to take a durable copy of a DAG from the
// caller before the caller records a write.
const ReplicateProtocol protocol.ID = "/artmesh/replicate/1.0.0"

type replicateRequest struct {
	CID string `json:"cid"`
	// From is the member to copy from, when it is not the caller (a
	// confirm on a node that did not receive the upload).
	From string `json:"from,omitempty"`
}

// serveReplicate takes a copy of a DAG from a member that asks.
func (n *Node) serveReplicate(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	if _, err := n.cat.Member(from.String()); err != nil {
		return nil, fmt.Errorf("only members may push copies")
	}
	var req replicateRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("malformed replicate request")
	}
	root, err := cid.Decode(req.CID)
	if err != nil {
		return nil, fmt.Errorf("malformed cid")
	}
	source := from
	if req.From != "" {
		if source, err = peer.Decode(req.From); err != nil {
			return nil, fmt.Errorf("malformed source peer id")
		}
		if _, err := n.cat.Member(req.From); err != nil {
			return nil, fmt.Errorf("the source is not a member")
		}
	}
	idx, _ := n.cat.Watch()
	n.pending.add(req.CID, idx, time.Now())
	if err := n.copyFrom(ctx, source, root); err != nil {
		n.pending.remove(req.CID)
		return nil, err
	}
	return []byte("ok"), nil
}

// copyFrom streams the DAG under root from p into the store, durably, and
// checks that it is complete.
func (n *Node) copyFrom(ctx context.Context, p peer.ID, root cid.Cid) error {
	if err := n.fetcher.CopyFrom(ctx, p, root); err != nil {
		return err
	}
	if !n.complete(ctx, root) {
		return fmt.Errorf("the copy of %s is not complete", root)
	}
	n.verified.set(root.String(), struct{}{})
	return nil
}

// replicaTargets picks want-len(have) reachable members, other than this
// node and those in have (members that hold the content already), to
// take copies, those holding the fewest bytes first, and up to extra more
// for extra copies (fewer when too few members are reachable). size is
// the content's (-1: not known yet). With have empty this node counts as
// the first copy.
func (n *Node) replicaTargets(want, extra int, size int64, have ...string) (required, more []peer.ID, err error) {
	if len(have) == 0 {
		have = []string{n.peerID.String()}
	}
	need := want - len(have)
	if need <= 0 && extra <= 0 {
		return nil, nil, nil
	}
	if want > catalog.MaxReplicationFactor {
		return nil, nil, artmesh.E(artmesh.Invalid, fmt.Sprintf("replicas must be from 1 to %d", catalog.MaxReplicationFactor))
	}
	need = max(0, need)
	members, err := n.cat.Members()
	if err != nil {
		return nil, nil, err
	}
	var cands, away []peer.ID
	for _, m := range members {
		id, err := peer.Decode(m.PeerID)
		if err != nil || id == n.peerID || slices.Contains(have, m.PeerID) {
			continue
		}
		if n.host.Network().Connectedness(id) != network.Connected {
			away = append(away, id)
			continue
		}
		cands = append(cands, id)
	}
	if extra > 0 && len(away) > 0 {
		// A member this node has had no reason to talk to yet is not
		// connected: connect, so that later writes can pick it.
		n.connectSoon(away)
	}
	if len(cands) < need {
		return nil, nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("replicas=%d needs %d more reachable members to take copies; %d are reachable", want, need, len(cands)))
	}
	required = slices.Clone(n.held.pick(cands, need, size, n.heldBytes))
	var rest []peer.ID
	for _, p := range cands[need:] {
		if until, ok := n.copyFailed.get(p.String()); !ok || time.Now().After(until) {
			rest = append(rest, p)
		}
	}
	more = n.held.pick(rest, min(len(rest), max(0, extra)), size, n.heldBytes)
	return required, more, nil
}

// extraCopyFailed keeps member p out of extra copies for a while: it
// could not take one in time.
func (n *Node) extraCopyFailed(p peer.ID) {
	n.copyFailed.set(p.String(), time.Now().Add(extraCopyBackoff))
}

// connectSoon connects to members in the background, unless it is under
// way already, each within a few seconds: members that only replicas=N
// and extra copies would talk to are not connected otherwise.
func (n *Node) connectSoon(members []peer.ID) {
	if !n.connecting.CompareAndSwap(false, true) {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.connecting.Store(false)
		for _, p := range members {
			ctx, cancel := context.WithTimeout(n.runCtx, 5*time.Second)
			err := n.host.Connect(ctx, peer.AddrInfo{ID: p})
			cancel()
			if err != nil {
				n.log.Debug("could not connect to a member for copies", "peer", p, "err", err)
			}
			if n.runCtx.Err() != nil {
				return
			}
		}
	}()
}

// extraCopies returns how many extra copies a write of size bytes (-1:
// not known yet) to artifact id (empty: a new one) pushes besides the
// want it must have: as many as its factor asks for beyond want, for
// content that may be at most EagerCopyMax bytes.
func (n *Node) extraCopies(id artmesh.ArtifactID, want int, size int64) int {
	if n.cfg.EagerCopyMax <= 0 || size > n.cfg.EagerCopyMax {
		return 0
	}
	factor := 0
	if id != "" {
		factor, _ = n.cat.Replication(id)
	}
	if factor == 0 {
		p, err := n.cat.Policy()
		if err != nil {
			return 0
		}
		factor = p.ReplicationFactor
	}
	return max(0, factor-want)
}

// heldCacheFor is how long the bytes each member holds are taken from
// one read of the catalog's replica counters, between writes that pick
// members for copies.
const heldCacheFor = 5 * time.Second

// heldBytes returns the bytes each member is a recorded holder of, from
// the counters the catalog keeps at apply time (never a walk of the
// versions: a write with replicas>=2 needs only the members and these).
func (n *Node) heldBytes() (map[string]int64, error) {
	st, err := n.cat.ReplicaStats(1)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(st.Peers))
	for p, r := range st.Peers {
		out[p] = r.HeldBytes
	}
	return out, nil
}

// heldCache is the bytes each member holds, as of a read of the catalog's
// counters at most heldCacheFor ago, plus the copies picked since, so
// that writes in a row spread over the members before their copies are
// recorded.
type heldCache struct {
	mu  sync.Mutex
	at  time.Time
	now func() time.Time // nil: time.Now
	m   map[string]int64
}

// pick returns the k of cands that hold the fewest bytes (then by id),
// reading them again with load when the last read is too old, and counts
// size bytes more for each one picked, so that writes in a row spread
// over the members.
func (h *heldCache) pick(cands []peer.ID, k int, size int64, load func() (map[string]int64, error)) []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	if t := now(); h.m == nil || t.Sub(h.at) >= heldCacheFor {
		h.m, h.at = make(map[string]int64), t
		if m, err := load(); err == nil {
			maps.Copy(h.m, m)
		}
	}
	slices.SortFunc(cands, func(a, b peer.ID) int {
		return cmp.Or(cmp.Compare(h.m[a.String()], h.m[b.String()]), slices.Compare([]byte(a), []byte(b)))
	})
	out := cands[:k]
	for _, p := range out {
		h.m[p.String()] += max(1, size)
	}
	return out
}

// writeReplicas returns how many copies a write must have before it is
// acknowledged: asked (0: the mesh policy's write_replicas).
func (n *Node) writeReplicas(asked int) (int, error) {
	if asked < 0 || asked > catalog.MaxReplicationFactor {
		return 0, artmesh.E(artmesh.Invalid, fmt.Sprintf("replicas must be from 1 to %d", catalog.MaxReplicationFactor))
	}
	if asked > 0 {
		return asked, nil
	}
	p, err := n.cat.Policy()
	if err != nil {
		return 0, err
	}
	return p.WriteReplicas, nil
}

// replicate has each target take a durable copy of root from source
// (empty: this node), all at once, and returns their peer ids once every
// one has.
func (n *Node) replicate(ctx context.Context, root cid.Cid, source string, targets []peer.ID) ([]string, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReplicateTimeout)
	defer cancel()
	req, _ := json.Marshal(replicateRequest{CID: root.String(), From: source})
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = mesh.Call(ctx, n.host, t, ReplicateProtocol, req)
		}()
	}
	wg.Wait()
	out := make([]string, len(targets))
	for i, err := range errs {
		if err != nil {
			return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("member %s could not take a copy; nothing was recorded", targets[i]), err)
		}
		out[i] = targets[i].String()
	}
	return out, nil
}
