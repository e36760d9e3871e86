package artmesh

import (
	"bytes"
	"encoding/json"
	"time"
)

// ArtifactID names an artifact: "art_" followed by a 26-character ULID, so
// that ids sort by creation time.
type ArtifactID string

// AgentID names an agent (an API client) of the mesh.
type AgentID string

// Metadata is an artifact's user metadata: a JSON object whose values are
// kept as their exact, compact JSON text so that numbers and nesting round
// trip unchanged.
type Metadata map[string]json.RawMessage

// Artifact is the catalog's view of one artifact as of its current (highest
// remaining) version. Version, CID, SizeBytes and ContentType are those of
// that version; Metadata is the artifact's merged metadata.
type Artifact struct {
	ID          ArtifactID `json:"id"`
	Name        string     `json:"name"`
	Owner       AgentID    `json:"owner"`
	ContentType string     `json:"content_type"`
	SizeBytes   int64      `json:"size_bytes"`
	CID         string     `json:"cid"`
	Version     int        `json:"version"`
	Metadata    Metadata   `json:"metadata"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Version is one entry of an artifact's version chain. Version numbers
// start at 1, grow by one with every update and are never reused.
type Version struct {
	Version     int       `json:"version"`
	CID         string    `json:"cid"`
	SizeBytes   int64     `json:"size_bytes"`
	ContentType string    `json:"content_type"`
	Metadata    Metadata  `json:"metadata"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   AgentID   `json:"created_by"`
	Parent      int       `json:"parent,omitempty"`
}

// Agent is an identity that calls the API. Only hashes of its API keys are
// ever stored.
type Agent struct {
	ID     AgentID  `json:"id"`
	Groups []string `json:"groups"`
	Admin  bool     `json:"admin"`
	// Node is the peer id of the node this agent manages, for the agent a
	// node gets when it joins a mesh: it may manage that node (pins,
	// collection, verify, statistics) and create ordinary agents and
	// groups, but holds no mesh-wide admin power (invites, members, the
	// mesh policy, admin agents, other agents' keys). Empty for every
	// other agent.
	Node      string    `json:"node,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ManagesNode reports whether a may manage the node whose peer id is
// peer: a mesh admin manages every node, a node's own agent only its node.
func (a Agent) ManagesNode(peer string) bool {
	return a.Admin || (a.Node != "" && a.Node == peer)
}

// ManagesAgents reports whether a may create ordinary (non-admin) agents
// and groups: mesh admins and node agents may.
func (a Agent) ManagesAgents() bool { return a.Admin || a.Node != "" }

// Group is a named set of agents that artifacts can be shared with.
type Group struct {
	Name    string    `json:"name"`
	Members []AgentID `json:"members"`
}

// Access lists who may read an artifact besides its owner.
type Access struct {
	Owner  AgentID   `json:"owner"`
	Agents []AgentID `json:"agents"`
	Groups []string  `json:"groups"`
}

// Filter selects artifacts in a listing. Empty fields select everything.
type Filter struct {
	ContentType string
	Name        string
	// Meta holds key=value pairs that must all match: a string value
	// equal to the text, or a non-string value whose compact JSON text is
	// the text.
	Meta   []MetaMatch
	Limit  int
	Offset int
}

// MetaMatch is one metadata condition of a Filter.
type MetaMatch struct {
	Key   string
	Value string
}

// Matches reports whether m satisfies the condition.
func (mm MetaMatch) Matches(m Metadata) bool {
	raw, ok := m[mm.Key]
	if !ok {
		return false
	}
	return MetaText(raw) == mm.Value
}

// MetaText returns the text a metadata filter compares a value with: the
// string itself for a JSON string, else the value's compact JSON text.
func MetaText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// Page is one page of a listing.
type Page[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// Listing limits, as API.md gives them.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
	// MaxMetadataBytes is the largest metadata object accepted, as JSON text.
	MaxMetadataBytes = 64 << 10
	// MaxMetadataDepth is how deeply metadata may nest objects and arrays,
	// the metadata object itself being the first level: deeper documents
	// break common JSON parsers (Python's, jq's) of whoever lists them.
	MaxMetadataDepth = 32
	// MaxMetaFilters is how many metadata.KEY=VALUE conditions one listing
	// may have.
	MaxMetaFilters = 64
)
