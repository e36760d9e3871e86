package apitype

import (
	"time"

	"github.com/artmesh/artmesh"
)

// AgentRequest is the body of POST /v1/agents.
type AgentRequest struct {
	ID     artmesh.AgentID `json:"id"`
	Groups []string        `json:"groups"`
	Admin  bool            `json:"admin"`
}

// AgentKey is the answer of POST /v1/agents and POST /v1/agents/{id}/keys:
// the agent with a new API key, which the node shows only this once.
type AgentKey struct {
	artmesh.Agent
	APIKey string `json:"api_key"`
}

// GroupRequest is the body of PUT /v1/groups/{name}: the group's members.
type GroupRequest struct {
	Members []artmesh.AgentID `json:"members"`
}

// GCResult is the answer of POST /v1/repo/gc: what a garbage collection
// of the node's block store did.
type GCResult struct {
	BlocksRemoved  int64 `json:"blocks_removed"`
	BytesRemoved   int64 `json:"bytes_removed"`
	PacksRemoved   int   `json:"packs_removed"`    // pack files deleted
	DiskBytesFreed int64 `json:"disk_bytes_freed"` // bytes of disk given back
	DurationMS     int64 `json:"duration_ms"`      // how long it took, in milliseconds
}

// RepoStat is the answer of GET /v1/repo/stat: the size of the node's
// block store.
type RepoStat struct {
	Blocks    int64  `json:"blocks"`     // blocks in the store
	Bytes     int64  `json:"bytes"`      // bytes of block data
	Packs     int    `json:"packs"`      // pack files on disk
	PackBytes int64  `json:"pack_bytes"` // bytes of pack files on disk, garbage included
	Path      string `json:"path"`       // where the store is
	// QuarantinedBlocks is how many blocks failed their check and were
	// taken out of service (see POST /v1/repo/verify).
	QuarantinedBlocks int `json:"quarantined_blocks"`
	// ScrubLast is the last scrub pass that finished; ScrubCurrent the
	// one under way. Either may be absent.
	ScrubLast    *ScrubPass `json:"scrub_last,omitempty"`
	ScrubCurrent *ScrubPass `json:"scrub_current,omitempty"`
}

// ScrubPass is one pass of the scrubber, which reads every block of the
// store and hashes it against its CID.
type ScrubPass struct {
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"` // absent while it runs
	Blocks   int64      `json:"blocks"`             // blocks checked
	Bytes    int64      `json:"bytes"`              // bytes of block data checked
	Corrupt  int64      `json:"corrupt"`            // blocks that failed and were quarantined
}

// QuarantinedBlock is a block that failed its check.
type QuarantinedBlock struct {
	CID    string    `json:"cid"` // the raw-codec CIDv1 of its multihash
	Pack   uint32    `json:"pack"`
	Offset uint64    `json:"offset"`
	Length uint32    `json:"length"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// VerifyResult is the answer of POST /v1/repo/verify: a whole scrub pass
// run now, and the blocks in quarantine.
type VerifyResult struct {
	Pass ScrubPass `json:"pass"`
	// Quarantined lists up to 100 quarantined blocks, of this pass and
	// earlier ones; QuarantinedTotal counts them all.
	Quarantined      []QuarantinedBlock `json:"quarantined"`
	QuarantinedTotal int                `json:"quarantined_total"`
}
