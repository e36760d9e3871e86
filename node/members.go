package node

import (
	"context"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/membership"
)

// Membership is node/membership's: the node checks the caller's rights
// and hands the work over to its Manager.

// MemberInfo is a member as the API shows it.
type MemberInfo = membership.MemberInfo

// Invite is a fresh invite ticket.
type Invite = membership.Invite

// DefaultInviteTTL is how long an invite lasts unless told otherwise.
const DefaultInviteTTL = time.Hour

// DefaultDeadVoterAfter is the default of Config.DeadVoterAfter.
const DefaultDeadVoterAfter = membership.DefaultDeadVoterAfter

// DefaultDeadMemberAfter is the default of Config.DeadMemberAfter.
const DefaultDeadMemberAfter = membership.DefaultDeadMemberAfter

// Members lists the mesh's members with their roles and whether this node
// reaches them now.
func (n *Node) Members(_ context.Context) ([]MemberInfo, error) {
	return n.members.Members()
}

// CreateInvite makes a one-time ticket for a new node. Only admins may.
func (n *Node) CreateInvite(ctx context.Context, caller artmesh.Agent, expiresIn int64) (Invite, error) {
	if !caller.Admin {
		if p, err := n.cat.Policy(); err != nil || !p.NodeAgentsInvite || caller.Node == "" {
			return Invite{}, artmesh.E(artmesh.PermissionDenied, "only a mesh admin may invite nodes (the mesh policy can let node agents invite)")
		}
	}
	life, err := ttl(expiresIn, DefaultInviteTTL)
	if err != nil {
		return Invite{}, err
	}
	mine := keyUnused(ctx)
	inv, err := n.members.CreateInvite(ctx, caller.ID, life)
	if err != nil {
		return Invite{}, err
	}
	if err := replayedSecret(ctx, mine, "made an invite", "make another with a new Idempotency-Key"); err != nil {
		return Invite{}, err
	}
	return inv, nil
}

// RemoveMember takes a node out of the mesh: out of Raft and the members.
// Only admins may. A node removing itself leaves.
func (n *Node) RemoveMember(ctx context.Context, caller artmesh.Agent, peerID string) error {
	self := peerID == n.peerID.String() && caller.ManagesNode(peerID)
	if !caller.Admin && !self {
		return artmesh.E(artmesh.PermissionDenied, "only a mesh admin may remove nodes (a node's agent may make its own node leave)")
	}
	return n.members.Remove(ctx, peerID)
}
