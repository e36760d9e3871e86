package api

import (
	"net/http"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, _ artmesh.Agent) error {
	ms, err := s.n.Members(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(ms))
	return nil
}

func (s *Server) createInvite(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.InviteRequest
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	inv, err := s.n.CreateInvite(r.Context(), caller, req.ExpiresIn)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, inv)
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if err := s.n.RemoveMember(r.Context(), caller, r.PathValue("peer_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// streamBenchRequest is the body of POST /v1/mesh/stream-bench.
type streamBenchRequest struct {
	PeerID string `json:"peer_id"`
	Bytes  uint64 `json:"bytes"`
}

func (s *Server) streamBench(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req streamBenchRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	res, err := s.n.MeasureStream(r.Context(), caller, req.PeerID, req.Bytes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) putPin(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	version, err := versionParam(r)
	if err != nil {
		return err
	}
	p, err := s.n.PinVersion(r.Context(), caller, artifactID(r), version)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, p)
	return nil
}

func (s *Server) listPins(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	ps, err := s.n.Pins(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(ps))
	return nil
}

func (s *Server) deletePin(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	version, err := versionParam(r)
	if err != nil {
		return err
	}
	if err := s.n.Unpin(r.Context(), caller, artifactID(r), version); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
