package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
)

// Pins are catalog state: an operator's allocation of one version to one
// node. The placement reconciler fetches a pinned version's whole DAG from
// its holders, records this node as a holder, and the collector keeps it
// while the pin and the version live; deleting the version drops its pins.
// States are this run's view of that work.

// Pin states.
const (
	PinQueued   = "queued"
	PinFetching = "fetching"
	PinPinned   = "pinned"
	PinFailed   = "failed"
)

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
	p, err := n.cat.PutPin(ctx, catalog.Pin{Node: n.peerID.String(), ArtifactID: id, Version: v.Version, By: caller.ID, At: time.Now().UTC()})
	if err != nil {
		return Pin{}, err
	}
	kick(n.placeKick)
	return n.pinState(ctx, p), nil
}

// pinState describes a pin with this node's progress on it.
func (n *Node) pinState(ctx context.Context, p catalog.Pin) Pin {
	out := Pin{ArtifactID: p.ArtifactID, Version: p.Version, CID: p.CID, SizeBytes: p.SizeBytes, State: PinQueued}
	running, failed := n.placing.state(p.CID)
	holders, _ := n.cat.Holders(p.CID)
	switch {
	case running:
		out.State = PinFetching
		if root, err := cid.Decode(p.CID); err == nil {
			out.BytesDone = n.fetcher.Progress(root)
		}
	case slices.Contains(holders, n.peerID.String()) && n.verifiedHere(ctx, p.CID):
		out.State, out.BytesDone = PinPinned, p.SizeBytes
	case failed != "":
		out.State, out.Error = PinFailed, failed
	}
	return out
}

// complete reports whether every block of the DAG under root is here.
func (n *Node) complete(ctx context.Context, root cid.Cid) bool {
	return n.content.Complete(ctx, root)
}

// Pins lists this node's pins of artifacts caller may read (a mesh admin
// or the node's agent sees all), with their states and progress.
func (n *Node) Pins(ctx context.Context, caller artmesh.Agent) ([]Pin, error) {
	pins, err := n.cat.Pins(n.peerID.String())
	if err != nil {
		return nil, err
	}
	out := []Pin{}
	for _, p := range pins {
		if _, err := n.readable(caller, p.ArtifactID); err == nil || caller.ManagesNode(n.peerID.String()) {
			out = append(out, n.pinState(ctx, p))
		}
	}
	return out, nil
}

// Unpin stops keeping a version here (0: every pinned version of the
// artifact). Only the agent that pinned it, or an admin, may. The
// placement reconciler then gives up this node's copy unless it is
// allocated here or one of too few copies, and the collector frees it.
func (n *Node) Unpin(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, version int) error {
	if _, err := n.readable(caller, id); err != nil && !caller.ManagesNode(n.peerID.String()) {
		return err
	}
	pins, err := n.cat.Pins(n.peerID.String())
	if err != nil {
		return err
	}
	found := false
	for _, p := range pins {
		if p.ArtifactID != id || (version != 0 && p.Version != version) {
			continue
		}
		found = true
		if p.By != caller.ID && !caller.ManagesNode(n.peerID.String()) {
			return artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("only %s, who pinned it, or an admin may unpin version %d of %s here", p.By, p.Version, id))
		}
	}
	if !found {
		return artmesh.E(artmesh.NotFound, fmt.Sprintf("artifact %s is not pinned on this node", id))
	}
	return n.cat.DeletePin(ctx, n.peerID.String(), id, version)
}

// legacyPinsFile is where nodes before pins lived in the catalog kept
// theirs.
const legacyPinsFile = "pins.json"

// migratePins moves the pins of <repo>/pins.json (an earlier version's)
// into the catalog, as pins on this node by its first admin agent, and
// renames the file once they are recorded. Run once the catalog has caught
// up; on failure the file stays for the next start.
func (n *Node) migratePins(ctx context.Context) {
	path := filepath.Join(n.cfg.Repo, legacyPinsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var old []struct {
		ArtifactID artmesh.ArtifactID `json:"artifact_id"`
		Version    int                `json:"version"`
	}
	if err := json.Unmarshal(data, &old); err != nil {
		n.log.Warn("pins.json is not readable; its pins are not carried over", "err", err)
		return
	}
	agents, err := n.cat.Agents()
	if err != nil {
		return
	}
	var by artmesh.AgentID
	for _, a := range agents {
		if a.Admin {
			by = a.ID
			break
		}
	}
	moved := 0
	for _, p := range old {
		_, err := n.cat.PutPin(ctx, catalog.Pin{Node: n.peerID.String(), ArtifactID: p.ArtifactID, Version: p.Version, By: by, At: time.Now().UTC()})
		switch {
		case err == nil:
			moved++
		case errors.Is(err, artmesh.NotFound):
			// The version is gone: so is its pin.
		default:
			n.log.Warn("carrying pins.json over to the catalog; will try again at the next start", "err", err)
			return
		}
	}
	if err := os.Rename(path, path+".migrated"); err != nil {
		n.log.Warn("renaming pins.json after carrying it over", "err", err)
		return
	}
	n.log.Info("carried the pins of pins.json over to the catalog", "pins", moved)
}
