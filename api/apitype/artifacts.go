package apitype

import (
	"encoding/json"
	"time"

	"github.com/artmesh/artmesh"
)

// SnippetRequest is the body of POST /v1/snippets: a JSON value stored as
// an application/json artifact.
type SnippetRequest struct {
	Name string `json:"name"`
	// Content is the snippet itself, any JSON value, kept as its text.
	Content  json.RawMessage  `json:"content"`
	Metadata artmesh.Metadata `json:"metadata,omitempty"`
}

// ShareRequest is the body of POST /v1/artifacts/{id}/share and
// POST /v1/artifacts/{id}/unshare: the agents and groups to grant, or take
// back, the right to read.
type ShareRequest struct {
	Agents []artmesh.AgentID `json:"agents"`
	Groups []string          `json:"groups"`
}

// MetadataPatchRequest is the body of PATCH /v1/artifacts/{id}: the
// metadata to merge into the artifact's, in a new version with the same
// content. Each key replaces the artifact's value for that key (any JSON
// value); a key whose value is JSON null is removed.
type MetadataPatchRequest struct {
	Metadata artmesh.Metadata `json:"metadata"`
}

// SignedURLRequest is the body of POST /v1/artifacts/{id}/signed-url,
// which may also be left out.
type SignedURLRequest struct {
	// ExpiresIn is how long the URL works, in seconds; 0 means the node's
	// default (1 hour). At most 604800 (7 days).
	ExpiresIn int64 `json:"expires_in,omitempty"`
	// Version pins the URL to one version; 0 means the current one at
	// the time of each use.
	Version int `json:"version,omitempty"`
}

// SignedURL is the answer of POST /v1/artifacts/{id}/signed-url: a
// capability to read one artifact without an API key.
type SignedURL struct {
	URL       string    `json:"url"`        // .../v1/cap/<token>, usable on any node of the mesh
	Token     string    `json:"token"`      // the capability token itself
	TokenID   string    `json:"token_id"`   // the token's id, for DELETE /v1/tokens/{token_id}
	ExpiresAt time.Time `json:"expires_at"` // when the URL stops working
}

// SignedURLInfo is one item of GET /v1/artifacts/{id}/signed-urls: a live
// signed URL of the artifact, described without its token, which is shown
// only once, when it is issued.
type SignedURLInfo struct {
	TokenID    string             `json:"token_id"`    // for DELETE /v1/tokens/{token_id}
	ArtifactID artmesh.ArtifactID `json:"artifact_id"` //
	Version    int                `json:"version"`     // the version it serves; 0: the current one at each use
	Agent      artmesh.AgentID    `json:"agent"`       // the agent that issued it, whose right it carries
	ExpiresAt  time.Time          `json:"expires_at"`  // when it stops working
}
