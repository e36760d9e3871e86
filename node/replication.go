package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/placement"
)

// Placement states of one version.
const (
	PlacementOK              = "ok"               // at least factor reachable holders
	PlacementRepairing       = "repairing"        // too few, and members allocated to it are fetching
	PlacementUnderReplicated = "under_replicated" // too few, and nobody is on the way
)

// VersionPlacement is where one version of an artifact is held, as the API
// shows it.
type VersionPlacement struct {
	Version   int      `json:"version"`
	CID       string   `json:"cid"`
	Factor    int      `json:"factor"`    // effective: at most the number of members
	Holders   []string `json:"holders"`   // peer ids with a verified, durable copy
	Allocated []string `json:"allocated"` // peer ids the leader chose to hold it
	Fetching  []string `json:"fetching"`  // peer ids fetching it now, which serve what they have verified
	State     string   `json:"state"`
}

// MeshPolicy returns the mesh's replication policy. Any agent may read it.
func (n *Node) MeshPolicy(_ context.Context, _ artmesh.Agent) (catalog.Policy, error) {
	return n.cat.Policy()
}

// SetMeshPolicy replaces the mesh's replication policy. Only admins may.
// A changed number of copies above the number of members is refused: it
// could not be met (a value left as it was passes, so that the default
// factor of 2 on a single node does not block changing the other).
func (n *Node) SetMeshPolicy(ctx context.Context, caller artmesh.Agent, p catalog.Policy) (catalog.Policy, error) {
	if !caller.Admin {
		return catalog.Policy{}, artmesh.E(artmesh.PermissionDenied, "only a mesh admin may change the mesh policy")
	}
	if err := p.Validate(); err != nil {
		return catalog.Policy{}, err
	}
	cur, err := n.cat.Policy()
	if err != nil {
		return catalog.Policy{}, err
	}
	if p.ReplicationFactor != cur.ReplicationFactor {
		if err := n.fitsMembers("replication_factor", p.ReplicationFactor); err != nil {
			return catalog.Policy{}, err
		}
	}
	if p.WriteReplicas != cur.WriteReplicas {
		if err := n.fitsMembers("write_replicas", p.WriteReplicas); err != nil {
			return catalog.Policy{}, err
		}
	}
	return n.cat.SetPolicy(ctx, p)
}

// fitsMembers refuses a number of copies above the number of members.
func (n *Node) fitsMembers(what string, copies int) error {
	members, err := n.cat.Members()
	if err != nil {
		return err
	}
	if m := max(1, len(members)); copies > m {
		return artmesh.E(artmesh.Invalid, fmt.Sprintf("%s %d is more than the %d members of the mesh", what, copies, m))
	}
	return nil
}

// SetReplication sets the replication factor of every version of an
// artifact that caller owns (0: back to the mesh policy).
func (n *Node) SetReplication(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, factor int) error {
	if _, err := n.authorize(caller, id, artmesh.Write); err != nil {
		return err
	}
	if factor < 0 || factor > catalog.MaxReplicationFactor {
		return artmesh.E(artmesh.Invalid, fmt.Sprintf("factor must be from 1 to %d (0: the mesh policy)", catalog.MaxReplicationFactor))
	}
	if err := n.fitsMembers("factor", factor); err != nil {
		return err
	}
	kick(n.placeKick)
	return n.cat.SetReplication(ctx, id, factor)
}

// reachable reports whether this node reaches member id now.
func (n *Node) reachable(id string) bool {
	if id == n.peerID.String() {
		return true
	}
	p, err := peer.Decode(id)
	return err == nil && n.host.Network().Connectedness(p) == network.Connected
}

// placementState says whether a version has its copies, as this node sees
// the members' reachability.
func (n *Node) placementState(factor int, holders, allocated []string) string {
	live := 0
	for _, h := range holders {
		if n.reachable(h) {
			live++
		}
	}
	if live >= factor {
		return PlacementOK
	}
	if live == 0 {
		// Nobody reachable has a copy to fetch from: no repair is on
		// its way, whatever is allocated.
		return PlacementUnderReplicated
	}
	for _, a := range allocated {
		if !slices.Contains(holders, a) && n.reachable(a) {
			return PlacementRepairing
		}
	}
	return PlacementUnderReplicated
}

// Placement returns where each version of an artifact that caller may
// read is held, oldest first.
func (n *Node) Placement(_ context.Context, caller artmesh.Agent, id artmesh.ArtifactID) ([]VersionPlacement, error) {
	if _, err := n.readable(caller, id); err != nil {
		return nil, err
	}
	vps, err := n.cat.ArtifactPlacement(id)
	if err != nil {
		return nil, err
	}
	members, _ := n.cat.Members()
	out := make([]VersionPlacement, 0, len(vps))
	for _, v := range vps {
		f := placement.Effective(v.Factor, len(members))
		fetching, _ := n.cat.Fetchers(v.CID)
		out = append(out, VersionPlacement{
			Version: v.Version, CID: v.CID, Factor: f,
			Holders: nonNil(v.Holders), Allocated: nonNil(v.Allocated), Fetching: nonNil(fetching),
			State: n.placementState(f, v.Holders, v.Allocated),
		})
	}
	return out, nil
}

// memberPlacement returns the bytes each member holds and, for each
// member, how many versions in its allocation are under-replicated (see
// catalog.ReplicaStats: committed state, not this node's reachability),
// from counters the catalog keeps at apply time.
func (n *Node) memberPlacement(members int) (map[string]int64, map[string]int) {
	held := make(map[string]int64)
	under := make(map[string]int)
	st, err := n.cat.ReplicaStats(max(1, members))
	if err != nil {
		return held, under
	}
	for p, r := range st.Peers {
		held[p] = r.HeldBytes
		if r.UnderReplicated > 0 {
			under[p] = r.UnderReplicated
		}
	}
	return held, under
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
