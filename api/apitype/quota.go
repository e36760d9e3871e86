package apitype

import "github.com/artmesh/artmesh"

// QuotaRequest is the body of PUT /v1/agents/{id}/quota and PUT
// /v1/mesh/quota: a limit left out (or null) keeps its current value, 0
// follows the mesh default (for the defaults: no limit), -1 is unlimited.
type QuotaRequest struct {
	Bytes   *int64 `json:"bytes,omitempty"`
	Staged  *int64 `json:"staged,omitempty"`
	Uploads *int64 `json:"uploads,omitempty"`
	Streams *int64 `json:"streams,omitempty"`
}

// Apply returns q with the limits the request gives.
func (r QuotaRequest) Apply(q artmesh.Quota) artmesh.Quota {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&q.Bytes, r.Bytes)
	set(&q.Staged, r.Staged)
	set(&q.Uploads, r.Uploads)
	set(&q.Streams, r.Streams)
	return q
}

// QuotaStatus is the answer of GET and PUT /v1/agents/{id}/quota: the
// agent's usage (its streams on the node that answered) and limits.
type QuotaStatus = artmesh.QuotaStatus

// Quota is the answer of GET and PUT /v1/mesh/quota: the mesh defaults
// for agents that are not admins (a limit left out: none).
type Quota = artmesh.Quota
