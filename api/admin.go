package api

import (
	"net/http"

	"github.com/artmesh/artmesh"
)

// agentRequest is the body of POST /v1/agents.
type agentRequest struct {
	ID     artmesh.AgentID `json:"id"`
	Groups []string        `json:"groups"`
	Admin  bool            `json:"admin"`
}

// agentWithKey is an agent as returned with its new API key.
type agentWithKey struct {
	artmesh.Agent
	APIKey string `json:"api_key"`
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req agentRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	a, key, err := s.n.CreateAgent(r.Context(), caller, req.ID, req.Groups, req.Admin)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, agentWithKey{Agent: a, APIKey: key})
	return nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	as, err := s.n.Agents(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": as})
	return nil
}

func (s *Server) deleteAgent(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if err := s.n.DeleteAgent(r.Context(), caller, artmesh.AgentID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	a, key, err := s.n.RotateKey(r.Context(), caller, artmesh.AgentID(r.PathValue("id")))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, agentWithKey{Agent: a, APIKey: key})
	return nil
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	gs, err := s.n.Groups(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": gs})
	return nil
}

// groupRequest is the body of PUT /v1/groups/{name}.
type groupRequest struct {
	Members []artmesh.AgentID `json:"members"`
}

func (s *Server) putGroup(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req groupRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	g, err := s.n.PutGroup(r.Context(), caller, r.PathValue("name"), req.Members)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if err := s.n.DeleteGroup(r.Context(), caller, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) nodeInfo(w http.ResponseWriter, r *http.Request, _ artmesh.Agent) error {
	writeJSON(w, http.StatusOK, s.n.Info())
	return nil
}

func (s *Server) repoGC(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	st, err := s.n.GC(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"blocks_removed":   st.BlocksRemoved,
		"bytes_removed":    st.BytesRemoved,
		"packs_removed":    st.PacksRemoved,
		"disk_bytes_freed": st.DiskFreed,
		"duration_ms":      st.Duration.Milliseconds(),
	})
	return nil
}

func (s *Server) repoStat(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	st, err := s.n.RepoStat(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
