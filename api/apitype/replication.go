package apitype

// Policy is the mesh's replication policy: the answer of GET and PUT
// /v1/mesh/policy.
type Policy struct {
	// ReplicationFactor is how many members keep every version, unless an
	// artifact sets its own.
	ReplicationFactor int `json:"replication_factor"`
	// WriteReplicas is how many members must hold a write durably before
	// it is acknowledged, unless the write asks for a number itself.
	WriteReplicas int `json:"write_replicas"`
	// NodeAgentsInvite lets the agent each node got at join create
	// invites; off by default, when only mesh admins may.
	NodeAgentsInvite bool `json:"node_agents_invite"`
}

// PolicyRequest is the body of PUT /v1/mesh/policy: a number left out (or
// null) keeps its current value.
type PolicyRequest struct {
	ReplicationFactor *int  `json:"replication_factor,omitempty"`
	WriteReplicas     *int  `json:"write_replicas,omitempty"`
	NodeAgentsInvite  *bool `json:"node_agents_invite,omitempty"`
}

// Replication is the body and the answer of
// PUT /v1/artifacts/{id}/replication: how many members keep every version
// of the artifact, 0 to follow the mesh policy again. Factor is required,
// hence a pointer: the server refuses a body without it.
type Replication struct {
	Factor *int `json:"factor"`
}

// The states of a VersionPlacement.
const (
	PlacementOK              = "ok"               // at least Factor reachable holders
	PlacementRepairing       = "repairing"        // too few, and an allocated member is fetching it
	PlacementUnderReplicated = "under_replicated" // too few, and nobody is on the way
)

// VersionPlacement is where one version of an artifact is held, as
// GET /v1/artifacts/{id}/placement lists it.
type VersionPlacement struct {
	Version   int      `json:"version"`
	CID       string   `json:"cid"`
	Factor    int      `json:"factor"`    // the effective factor: at most the number of members
	Holders   []string `json:"holders"`   // peer ids of members with a verified, durable copy
	Allocated []string `json:"allocated"` // peer ids of the members the leader chose to hold it
	Fetching  []string `json:"fetching"`  // peer ids of members fetching it now, which serve what they have
	State     string   `json:"state"`     // PlacementOK, PlacementRepairing or PlacementUnderReplicated
}
