package artmesh

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
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
	// SHA256 is the hex SHA-256 of the current version's content, when
	// it was written with a declared digest or through an upload URL.
	SHA256 string `json:"sha256,omitempty"`
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
	// SHA256 is the hex SHA-256 of the version's content, when it was
	// written with a declared digest (Content-Digest) or through an
	// upload URL; empty otherwise.
	SHA256 string `json:"sha256,omitempty"`
	Parent int    `json:"parent,omitempty"`
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
	Meta  []MetaMatch
	Limit int
	// Offset skips this many matches first. It costs what it skips: prefer
	// Cursor, which seeks.
	Offset int
	// Cursor continues a listing after the last item of an earlier page:
	// the NextCursor that page returned. Empty starts at the newest.
	Cursor string
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
	Items []T `json:"items"`
	// Total counts every match over all pages, but only where that is
	// cheap: the unfiltered listing of one's own artifacts. Elsewhere it is
	// nil (absent from the JSON), as counting would read every match.
	Total  *int `json:"total,omitempty"`
	Limit  int  `json:"limit"`
	Offset int  `json:"offset"`
	// NextCursor continues the listing after this page's last item (pass
	// it as Filter.Cursor); empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// cursorVersion starts every cursor, so that its form can change.
const cursorVersion = "1:"

// EncodeCursor returns the opaque cursor that continues a listing after
// the artifact id.
func EncodeCursor(id ArtifactID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + string(id)))
}

// DecodeCursor returns the artifact id a cursor continues after. A cursor
// that EncodeCursor did not make is Invalid.
func DecodeCursor(cursor string) (ArtifactID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err == nil {
		if id, ok := strings.CutPrefix(string(raw), cursorVersion); ok && ValidArtifactID(id) {
			return ArtifactID(id), nil
		}
	}
	return "", E(Invalid, fmt.Sprintf("cursor %q is not one a listing returned", cursor))
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
