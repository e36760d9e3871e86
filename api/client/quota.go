package client

import (
	"context"
	"net/http"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// QuotaRequest changes quota limits: a nil limit keeps its current value,
// 0 follows the mesh default (for the defaults: no limit), -1
// (artmesh.Unlimited) lifts the limit.
type QuotaRequest = apitype.QuotaRequest

// Quota returns an agent's usage and limits (GET /v1/agents/{id}/quota;
// an agent its own, admins anyone's).
func (c *Client) Quota(ctx context.Context, id artmesh.AgentID) (artmesh.QuotaStatus, error) {
	var out artmesh.QuotaStatus
	err := c.call(ctx, request{op: "client.Quota", method: http.MethodGet, path: "/v1/agents/" + escape(string(id)) + "/quota"}, nil, &out)
	return out, err
}

// SetQuota changes an agent's own quota (PUT /v1/agents/{id}/quota;
// admins only) and returns its usage and limits as they now are.
func (c *Client) SetQuota(ctx context.Context, id artmesh.AgentID, req QuotaRequest) (artmesh.QuotaStatus, error) {
	var out artmesh.QuotaStatus
	err := c.call(ctx, request{op: "client.SetQuota", method: http.MethodPut, path: "/v1/agents/" + escape(string(id)) + "/quota"}, req, &out)
	return out, err
}

// MeshQuota returns the mesh's default quotas for agents that are not
// admins (GET /v1/mesh/quota; 0: no limit).
func (c *Client) MeshQuota(ctx context.Context) (artmesh.Quota, error) {
	var out artmesh.Quota
	err := c.call(ctx, request{op: "client.MeshQuota", method: http.MethodGet, path: "/v1/mesh/quota"}, nil, &out)
	return out, err
}

// SetMeshQuota changes the mesh's default quotas (PUT /v1/mesh/quota;
// admins only) and returns them as they now are.
func (c *Client) SetMeshQuota(ctx context.Context, req QuotaRequest) (artmesh.Quota, error) {
	var out artmesh.Quota
	err := c.call(ctx, request{op: "client.SetMeshQuota", method: http.MethodPut, path: "/v1/mesh/quota"}, req, &out)
	return out, err
}
