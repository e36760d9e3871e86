package client

import (
	"context"
	"net/http"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// Invite is a one-time ticket that lets a new node join the mesh.
type Invite = apitype.Invite

// CreateInvite makes an invite ticket (POST /v1/mesh/invites; admin only)
// that `artmesh init --join` takes on the new host. expiresIn 0 means the
// node's default (1 hour).
func (c *Client) CreateInvite(ctx context.Context, expiresIn time.Duration) (Invite, error) {
	var out Invite
	err := c.call(ctx, request{op: "client.CreateInvite", method: http.MethodPost, path: "/v1/mesh/invites"},
		apitype.InviteRequest{ExpiresIn: int64(expiresIn / time.Second)}, &out)
	return out, err
}

// RemoveMember takes a node out of the mesh (DELETE
// /v1/mesh/members/{peer_id}; admin only). A node removing itself leaves.
func (c *Client) RemoveMember(ctx context.Context, peerID string) error {
	return c.call(ctx, request{op: "client.RemoveMember", method: http.MethodDelete, path: "/v1/mesh/members/" + escape(peerID)}, nil, nil)
}

// Policy is the mesh's replication policy.
type Policy = apitype.Policy

// SetMeshPolicyRequest changes the mesh policy (PUT /v1/mesh/policy); a
// field left nil is kept. Mesh admins only.
func (c *Client) SetMeshPolicyRequest(ctx context.Context, req apitype.PolicyRequest) (Policy, error) {
	var p Policy
	err := c.call(ctx, request{op: "client.SetMeshPolicy", method: http.MethodPut, path: "/v1/mesh/policy"}, req, &p)
	return p, err
}

// MeshPolicy returns the mesh's replication policy (GET /v1/mesh/policy).
func (c *Client) MeshPolicy(ctx context.Context) (Policy, error) {
	var p Policy
	err := c.call(ctx, request{op: "client.MeshPolicy", method: http.MethodGet, path: "/v1/mesh/policy"}, nil, &p)
	return p, err
}

// SetMeshPolicy changes the mesh's replication policy (PUT
// /v1/mesh/policy; admin only) and returns it as it now is. A nil number
// keeps its current value. A factor above the number of members is
// refused (Invalid).
func (c *Client) SetMeshPolicy(ctx context.Context, replicationFactor, writeReplicas *int) (Policy, error) {
	var p Policy
	err := c.call(ctx, request{op: "client.SetMeshPolicy", method: http.MethodPut, path: "/v1/mesh/policy"},
		apitype.PolicyRequest{ReplicationFactor: replicationFactor, WriteReplicas: writeReplicas}, &p)
	return p, err
}

// SetReplication sets how many members keep every version of the artifact
// id, which the caller owns (PUT /v1/artifacts/{id}/replication); 0 makes
// it follow the mesh policy again.
func (c *Client) SetReplication(ctx context.Context, id artmesh.ArtifactID, factor int) error {
	return c.call(ctx, request{op: "client.SetReplication", method: http.MethodPut, path: "/v1/artifacts/" + escape(string(id)) + "/replication"},
		apitype.Replication{Factor: &factor}, nil)
}

// The states of a VersionPlacement.
const (
	PlacementOK              = apitype.PlacementOK              // at least Factor reachable holders
	PlacementRepairing       = apitype.PlacementRepairing       // too few, and an allocated member is fetching it
	PlacementUnderReplicated = apitype.PlacementUnderReplicated // too few, and nobody is on the way
)

// VersionPlacement is where one version of an artifact is held.
type VersionPlacement = apitype.VersionPlacement

// Placement returns where each version of the artifact id is held, oldest
// version first (GET /v1/artifacts/{id}/placement).
func (c *Client) Placement(ctx context.Context, id artmesh.ArtifactID) ([]VersionPlacement, error) {
	var out apitype.Items[VersionPlacement]
	err := c.call(ctx, request{op: "client.Placement", method: http.MethodGet, path: "/v1/artifacts/" + escape(string(id)) + "/placement"}, nil, &out)
	return out.Items, err
}
