package api

import (
	"net/http"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/node/blockstore"
)

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.AgentRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	a, key, err := s.n.CreateAgent(r.Context(), caller, req.ID, req.Groups, req.Admin)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apitype.AgentKey{Agent: a, APIKey: key})
	return nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	as, err := s.n.Agents(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(as))
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
	writeJSON(w, http.StatusCreated, apitype.AgentKey{Agent: a, APIKey: key})
	return nil
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	gs, err := s.n.Groups(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(gs))
	return nil
}

func (s *Server) putGroup(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.GroupRequest
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

func (s *Server) nodeInfo(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	info := s.n.Info()
	info.Agent = caller.ID
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *Server) repoGC(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	st, err := s.n.GC(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apitype.GCResult{
		BlocksRemoved:  st.BlocksRemoved,
		BytesRemoved:   st.BytesRemoved,
		PacksRemoved:   st.PacksRemoved,
		DiskBytesFreed: st.DiskFreed,
		DurationMS:     st.Duration.Milliseconds(),
	})
	return nil
}

func (s *Server) repoStat(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	st, err := s.n.RepoStat(r.Context(), caller)
	if err != nil {
		return err
	}
	scrub, quarantined, err := s.n.ScrubState()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apitype.RepoStat{
		Blocks: st.Blocks, Bytes: st.Bytes, Packs: st.Packs, PackBytes: st.PackBytes, Path: st.Path,
		QuarantinedBlocks: quarantined,
		ScrubLast:         scrubPass(scrub.Last),
		ScrubCurrent:      scrubPass(scrub.Current),
	})
	return nil
}

// scrubPass is the API's form of a scrub pass (nil: none).
func scrubPass(p *blockstore.ScrubPass) *apitype.ScrubPass {
	if p == nil {
		return nil
	}
	out := &apitype.ScrubPass{Started: p.Started, Blocks: p.Blocks, Bytes: p.Bytes, Corrupt: p.Corrupt}
	if !p.Finished.IsZero() {
		f := p.Finished
		out.Finished = &f
	}
	return out
}

func (s *Server) repoVerify(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	res, err := s.n.Verify(r.Context(), caller)
	if err != nil {
		return err
	}
	out := apitype.VerifyResult{Pass: *scrubPass(&res.Pass), QuarantinedTotal: res.Total, Quarantined: []apitype.QuarantinedBlock{}}
	for _, q := range res.Quarantined {
		out.Quarantined = append(out.Quarantined, apitype.QuarantinedBlock(q))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
