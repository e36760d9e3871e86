package api

import (
	"net/http"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

func (s *Server) getMeshPolicy(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	p, err := s.n.MeshPolicy(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) putMeshPolicy(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if !caller.Admin {
		// Before the body is read: a non-admin learns nothing of it.
		return artmesh.E(artmesh.PermissionDenied, "only a mesh admin may change the mesh policy")
	}
	var req apitype.PolicyRequest
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
	if req.NodeAgentsInvite != nil {
		p.NodeAgentsInvite = *req.NodeAgentsInvite
	}
	if p, err = s.n.SetMeshPolicy(r.Context(), caller, p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) setReplication(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.Replication
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
	writeJSON(w, http.StatusOK, items(vps))
	return nil
}
