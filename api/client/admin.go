package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// AgentKey is an agent with a new API key, as creating an agent or
// rotating its key returns it. The node shows the key only this once.
type AgentKey = apitype.AgentKey

// CreateAgent adds an agent, a member of groups and an admin when admin is
// set, and returns it with its API key (POST /v1/agents; admins only).
func (c *Client) CreateAgent(ctx context.Context, id artmesh.AgentID, groups []string, admin bool) (AgentKey, error) {
	if groups == nil {
		groups = []string{}
	}
	var out AgentKey
	err := c.call(ctx, request{op: "client.CreateAgent", method: http.MethodPost, path: "/v1/agents"},
		apitype.AgentRequest{ID: id, Groups: groups, Admin: admin}, &out)
	return out, err
}

// Agents lists the agents (GET /v1/agents; admins only).
func (c *Client) Agents(ctx context.Context) ([]artmesh.Agent, error) {
	var out apitype.Items[artmesh.Agent]
	err := c.call(ctx, request{op: "client.Agents", method: http.MethodGet, path: "/v1/agents"}, nil, &out)
	return out.Items, err
}

// DeleteAgent removes the agent id and its keys (DELETE /v1/agents/{id};
// admins only).
func (c *Client) DeleteAgent(ctx context.Context, id artmesh.AgentID) error {
	return c.call(ctx, request{op: "client.DeleteAgent", method: http.MethodDelete, path: "/v1/agents/" + escape(string(id))}, nil, nil)
}

// RotateKey gives the agent id a new API key and returns it
// (POST /v1/agents/{id}/keys; admins only).
func (c *Client) RotateKey(ctx context.Context, id artmesh.AgentID) (AgentKey, error) {
	var out AgentKey
	err := c.call(ctx, request{op: "client.RotateKey", method: http.MethodPost, path: "/v1/agents/" + escape(string(id)) + "/keys"}, nil, &out)
	return out, err
}

// Groups lists the groups (GET /v1/groups).
func (c *Client) Groups(ctx context.Context) ([]artmesh.Group, error) {
	var out apitype.Items[artmesh.Group]
	err := c.call(ctx, request{op: "client.Groups", method: http.MethodGet, path: "/v1/groups"}, nil, &out)
	return out.Items, err
}

// PutGroup creates the group name or sets its members
// (PUT /v1/groups/{name}; admins only).
func (c *Client) PutGroup(ctx context.Context, name string, members []artmesh.AgentID) (artmesh.Group, error) {
	if members == nil {
		members = []artmesh.AgentID{}
	}
	var g artmesh.Group
	err := c.call(ctx, request{op: "client.PutGroup", method: http.MethodPut, path: "/v1/groups/" + escape(name)},
		apitype.GroupRequest{Members: members}, &g)
	return g, err
}

// DeleteGroup removes the group name (DELETE /v1/groups/{name}; admins
// only).
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	return c.call(ctx, request{op: "client.DeleteGroup", method: http.MethodDelete, path: "/v1/groups/" + escape(name)}, nil, nil)
}

// Pin is a node's promise to keep a full copy of one version.
type Pin = apitype.Pin

// The states of a Pin.
const (
	PinQueued   = apitype.PinQueued
	PinFetching = apitype.PinFetching
	PinPinned   = apitype.PinPinned
	PinFailed   = apitype.PinFailed
)

// versionQuery is ?version=N, or nil for version 0.
func versionQuery(version int) url.Values {
	if version <= 0 {
		return nil
	}
	return url.Values{"version": {strconv.Itoa(version)}}
}

// Pin makes this node fetch and keep a version of the artifact id, the
// current one when version is 0 (PUT /v1/pins/{artifact_id}[?version=N]).
// The fetch goes on in the background; Pins reports its progress.
func (c *Client) Pin(ctx context.Context, id artmesh.ArtifactID, version int) (Pin, error) {
	var p Pin
	err := c.call(ctx, request{op: "client.Pin", method: http.MethodPut, path: "/v1/pins/" + escape(string(id)), query: versionQuery(version)}, nil, &p)
	return p, err
}

// Pins lists this node's pins with their states (GET /v1/pins).
func (c *Client) Pins(ctx context.Context) ([]Pin, error) {
	var out apitype.Items[Pin]
	err := c.call(ctx, request{op: "client.Pins", method: http.MethodGet, path: "/v1/pins"}, nil, &out)
	return out.Items, err
}

// Unpin stops this node keeping a version of the artifact id, the current
// one when version is 0 (DELETE /v1/pins/{artifact_id}[?version=N]).
func (c *Client) Unpin(ctx context.Context, id artmesh.ArtifactID, version int) error {
	return c.call(ctx, request{op: "client.Unpin", method: http.MethodDelete, path: "/v1/pins/" + escape(string(id)), query: versionQuery(version)}, nil, nil)
}

// NodeInfo describes the node the client talks to.
type NodeInfo = apitype.NodeInfo

// Node returns what the node says of itself (GET /v1/node).
func (c *Client) Node(ctx context.Context) (NodeInfo, error) {
	var n NodeInfo
	err := c.call(ctx, request{op: "client.Node", method: http.MethodGet, path: "/v1/node"}, nil, &n)
	return n, err
}

// Member is one node of the mesh.
type Member = apitype.Member

// Members lists the nodes of the mesh (GET /v1/mesh/members).
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out apitype.Items[Member]
	err := c.call(ctx, request{op: "client.Members", method: http.MethodGet, path: "/v1/mesh/members"}, nil, &out)
	return out.Items, err
}

// Health reports whether the node's process answers (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, request{op: "client.Health", method: http.MethodGet, path: "/healthz", noAuth: true}, nil, nil)
}

// Ready reports whether the node can serve requests now (GET /readyz); an
// Unavailable error says it cannot yet.
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, request{op: "client.Ready", method: http.MethodGet, path: "/readyz", noAuth: true}, nil, nil)
}

// GCResult is what a garbage collection of the block store did.
type GCResult = apitype.GCResult

// RepoGC collects the blocks that nothing references any more
// (POST /v1/repo/gc; admins only).
func (c *Client) RepoGC(ctx context.Context) (GCResult, error) {
	var out GCResult
	err := c.call(ctx, request{op: "client.RepoGC", method: http.MethodPost, path: "/v1/repo/gc"}, nil, &out)
	return out, err
}

// RepoStat describes the node's block store.
type RepoStat = apitype.RepoStat

// RepoStat returns the size of the node's block store
// (GET /v1/repo/stat; admins only).
func (c *Client) RepoStat(ctx context.Context) (RepoStat, error) {
	var out RepoStat
	err := c.call(ctx, request{op: "client.RepoStat", method: http.MethodGet, path: "/v1/repo/stat"}, nil, &out)
	return out, err
}

// VerifyResult is what a verify of the block store found.
type VerifyResult = apitype.VerifyResult

// RepoVerify reads and hashes every block of the node's store now and
// reports the pass and the quarantined blocks (POST /v1/repo/verify;
// admins only). It takes as long as reading the whole store.
func (c *Client) RepoVerify(ctx context.Context) (VerifyResult, error) {
	var out VerifyResult
	err := c.call(ctx, request{op: "client.RepoVerify", method: http.MethodPost, path: "/v1/repo/verify"}, nil, &out)
	return out, err
}

// ScrubPass is one pass of the node's scrubber.
type ScrubPass = apitype.ScrubPass
