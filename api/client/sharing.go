package client

import (
	"context"
	"net/http"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// Share lets agents and the members of groups read the artifact id
// (POST /v1/artifacts/{id}/share; owner only) and returns who may read it
// now. Unknown agents or groups are Invalid.
func (c *Client) Share(ctx context.Context, id artmesh.ArtifactID, agents []artmesh.AgentID, groups []string) (artmesh.Access, error) {
	return c.share(ctx, "client.Share", id, "/share", agents, groups)
}

// Unshare takes back what Share gave (POST /v1/artifacts/{id}/unshare);
// capability tokens granted through the removed access stop working.
func (c *Client) Unshare(ctx context.Context, id artmesh.ArtifactID, agents []artmesh.AgentID, groups []string) (artmesh.Access, error) {
	return c.share(ctx, "client.Unshare", id, "/unshare", agents, groups)
}

func (c *Client) share(ctx context.Context, op string, id artmesh.ArtifactID, suffix string, agents []artmesh.AgentID, groups []string) (artmesh.Access, error) {
	if agents == nil {
		agents = []artmesh.AgentID{}
	}
	if groups == nil {
		groups = []string{}
	}
	var acc artmesh.Access
	err := c.call(ctx, request{op: op, method: http.MethodPost, path: "/v1/artifacts/" + escape(string(id)) + suffix},
		apitype.ShareRequest{Agents: agents, Groups: groups}, &acc)
	return acc, err
}

// Access returns who may read the artifact id
// (GET /v1/artifacts/{id}/access).
func (c *Client) Access(ctx context.Context, id artmesh.ArtifactID) (artmesh.Access, error) {
	var acc artmesh.Access
	err := c.call(ctx, request{op: "client.Access", method: http.MethodGet, path: "/v1/artifacts/" + escape(string(id)) + "/access"}, nil, &acc)
	return acc, err
}

// SignedURLOptions describes the capability that CreateSignedURL grants.
type SignedURLOptions struct {
	// ExpiresIn is how long the URL works, in whole seconds; 0 means the
	// node's default (1 hour). At most 7 days.
	ExpiresIn time.Duration
	// Version pins the URL to one version; 0 means the current one at the
	// time of each use.
	Version int
}

// SignedURL is a capability to read one artifact without an API key; its
// TokenID is what RevokeToken takes.
type SignedURL = apitype.SignedURL

// CreateSignedURL issues a capability token to read the artifact id
// (POST /v1/artifacts/{id}/signed-url).
func (c *Client) CreateSignedURL(ctx context.Context, id artmesh.ArtifactID, opt SignedURLOptions) (SignedURL, error) {
	var out SignedURL
	err := c.call(ctx, request{op: "client.CreateSignedURL", method: http.MethodPost, path: "/v1/artifacts/" + escape(string(id)) + "/signed-url"},
		apitype.SignedURLRequest{ExpiresIn: int64(opt.ExpiresIn / time.Second), Version: opt.Version}, &out)
	return out, err
}

// SignedURLInfo describes a live signed URL without its token.
type SignedURLInfo = apitype.SignedURLInfo

// SignedURLs lists the live signed URLs of the artifact id, newest first
// (GET /v1/artifacts/{id}/signed-urls): not revoked, not expired, and still
// backed by their issuer's grant. The owner and admins get all of them,
// an agent it is shared with the ones it issued. The tokens themselves
// are never listed; each TokenID is what RevokeToken takes.
func (c *Client) SignedURLs(ctx context.Context, id artmesh.ArtifactID) ([]SignedURLInfo, error) {
	var out apitype.Items[SignedURLInfo]
	err := c.call(ctx, request{op: "client.SignedURLs", method: http.MethodGet, path: "/v1/artifacts/" + escape(string(id)) + "/signed-urls"}, nil, &out)
	return out.Items, err
}

// RevokeToken revokes a capability token by its id
// (DELETE /v1/tokens/{token_id}); only the granting agent or an admin may.
func (c *Client) RevokeToken(ctx context.Context, tokenID string) error {
	return c.call(ctx, request{op: "client.RevokeToken", method: http.MethodDelete, path: "/v1/tokens/" + escape(tokenID)}, nil, nil)
}
