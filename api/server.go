// Package api serves a node's HTTP API, the contract of API.md: request
// parsing and validation, the JSON shapes, the mapping of error kinds to
// statuses, and streaming of content in both directions. Every route is a
// call on package node; nothing here touches Raft or the block store.
package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/ui"
	"github.com/artmesh/artmesh/node"
)

// Limits of request bodies that are not content.
const (
	maxJSONBody    = 1 << 20
	maxSnippetBody = node.MaxSnippetBytes + 1<<20
	// streamTimeout is how long a content stream may stall, in either
	// direction, before the connection is dropped. Each successful read or
	// write moves the deadline on, so large transfers are not cut short.
	streamTimeout = 60 * time.Second
)

// Server is the HTTP API of one node.
type Server struct {
	n         *node.Node
	log       *slog.Logger
	mux       *http.ServeMux
	accessLog slog.Level // the level of the access line of each request
	// streams ends when the server shuts down: long-lived answers (the
	// event stream) end with it instead of holding the shutdown up.
	streams     context.Context
	stopStreams context.CancelFunc
	ready       readiness // what /readyz last answered (readyz.go)
}

// Option changes how New builds a Server.
type Option func(*Server)

// WithAccessLog logs one line per request at Info level (`artmesh daemon
// --access-log`) instead of Debug. The line has the method, the path and
// query with capability tokens redacted, the route pattern, the status,
// the bytes read and written, the calling agent and the duration; never a
// header, so API keys are never logged.
func WithAccessLog() Option {
	return func(s *Server) { s.accessLog = slog.LevelInfo }
}

// New returns the API of n.
func New(n *node.Node, log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{n: n, log: log, mux: http.NewServeMux(), accessLog: slog.LevelDebug}
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	s.routes()
	return s
}

// handlerFunc is a route that knows its caller and returns its error, which
// the server sends in the API's error shape.
type handlerFunc func(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error

// routes is the route table: every route of the API, in one place.
func (s *Server) routes() {
	for _, rt := range []struct {
		pattern string
		h       handlerFunc
		replay  replay // for a write: how a request whose key the catalog holds is answered
	}{
		{"POST /v1/artifacts", s.createArtifact, result(http.StatusCreated)},
		{"GET /v1/artifacts", s.listArtifacts, replay{}},
		{"POST /v1/snippets", s.createSnippet, result(http.StatusCreated)},
		{"GET /v1/artifacts/{id}", s.getArtifact, replay{}},
		{"GET /v1/artifacts/{id}/content", s.getContent, replay{}},
		{"PUT /v1/artifacts/{id}/content", s.updateContent, result(http.StatusCreated)},
		{"PATCH /v1/artifacts/{id}", s.updateMetadata, result(http.StatusCreated)},
		{"GET /v1/artifacts/{id}/versions", s.listVersions, replay{}},
		{"DELETE /v1/artifacts/{id}", s.deleteArtifact, result(http.StatusNoContent)},
		{"DELETE /v1/artifacts/{id}/versions/{n}", s.deleteVersion, result(http.StatusNoContent)},
		{"GET /v1/shared", s.listShared, replay{}},
		{"GET /v1/events", s.events, replay{}},
		{"POST /v1/artifacts/{id}/share", s.share, result(http.StatusOK)},
		{"POST /v1/artifacts/{id}/unshare", s.unshare, result(http.StatusOK)},
		{"GET /v1/artifacts/{id}/access", s.access, replay{}},
		{"PUT /v1/artifacts/{id}/replication", s.setReplication, rerun()},
		{"GET /v1/artifacts/{id}/placement", s.getPlacement, replay{}},
		{"POST /v1/agents", s.createAgent, secret("created the agent")},
		{"GET /v1/agents", s.listAgents, replay{}},
		{"DELETE /v1/agents/{id}", s.deleteAgent, result(http.StatusNoContent)},
		{"POST /v1/agents/{id}/keys", s.rotateKey, secret("gave the agent a new API key")},
		{"GET /v1/agents/{id}/quota", s.getQuota, replay{}},
		{"PUT /v1/agents/{id}/quota", s.putQuota, rerun()},
		{"GET /v1/groups", s.listGroups, replay{}},
		{"PUT /v1/groups/{name}", s.putGroup, result(http.StatusOK)},
		{"DELETE /v1/groups/{name}", s.deleteGroup, result(http.StatusNoContent)},
		{"POST /v1/artifacts/{id}/signed-url", s.createSignedURL, secret("issued a signed URL")},
		{"GET /v1/artifacts/{id}/signed-urls", s.listSignedURLs, replay{}},
		{"DELETE /v1/tokens/{token_id}", s.revokeToken, result(http.StatusNoContent)},
		{"POST /v1/uploads", s.createUpload, rerun()},
		{"GET /v1/uploads", s.listUploads, replay{}},
		{"GET /v1/uploads/{id}", s.getUpload, replay{}},
		{"DELETE /v1/uploads/{id}", s.deleteUpload, result(http.StatusNoContent)},
		{"POST /v1/uploads/{id}/confirm", s.confirmUpload, result(http.StatusCreated)},
		{"GET /v1/node", s.nodeInfo, replay{}},
		{"GET /v1/mesh/members", s.listMembers, replay{}},
		{"POST /v1/mesh/invites", s.createInvite, secret("made an invite")},
		{"DELETE /v1/mesh/members/{peer_id}", s.removeMember, rerun()},
		{"POST /v1/mesh/stream-bench", s.streamBench, rerun()},
		{"GET /v1/mesh/policy", s.getMeshPolicy, replay{}},
		{"PUT /v1/mesh/policy", s.putMeshPolicy, rerun()},
		{"GET /v1/mesh/quota", s.getMeshQuota, replay{}},
		{"PUT /v1/mesh/quota", s.putMeshQuota, rerun()},
		{"PUT /v1/pins/{id}", s.putPin, rerun()},
		{"GET /v1/pins", s.listPins, replay{}},
		{"DELETE /v1/pins/{id}", s.deletePin, rerun()},
		{"POST /v1/repo/gc", s.repoGC, rerun()},
		{"GET /v1/repo/stat", s.repoStat, replay{}},
		{"POST /v1/repo/verify", s.repoVerify, rerun()},
	} {
		s.mux.Handle(rt.pattern, s.authenticated(rt.h, rt.replay))
	}
	// Routes that a capability token authorises, with no API key.
	s.mux.HandleFunc("GET /v1/cap/{token}", s.getCap)
	s.mux.HandleFunc("PUT /v1/uploads/{id}/content", s.putUpload)
	s.mux.HandleFunc("HEAD /v1/uploads/{id}/content", s.headUpload)
	s.mux.HandleFunc("GET /v1/openapi.json", s.openAPI)
	// Prometheus metrics, with no key, like /healthz: they hold counts and
	// route patterns, never ids, names or tokens.
	s.mux.Handle("GET /metrics", s.n.Metrics().Handler())
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, artmesh.E(artmesh.NotFound, "no such route: see the API reference"))
	})
	// The web view: static files, no key; the page sends the key itself.
	s.mux.Handle("GET /ui/", ui.New(notFound))
	s.mux.HandleFunc("GET /ui", ui.Redirect)
	// The root: browsers go to the web view, API clients get the 404.
	s.mux.Handle("GET /{$}", ui.Root(notFound))
	s.mux.Handle("/", notFound)
}

// authenticated wraps a route with API key authentication.
func (s *Server) authenticated(h handlerFunc, rp replay) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := bearer(r)
		if !ok {
			writeError(w, r, s.log, artmesh.E(artmesh.Unauthenticated, "missing API key: send Authorization: Bearer <key>"))
			return
		}
		caller, err := s.n.Authenticate(r.Context(), key)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if lw, ok := w.(*logWriter); ok {
			lw.agent = caller.ID
		}
		// The writes made for the caller carry its key to the catalog's
		// leader, which checks the caller's rights again.
		r = r.WithContext(node.WithCredential(r.Context(), key))
		if r.Method == http.MethodGet && r.URL.Query().Get("consistent") == "true" {
			if err := s.n.Consistent(r.Context()); err != nil {
				writeError(w, r, s.log, err)
				return
			}
		}
		if rp.isWrite() && r.Header.Get(IdempotencyKeyHeader) != "" {
			err = s.keyed(w, r, caller, rp, h)
		} else {
			err = h(w, r, caller)
		}
		if err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimSpace(key)
	return key, key != ""
}

// ServeHTTP serves the API, with access logging, once checkRequest lets
// the request through.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w, status: http.StatusOK}
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	if err := s.checkRequest(r); err != nil {
		writeError(lw, r, s.log, err)
	} else {
		// The mux sets r.Pattern to the route it chose.
		s.mux.ServeHTTP(lw, r)
	}
	d := time.Since(start)
	var in int64
	if body != nil {
		in = body.n.Load()
	}
	s.n.Metrics().ObserveHTTP(r.Pattern, lw.status, d, in, lw.bytes.Load())
	s.log.Log(r.Context(), s.accessLog, "http", accessAttrs(r, lw, in, d)...)
}

// accessAttrs are the attributes of a request's access line. Nothing in
// them comes from a header: API keys travel in Authorization.
func accessAttrs(r *http.Request, lw *logWriter, in int64, d time.Duration) []any {
	return []any{"method", r.Method, "path", redactPath(r.URL.Path), "query", redactQuery(r.URL.RawQuery),
		"route", r.Pattern, "status", lw.status, "bytes_in", in, "bytes", lw.bytes.Load(), "agent", lw.agent, "duration", d}
}

// redacted replaces a secret in the access log.
const redacted = "REDACTED"

// redactPath hides capability tokens carried in paths: the segment after
// any "cap" segment, so that an unclean path the mux redirects
// (/v1//cap/TOKEN) is hidden too.
func redactPath(p string) string {
	if !strings.Contains(p, "cap/") {
		return p
	}
	segs := strings.Split(p, "/")
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] == "cap" && segs[i+1] != "" {
			segs[i+1] = redacted
		}
	}
	return strings.Join(segs, "/")
}

// secretParam reports whether the access log hides the value of a query
// parameter: the upload URL's token, and names a client might put a key
// under.
func secretParam(name string) bool {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "token", "access_token", "api_key", "apikey", "key", "signature", "sig", "authorization":
		return true
	}
	return false
}

// redactQuery hides tokens carried in query strings. Each parameter's
// name is unescaped as Go's parser would (t%6Fken is token) and compared
// without case; an unparsable one is hidden whole.
func redactQuery(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		un, err := url.QueryUnescape(name)
		if err != nil {
			parts[i] = redacted
			continue
		}
		if secretParam(un) {
			parts[i] = name + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// logWriter records what a response was, for the access log.
type logWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	bytes  atomic.Int64
	agent  artmesh.AgentID
}

func (l *logWriter) WriteHeader(code int) {
	if !l.wrote {
		l.status, l.wrote = code, true
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.wrote = true
	n, err := l.ResponseWriter.Write(p)
	l.bytes.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (l *logWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// HTTPServer returns an http.Server for the API with timeouts set: slow
// headers, idle connections and stalled bodies are cut off, while streams
// that make progress run as long as they need.
func (s *Server) HTTPServer(addr string) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       streamTimeout,
		WriteTimeout:      streamTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv.RegisterOnShutdown(s.stopStreams)
	return srv
}

// Serve serves the API on l until ctx ends, then shuts down gracefully,
// giving requests in flight up to grace to finish.
func (s *Server) Serve(ctx context.Context, l net.Listener, grace time.Duration) error {
	srv := s.HTTPServer(l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	<-errc
	return err
}
