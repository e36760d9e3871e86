package api

import (
	"net/http"

	"github.com/artmesh/artmesh"
)

func (s *Server) getMeshPolicy(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	p, err := s.n.MeshPolicy(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// policyRequest is the body of PUT /v1/mesh/policy: a field left out (or
// null) keeps its current value.
type policyRequest struct {
	ReplicationFactor *int `json:"replication_factor"`
	WriteReplicas     *int `json:"write_replicas"`
}

func (s *Server) putMeshPolicy(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if !caller.Admin {
		// Before the body is read: a non-admin learns nothing of it.
		return artmesh.E(artmesh.PermissionDenied, "only an admin agent may change the mesh policy")
	}
	var req policyRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	p, err := s.n.MeshPolicy(r.Context(), caller)
	if err != nil {
		return err
	}
	if req.ReplicationFactor != nil {
		p.ReplicationFactor = *req.ReplicationFactor
	}
	if req.WriteReplicas != nil {
		p.WriteReplicas = *req.WriteReplicas
	}
	if p, err = s.n.SetMeshPolicy(r.Context(), caller, p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// replicationBody is the body and the answer of
// PUT /v1/artifacts/{id}/replication.
type replicationBody struct {
	Factor *int `json:"factor"`
}

func (s *Server) setReplication(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req replicationBody
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	if req.Factor == nil {
		return artmesh.E(artmesh.Invalid, `the body needs a factor: {"factor": N}, or {"factor": 0} to follow the mesh policy`)
	}
	if err := s.n.SetReplication(r.Context(), caller, artifactID(r), *req.Factor); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (s *Server) getPlacement(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	vps, err := s.n.Placement(r.Context(), caller, artifactID(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": vps})
	return nil
}
