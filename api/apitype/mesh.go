package apitype

import (
	"time"

	"github.com/artmesh/artmesh"
)

// NodeInfo is the answer of GET /v1/node: what the node says of itself.
type NodeInfo struct {
	PeerID    string    `json:"peer_id"`
	Addresses []string  `json:"addresses"` // mesh addresses, each ending in /p2p/<peer id>
	Version   string    `json:"version"`   // the node's software version
	APIURL    string    `json:"api_url"`
	StartedAt time.Time `json:"started_at"`
	// Agent is the agent whose key asked.
	Agent artmesh.AgentID `json:"agent,omitempty"`
}

// Member is one node of the mesh, as GET /v1/mesh/members lists it.
type Member struct {
	PeerID    string   `json:"peer_id"`
	Addresses []string `json:"addresses"`
	APIURL    string   `json:"api_url"`
	Role      string   `json:"role"`      // voter or nonvoter
	Reachable bool     `json:"reachable"` // the answering node reaches it now
	Leader    bool     `json:"leader"`
	// BytesHeld is the content the member is a recorded holder of, each
	// version's content counted once.
	BytesHeld int64 `json:"bytes_held"`
	// UnderReplicated counts the live versions in the member's
	// allocation (its holders' while none is recorded) with fewer copies
	// (allocated members that hold them) than their factor, as the
	// catalog records it: an unreachable holder counts once the leader
	// has replaced it.
	UnderReplicated int `json:"under_replicated"`
}

// InviteRequest is the body of POST /v1/mesh/invites, which may also be
// left out.
type InviteRequest struct {
	// ExpiresIn is how long the ticket works, in seconds; 0 means the
	// node's default (1 hour).
	ExpiresIn int64 `json:"expires_in,omitempty"`
}

// Invite is the answer of POST /v1/mesh/invites: a one-time ticket that
// lets a new node join the mesh (artmesh init --join TICKET).
type Invite struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
}

// The states of a Pin.
const (
	PinQueued   = "queued"   // waiting for its fetch to start
	PinFetching = "fetching" // its blocks are on the way
	PinPinned   = "pinned"   // all of it is here, verified and durable
	PinFailed   = "failed"   // the fetch gave up; Pin.Error says why
)

// Pin is a node's promise to keep a full copy of one version, as
// PUT /v1/pins/{id} answers it and GET /v1/pins lists it.
type Pin struct {
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Version    int                `json:"version"`
	CID        string             `json:"cid"`
	State      string             `json:"state"`      // PinQueued, PinFetching, PinPinned or PinFailed
	BytesDone  int64              `json:"bytes_done"` // bytes of the version fetched so far
	SizeBytes  int64              `json:"size_bytes"`
	Error      string             `json:"error,omitempty"`
}
