package apitype

import (
	"time"

	"github.com/artmesh/artmesh"
)

// Event is the data of one event of GET /v1/events, a Server-Sent Events
// stream: each event's SSE id is ID, its SSE event name is Type.
type Event struct {
	// ID is the catalog index of the change, as text: send it back as
	// Last-Event-ID to go on after it.
	ID   string `json:"id"`
	Type string `json:"type"` // artifact.created, artifact.updated, artifact.deleted, version.deleted, artifact.shared, artifact.unshared
	// ArtifactID, Name and Owner are the artifact's.
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Name       string             `json:"name"`
	Owner      artmesh.AgentID    `json:"owner"`
	// Version is the version made (created, updated) or deleted
	// (version.deleted); for the other types, the current version then.
	Version int             `json:"version"`
	Actor   artmesh.AgentID `json:"actor"` // the agent that made the change
	At      time.Time       `json:"at"`
	// Agents and Groups are the grants a share added or an unshare took
	// away, shown to the owner only.
	Agents []artmesh.AgentID `json:"agents,omitempty"`
	Groups []string          `json:"groups,omitempty"`
}

// EventReset is the data of a "reset" event: the feed could not go on
// exactly after the index the reader gave (the catalog no longer holds
// events that far back, or this node has not reached that index), so the
// reader may have missed changes and should list what it cares about
// again. The feed goes on from the reset event's id.
type EventReset struct {
	ID      string `json:"id"`
	After   string `json:"after"` // the Last-Event-ID the reader gave
	Message string `json:"message"`
}
