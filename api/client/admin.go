package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/artmesh/artmesh"
)

// AgentKey is an agent with a new API key, as creating an agent or
// rotating its key returns it. The node shows the key only this once.
type AgentKey struct {
	artmesh.Agent
	APIKey string `json:"api_key"`
}

// agentRequest is the body of POST /v1/agents.
type agentRequest struct {
	ID     artmesh.AgentID `json:"id"`
	Groups []string        `json:"groups"`
	Admin  bool            `json:"admin"`
}

// CreateAgent adds an agent, a member of groups and an admin when admin is
// set, and returns it with its API key (POST /v1/agents; admins only).
func (c *Client) CreateAgent(ctx context.Context, id artmesh.AgentID, groups []string, admin bool) (AgentKey, error) {
	if groups == nil {
		groups = []string{}
	}
	var out AgentKey
	err := c.call(ctx, request{op: "client.CreateAgent", method: http.MethodPost, path: "/v1/agents"},
		agentRequest{ID: id, Groups: groups, Admin: admin}, &out)
	return out, err
}

// Agents lists the agents (GET /v1/agents; admins only).
func (c *Client) Agents(ctx context.Context) ([]artmesh.Agent, error) {
	var out items[artmesh.Agent]
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
	var out items[artmesh.Group]
	err := c.call(ctx, request{op: "client.Groups", method: http.MethodGet, path: "/v1/groups"}, nil, &out)
	return out.Items, err
}

// groupRequest is the body of PUT /v1/groups/{name}.
type groupRequest struct {
	Members []artmesh.AgentID `json:"members"`
}

// PutGroup creates the group name or sets its members
// (PUT /v1/groups/{name}; admins only).
func (c *Client) PutGroup(ctx context.Context, name string, members []artmesh.AgentID) (artmesh.Group, error) {
	if members == nil {
		members = []artmesh.AgentID{}
	}
	var g artmesh.Group
	err := c.call(ctx, request{op: "client.PutGroup", method: http.MethodPut, path: "/v1/groups/" + escape(name)},
		groupRequest{Members: members}, &g)
	return g, err
}

// DeleteGroup removes the group name (DELETE /v1/groups/{name}; admins
// only).
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	return c.call(ctx, request{op: "client.DeleteGroup", method: http.MethodDelete, path: "/v1/groups/" + escape(name)}, nil, nil)
}

// Pin is a node's promise to keep a full copy of one version.
type Pin struct {
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Version    int                `json:"version"`
	CID        string             `json:"cid"`
	State      string             `json:"state"` // queued, fetching, pinned or failed
	BytesDone  int64              `json:"bytes_done"`
	SizeBytes  int64              `json:"size_bytes"`
	Error      string             `json:"error,omitempty"`
}

// The states of a Pin.
const (
	PinQueued   = "queued"
	PinFetching = "fetching"
	PinPinned   = "pinned"
	PinFailed   = "failed"
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
	var out items[Pin]
	err := c.call(ctx, request{op: "client.Pins", method: http.MethodGet, path: "/v1/pins"}, nil, &out)
	return out.Items, err
}

// Unpin stops this node keeping a version of the artifact id, the current
// one when version is 0 (DELETE /v1/pins/{artifact_id}[?version=N]).
func (c *Client) Unpin(ctx context.Context, id artmesh.ArtifactID, version int) error {
	return c.call(ctx, request{op: "client.Unpin", method: http.MethodDelete, path: "/v1/pins/" + escape(string(id)), query: versionQuery(version)}, nil, nil)
}

// NodeInfo describes the node the client talks to.
type NodeInfo struct {
	PeerID    string    `json:"peer_id"`
	Addresses []string  `json:"addresses"`
	Version   string    `json:"version"`
	APIURL    string    `json:"api_url"`
	StartedAt time.Time `json:"started_at,omitzero"`
}

// Node returns what the node says of itself (GET /v1/node).
func (c *Client) Node(ctx context.Context) (NodeInfo, error) {
	var n NodeInfo
	err := c.call(ctx, request{op: "client.Node", method: http.MethodGet, path: "/v1/node"}, nil, &n)
	return n, err
}

// Member is one node of the mesh.
type Member struct {
	PeerID    string   `json:"peer_id"`
	Addresses []string `json:"addresses"`
	Role      string   `json:"role"` // voter or nonvoter
	Reachable bool     `json:"reachable"`
	Leader    bool     `json:"leader"`
	// BytesHeld is the content the member is a recorded holder of, each
	// version's content counted once.
	BytesHeld int64 `json:"bytes_held"`
	// UnderReplicated counts the live versions allocated to the member
	// that have fewer reachable holders than their factor.
	UnderReplicated int `json:"under_replicated"`
}

// Members lists the nodes of the mesh (GET /v1/mesh/members).
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out items[Member]
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
type GCResult struct {
	BlocksRemoved  int64 `json:"blocks_removed"`
	BytesRemoved   int64 `json:"bytes_removed"`
	PacksRemoved   int   `json:"packs_removed,omitempty"`
	DiskBytesFreed int64 `json:"disk_bytes_freed,omitempty"`
	DurationMS     int64 `json:"duration_ms"`
}

// RepoGC collects the blocks that nothing references any more
// (POST /v1/repo/gc; admins only).
func (c *Client) RepoGC(ctx context.Context) (GCResult, error) {
	var out GCResult
	err := c.call(ctx, request{op: "client.RepoGC", method: http.MethodPost, path: "/v1/repo/gc"}, nil, &out)
	return out, err
}

// RepoStat describes the node's block store.
type RepoStat struct {
	Blocks    int64  `json:"blocks"`     // blocks in the store
	Bytes     int64  `json:"bytes"`      // bytes of block data
	Packs     int    `json:"packs"`      // pack files on disk
	PackBytes int64  `json:"pack_bytes"` // bytes of pack files on disk, garbage included
	Path      string `json:"path"`       // where the store is
}

// RepoStat returns the size of the node's block store
// (GET /v1/repo/stat; admins only).
func (c *Client) RepoStat(ctx context.Context) (RepoStat, error) {
	var out RepoStat
	err := c.call(ctx, request{op: "client.RepoStat", method: http.MethodGet, path: "/v1/repo/stat"}, nil, &out)
	return out, err
}
