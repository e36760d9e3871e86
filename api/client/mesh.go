package client

import (
	"context"
	"net/http"
	"time"
)

// Invite is a one-time ticket that lets a new node join the mesh.
type Invite struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
}

// inviteRequest is the body of POST /v1/mesh/invites.
type inviteRequest struct {
	ExpiresIn int64 `json:"expires_in,omitempty"`
}

// CreateInvite makes an invite ticket (POST /v1/mesh/invites; admin only)
// that `artmesh init --join` takes on the new host. expiresIn 0 means the
// node's default (1 hour).
func (c *Client) CreateInvite(ctx context.Context, expiresIn time.Duration) (Invite, error) {
	var out Invite
	err := c.call(ctx, request{op: "client.CreateInvite", method: http.MethodPost, path: "/v1/mesh/invites"},
		inviteRequest{ExpiresIn: int64(expiresIn / time.Second)}, &out)
	return out, err
}

// RemoveMember takes a node out of the mesh (DELETE
// /v1/mesh/members/{peer_id}; admin only). A node removing itself leaves.
func (c *Client) RemoveMember(ctx context.Context, peerID string) error {
	return c.call(ctx, request{op: "client.RemoveMember", method: http.MethodDelete, path: "/v1/mesh/members/" + escape(peerID)}, nil, nil)
}
