package api

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/artmesh/artmesh"
)

// readiness is what GET /readyz last answered, so that a change is logged
// once: probes poll it every second or so, and a node catching up with a
// large catalog stays not ready for minutes.
type readiness struct {
	state atomic.Int32 // readyUnknown, readyYes or readyNo
}

const (
	readyUnknown int32 = iota
	readyYes
	readyNo
)

// quiet is the logger writeError gets for a not-ready answer of /readyz:
// the answer is expected while the node catches up, and noteReadiness has
// logged the change.
var quiet = slog.New(slog.DiscardHandler)

// readyz answers GET /readyz: 200 when the node can serve; 503 while its
// catalog has no leader or has not caught up; 409 for good once it was
// removed from its mesh. No key is needed.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	err := s.n.Ready(r.Context())
	if r.Context().Err() == nil {
		// A probe that went away did not learn anything about the node.
		s.noteReadiness(err)
	}
	if err != nil {
		log := quiet
		if statusOf(artmesh.KindOf(err)) == http.StatusInternalServerError {
			log = s.log
		}
		writeError(w, r, log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// noteReadiness logs, at Info, when the node becomes ready or not ready,
// and nothing while the answer stays the same.
func (s *Server) noteReadiness(err error) {
	state := readyYes
	if err != nil {
		state = readyNo
	}
	if s.ready.state.Swap(state) == state {
		return
	}
	if err != nil {
		s.log.Info("node not ready", "reason", artmesh.Message(err))
		return
	}
	s.log.Info("node ready: its catalog has a leader and has caught up")
}
