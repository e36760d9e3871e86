package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/artmesh/artmesh"
)

// Pins say which versions this node keeps a full copy of: pinning fetches
// the whole DAG from its holders, records this node as a holder, and keeps
// the blocks from the collector until unpinned. The list lives in
// <repo>/pins.json; states are this run's.

// Pin states.
const (
	PinQueued   = "queued"
	PinFetching = "fetching"
	PinPinned   = "pinned"
	PinFailed   = "failed"
)

// PinsFile holds this node's pins.
const PinsFile = "pins.json"

// Pin is one pinned version and how far its fetch got.
type Pin struct {
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Version    int                `json:"version"`
	CID        string             `json:"cid"`
	State      string             `json:"state"`
	BytesDone  int64              `json:"bytes_done"`
	SizeBytes  int64              `json:"size_bytes"`
	Error      string             `json:"error,omitempty"`
}

// pinSet is this node's pins, guarded by mu.
type pinSet struct {
	mu   sync.Mutex
	pins map[string]*Pin // by artifact id and version
}

func pinKey(id artmesh.ArtifactID, v int) string { return fmt.Sprintf("%s@%d", id, v) }

// loadPins reads pins.json; pins come back queued and are fetched again if
// their content is incomplete.
func (n *Node) loadPins() {
	n.pins.pins = make(map[string]*Pin)
	data, err := os.ReadFile(filepath.Join(n.cfg.Repo, PinsFile))
	if err != nil {
		return
	}
	var list []Pin
	if json.Unmarshal(data, &list) != nil {
		return
	}
	for i := range list {
		p := list[i]
		p.State, p.BytesDone, p.Error = PinQueued, 0, ""
		n.pins.pins[pinKey(p.ArtifactID, p.Version)] = &p
		n.startPin(&p)
	}
}

// savePinsLocked writes pins.json. Called with pins.mu held.
func (n *Node) savePinsLocked() error {
	list := make([]Pin, 0, len(n.pins.pins))
	for _, p := range n.pins.pins {
		list = append(list, Pin{ArtifactID: p.ArtifactID, Version: p.Version, CID: p.CID, SizeBytes: p.SizeBytes})
	}
	sort.Slice(list, func(i, j int) bool {
		return pinKey(list[i].ArtifactID, list[i].Version) < pinKey(list[j].ArtifactID, list[j].Version)
	})
	data, _ := json.MarshalIndent(list, "", "  ")
	return writeFileSync(filepath.Join(n.cfg.Repo, PinsFile), data, 0o600)
}

// PinVersion makes this node keep a full copy of a version (0: the
// current one) of an artifact that caller may read. It answers at once;
// the fetch goes on in the background (see Pins).
func (n *Node) PinVersion(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, version int) (Pin, error) {
	if _, err := n.readable(caller, id); err != nil {
		return Pin{}, err
	}
	v, err := n.cat.Version(id, version)
	if err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return Pin{}, artmesh.E(artmesh.NotFound, fmt.Sprintf("artifact %s has no version %d", id, version))
		}
		return Pin{}, err
	}
	n.pins.mu.Lock()
	defer n.pins.mu.Unlock()
	key := pinKey(id, v.Version)
	if p, ok := n.pins.pins[key]; ok {
		return *p, nil
	}
	p := &Pin{ArtifactID: id, Version: v.Version, CID: v.CID, State: PinQueued, SizeBytes: v.SizeBytes}
	n.pins.pins[key] = p
	if err := n.savePinsLocked(); err != nil {
		delete(n.pins.pins, key)
		return Pin{}, err
	}
	n.startPin(p)
	return *p, nil
}

// startPin fetches a pin's content unless it is complete here.
func (n *Node) startPin(p *Pin) {
	root, err := cid.Decode(p.CID)
	if err != nil {
		p.State, p.Error = PinFailed, "bad CID"
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx := n.runCtx
		if n.complete(ctx, root) {
			n.setPin(p, PinPinned, p.SizeBytes, "")
			n.recordHolder(ctx, root)
			return
		}
		n.setPin(p, PinFetching, 0, "")
		fe := n.fetcher.ensure(ctx, root)
		select {
		case <-fe.done:
		case <-ctx.Done():
			return
		}
		if fe.err != nil || !n.complete(ctx, root) {
			msg := "the content is not complete on this node"
			if fe.err != nil {
				msg = artmesh.Message(fe.err)
			}
			n.setPin(p, PinFailed, fe.bytes.Load(), msg)
			return
		}
		n.setPin(p, PinPinned, p.SizeBytes, "")
	}()
}

func (n *Node) setPin(p *Pin, state string, done int64, msg string) {
	n.pins.mu.Lock()
	defer n.pins.mu.Unlock()
	p.State, p.BytesDone, p.Error = state, done, msg
}

// recordHolder records this node as a holder of root, if it is not yet.
func (n *Node) recordHolder(ctx context.Context, root cid.Cid) {
	holders, err := n.cat.Holders(root.String())
	if err != nil {
		return
	}
	for _, h := range holders {
		if h == n.peerID.String() {
			return
		}
	}
	if err := n.cat.AddHolder(ctx, root.String(), n.peerID.String()); err != nil {
		n.log.Warn("recording this node as a holder", "cid", root, "err", err)
	}
}

// complete reports whether every block of the DAG under root is here.
func (n *Node) complete(ctx context.Context, root cid.Cid) bool {
	ok := true
	var visit func(c cid.Cid) error
	visit = func(c cid.Cid) error {
		has, err := n.bs.Has(ctx, c)
		if err != nil || !has {
			ok = false
			return errors.New("missing")
		}
		if c.Prefix().Codec == cid.Raw {
			return nil
		}
		nd, err := n.content.local.Get(ctx, c)
		if err != nil {
			if ipld.IsNotFound(err) {
				ok = false
			}
			return err
		}
		for _, l := range nd.Links() {
			if err := visit(l.Cid); err != nil {
				return err
			}
		}
		return nil
	}
	_ = visit(root)
	return ok
}

// Pins lists this node's pins of artifacts caller may read, with their
// states and progress.
func (n *Node) Pins(_ context.Context, caller artmesh.Agent) ([]Pin, error) {
	n.pins.mu.Lock()
	var out []Pin
	for _, p := range n.pins.pins {
		q := *p
		if q.State == PinFetching {
			if root, err := cid.Decode(q.CID); err == nil {
				q.BytesDone = n.fetcher.progress(root)
			}
		}
		out = append(out, q)
	}
	n.pins.mu.Unlock()
	visible := out[:0]
	for _, p := range out {
		if _, err := n.readable(caller, p.ArtifactID); err == nil || caller.Admin {
			visible = append(visible, p)
		}
	}
	sort.Slice(visible, func(i, j int) bool {
		return pinKey(visible[i].ArtifactID, visible[i].Version) < pinKey(visible[j].ArtifactID, visible[j].Version)
	})
	if visible == nil {
		visible = []Pin{}
	}
	return visible, nil
}

// Unpin stops keeping a version here (0: every pinned version of the
// artifact). This node stops being a recorded holder unless it is the
// only one, so that no version is left without a copy; the collector
// frees the space once nothing else keeps the blocks.
func (n *Node) Unpin(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, version int) error {
	if _, err := n.readable(caller, id); err != nil && !caller.Admin {
		return err
	}
	n.pins.mu.Lock()
	var gone []*Pin
	for k, p := range n.pins.pins {
		if p.ArtifactID == id && (version == 0 || p.Version == version) {
			gone = append(gone, p)
			delete(n.pins.pins, k)
		}
	}
	err := n.savePinsLocked()
	n.pins.mu.Unlock()
	if len(gone) == 0 {
		return artmesh.E(artmesh.NotFound, fmt.Sprintf("artifact %s is not pinned on this node", id))
	}
	if err != nil {
		return err
	}
	for _, p := range gone {
		holders, _ := n.cat.Holders(p.CID)
		if len(holders) > 1 {
			if err := n.cat.RemoveHolder(ctx, p.CID, n.peerID.String()); err != nil {
				return err
			}
		}
	}
	n.kickGC()
	return nil
}

// pinnedRoots returns the roots of this node's pins, for the collector.
func (n *Node) pinnedRoots() []cid.Cid {
	n.pins.mu.Lock()
	defer n.pins.mu.Unlock()
	var out []cid.Cid
	for _, p := range n.pins.pins {
		if c, err := cid.Decode(p.CID); err == nil {
			out = append(out, c)
		}
	}
	return out
}
