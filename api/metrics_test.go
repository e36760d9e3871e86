package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/artmesh/artmesh/node"
	nrepo "github.com/artmesh/artmesh/node/repo"
)

func TestRedactPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/v1/cap/abc.def", "/v1/cap/REDACTED"},
		{"/v1/cap/abc/extra", "/v1/cap/REDACTED/extra"},
		{"/v1//cap/abc", "/v1//cap/REDACTED"},
		{"/x/cap/abc", "/x/cap/REDACTED"},
		{"/v1/cap/", "/v1/cap/"},
		{"/v1/artifacts/art_1/content", "/v1/artifacts/art_1/content"},
		{"/v1/capx/abc", "/v1/capx/abc"},
		{"/v1/recap/abc", "/v1/recap/abc"},
	} {
		if got := redactPath(tt.in); got != tt.want {
			t.Errorf("redactPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactQuery(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"name=a&limit=3", "name=a&limit=3"},
		{"token=s3cret", "token=REDACTED"},
		{"a=1&token=s3cret&b=2", "a=1&token=REDACTED&b=2"},
		{"TOKEN=s3cret", "TOKEN=REDACTED"},
		{"t%6Fken=s3cret", "t%6Fken=REDACTED"},
		{"api_key=am_x&access_token=y&key=z&signature=w", "api_key=REDACTED&access_token=REDACTED&key=REDACTED&signature=REDACTED"},
		{"token", "token=REDACTED"},
		{"%zz=s3cret", "REDACTED"},
		{"metadata.key=v", "metadata.key=v"},
	} {
		if got := redactQuery(tt.in); got != tt.want {
			t.Errorf("redactQuery(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newLoggedServer is a node whose API logs, as JSON, into the returned
// buffer at Info level, with opts.
func newLoggedServer(t *testing.T, opts ...Option) (*httptest.Server, string, *syncBuffer) {
	t.Helper()
	repo := t.TempDir()
	ctx := context.Background()
	if err := nrepo.Init(ctx, repo, nrepo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := node.Open(ctx, node.Config{Repo: repo, Logger: log, GCDelay: -1, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(n, log, opts...))
	n.SetAPIListenAddr(srv.Listener.Addr().String())
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	key, err := os.ReadFile(filepath.Join(repo, nrepo.APIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return srv, strings.TrimSpace(string(key)), buf
}

// accessLines returns the access log's lines in buf, decoded.
func accessLines(t *testing.T, buf *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "http" {
			out = append(out, m)
		}
	}
	return out
}

func TestAccessLogAtInfoRedacted(t *testing.T) {
	srv, key, buf := newLoggedServer(t, WithAccessLog())
	const capToken = "AAAAsecretcaptoken0123456789"
	const queryToken = "QQQQsecretquerytoken"
	body := []byte("hello access log")
	resp, data := send(t, srv, key, "POST", "/v1/artifacts?name=a.txt", bytes.NewReader(body))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	send(t, srv, "", "GET", "/v1/cap/"+capToken, nil)
	send(t, srv, "", "PUT", "/v1/uploads/upl_x/content?token="+queryToken, strings.NewReader("x"))
	send(t, srv, "", "GET", "/v1/artifacts?t%6Fken="+queryToken, nil)

	logs := buf.String()
	for _, secret := range []string{key, capToken, queryToken} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds a secret %q:\n%s", secret, logs)
		}
	}
	lines := accessLines(t, buf)
	if len(lines) != 4 {
		t.Fatalf("%d access lines at info, want 4:\n%s", len(lines), logs)
	}
	want := []struct {
		path, query, route string
		status             float64
	}{
		{"/v1/artifacts", "name=a.txt", "POST /v1/artifacts", 201},
		{"/v1/cap/REDACTED", "", "GET /v1/cap/{token}", 401},
		{"/v1/uploads/upl_x/content", "token=REDACTED", "PUT /v1/uploads/{id}/content", 401},
		{"/v1/artifacts", "t%6Fken=REDACTED", "GET /v1/artifacts", 401},
	}
	for i, w := range want {
		l := lines[i]
		if l["level"] != "INFO" || l["path"] != w.path || l["query"] != w.query || l["route"] != w.route || l["status"] != w.status {
			t.Errorf("line %d = %v, want level INFO, path %q, query %q, route %q, status %v", i, l, w.path, w.query, w.route, w.status)
		}
	}
	if lines[0]["bytes_in"] != float64(len(body)) || lines[0]["agent"] != "admin" {
		t.Errorf("the create's line %v: want bytes_in %d and agent admin", lines[0], len(body))
	}
}

func TestAccessLogDebugWithoutTheOption(t *testing.T) {
	srv, key, buf := newLoggedServer(t)
	send(t, srv, key, "GET", "/v1/artifacts", nil)
	if lines := accessLines(t, buf); len(lines) != 0 {
		t.Fatalf("access lines at info without WithAccessLog: %v", lines)
	}
}

// scrape fetches /metrics without a key and parses it with Prometheus's
// text parser.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, data := send(t, srv, "", "GET", "/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the metrics do not parse: %v\n%s", err, data)
	}
	return fams
}

// value returns the value of the series of fam whose labels include
// labels (name, value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, fam string, labels ...string) (float64, bool) {
	f, ok := fams[fam]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsLabelRoutesNotPaths(t *testing.T) {
	srv, key := newTestServer(t)
	body := bytes.Repeat([]byte("m"), 1000)
	resp, data := send(t, srv, key, "POST", "/v1/artifacts?name=m", bytes.NewReader(body))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var a struct{ ID string }
	json.Unmarshal(data, &a)
	send(t, srv, key, "GET", "/v1/artifacts/"+a.ID+"/content", nil)
	send(t, srv, "", "GET", "/v1/cap/secrettokenvalue", nil)
	send(t, srv, key, "GET", "/no/such/route/secretish", nil)

	fams := scrape(t, srv)
	for _, tt := range []struct {
		fam    string
		labels []string
		want   float64
	}{
		{"artmesh_http_requests_total", []string{"route", "POST /v1/artifacts", "code", "201"}, 1},
		{"artmesh_http_requests_total", []string{"route", "GET /v1/artifacts/{id}/content", "code", "200"}, 1},
		{"artmesh_http_requests_total", []string{"route", "GET /v1/cap/{token}", "code", "401"}, 1},
		{"artmesh_http_requests_total", []string{"route", "/", "code", "404"}, 1},
		{"artmesh_http_request_bytes_total", []string{"route", "POST /v1/artifacts"}, 1000},
		{"artmesh_http_response_bytes_total", []string{"route", "GET /v1/artifacts/{id}/content"}, 1000},
		{"artmesh_http_request_duration_seconds", []string{"route", "POST /v1/artifacts"}, 1},
		{"artmesh_tokens_refused_total", []string{"reason", "unauthenticated"}, 1},
		{"artmesh_catalog_leader", nil, 1},
		{"artmesh_catalog_has_leader", nil, 1},
		{"artmesh_catalog_last_contact_seconds", nil, 0},
		{"artmesh_catalog_entries_rejected_total", nil, 0},
		{"artmesh_uploads_in_progress", []string{"state", "open"}, 0},
		{"artmesh_replication_under_replicated_versions", nil, 0},
	} {
		got, ok := value(fams, tt.fam, tt.labels...)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.fam, tt.labels, got, ok, tt.want)
		}
	}
	for _, fam := range []string{"artmesh_catalog_term", "artmesh_catalog_commit_index", "artmesh_catalog_applied_index", "artmesh_blockstore_bytes", "artmesh_blockstore_blocks"} {
		if got, ok := value(fams, fam); !ok || got < 1 {
			t.Errorf("%s = %v (present %v), want at least 1", fam, got, ok)
		}
	}
	if got, ok := value(fams, "artmesh_catalog_apply_duration_seconds", "path", "leader", "result", "ok"); !ok || got < 1 {
		t.Errorf("catalog apply latency observed %v times, want at least 1 (the create)", got)
	}
	// No label anywhere carries a raw path or a token.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "secret") || strings.Contains(lp.GetValue(), a.ID) {
					t.Errorf("%s has the label %s=%q", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}
