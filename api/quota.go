package api

import (
	"net/http"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

func (s *Server) getQuota(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	st, err := s.n.Quota(r.Context(), caller, artmesh.AgentID(r.PathValue("id")))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) putQuota(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if !caller.Admin {
		// Before the body is read: a non-admin learns nothing of it.
		return artmesh.E(artmesh.PermissionDenied, "only an admin agent may change quotas")
	}
	var req apitype.QuotaRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	id := artmesh.AgentID(r.PathValue("id"))
	cur, err := s.n.Quota(r.Context(), caller, id)
	if err != nil {
		return err
	}
	st, err := s.n.SetQuota(r.Context(), caller, id, req.Apply(cur.Override))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) getMeshQuota(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	q, err := s.n.QuotaDefaults(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (s *Server) putMeshQuota(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if !caller.Admin {
		return artmesh.E(artmesh.PermissionDenied, "only an admin agent may change the mesh quota defaults")
	}
	var req apitype.QuotaRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	cur, err := s.n.QuotaDefaults(r.Context(), caller)
	if err != nil {
		return err
	}
	q, err := s.n.SetQuotaDefaults(r.Context(), caller, req.Apply(cur))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}
