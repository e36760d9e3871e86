package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics fetches GET /metrics with no key and parses it with
// Prometheus's text parser.
func scrapeMetrics(t *testing.T, d *daemon) promScrape {
	t.Helper()
	resp := d.do(t, "", "GET", "/metrics", nil)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, data)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("GET /metrics does not parse as Prometheus text: %v\n%s", err, data)
	}
	return promScrape(fams)
}

// promScrape is one parsed scrape.
type promScrape map[string]*dto.MetricFamily

// get returns the value of the series of family fam that has every label
// in labels (name, value pairs): a counter's or gauge's value, a
// histogram's count. A series that is not there is 0.
func (s promScrape) get(fam string, labels ...string) float64 {
	f, ok := s[fam]
	if !ok {
		return 0
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
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// TestMetricsMoveWithWork scrapes /metrics before and after a create, a
// download (by key, then by signed URL) and a delete with a collection,
// and checks that exactly the counters of that work moved; the access
// log is JSON at info with secrets redacted.
func TestMetricsMoveWithWork(t *testing.T) {
	d := startDaemonArgs(t, t.TempDir(), "127.0.0.1:0", "--log-level", "info", "--log-format", "json", "--access-log")
	const size = 3 << 20 // several blocks
	const createRoute = "POST /v1/artifacts"
	const contentRoute = "GET /v1/artifacts/{id}/content"

	s0 := scrapeMetrics(t, d)
	if s0.get("artmesh_catalog_leader") != 1 || s0.get("artmesh_catalog_has_leader") != 1 || s0.get("artmesh_catalog_term") < 1 {
		t.Fatalf("a single node that leads: leader %v, has_leader %v, term %v",
			s0.get("artmesh_catalog_leader"), s0.get("artmesh_catalog_has_leader"), s0.get("artmesh_catalog_term"))
	}

	var a artifact
	d.call(t, "POST", "/v1/artifacts?name=metrics.bin", &patterned{n: size, seed: 10}, 201, &a, "Content-Type", "application/octet-stream")
	s1 := scrapeMetrics(t, d)
	if got := s1.get("artmesh_http_requests_total", "route", createRoute, "code", "201") - s0.get("artmesh_http_requests_total", "route", createRoute, "code", "201"); got != 1 {
		t.Errorf("creates with 201 counted %v, want 1", got)
	}
	if got := s1.get("artmesh_http_request_bytes_total", "route", createRoute) - s0.get("artmesh_http_request_bytes_total", "route", createRoute); got < size {
		t.Errorf("bytes in on the create route moved %v, want at least %d", got, size)
	}
	if got := s1.get("artmesh_http_request_duration_seconds", "route", createRoute) - s0.get("artmesh_http_request_duration_seconds", "route", createRoute); got != 1 {
		t.Errorf("create latencies observed %v, want 1", got)
	}
	if got := s1.get("artmesh_catalog_apply_duration_seconds", "path", "leader", "result", "ok") - s0.get("artmesh_catalog_apply_duration_seconds", "path", "leader", "result", "ok"); got < 1 {
		t.Errorf("catalog apply latencies observed %v, want at least 1", got)
	}
	if got := s1.get("artmesh_catalog_applied_index") - s0.get("artmesh_catalog_applied_index"); got < 1 {
		t.Errorf("applied index moved %v, want at least 1", got)
	}
	if s1.get("artmesh_catalog_commit_index") < s1.get("artmesh_catalog_applied_index") {
		t.Errorf("commit index %v below applied index %v", s1.get("artmesh_catalog_commit_index"), s1.get("artmesh_catalog_applied_index"))
	}
	// The block store's counts are cached up to 5 s between scrapes.
	var s1b promScrape
	waitFor(t, 10*time.Second, "the block store's bytes count the new artifact", func() bool {
		s1b = scrapeMetrics(t, d)
		return s1b.get("artmesh_blockstore_bytes")-s0.get("artmesh_blockstore_bytes") >= size
	})
	if got := s1b.get("artmesh_blockstore_blocks") - s0.get("artmesh_blockstore_blocks"); got < 2 {
		t.Errorf("blocks moved %v, want several", got)
	}
	if s1b.get("artmesh_blockstore_packs") < 1 {
		t.Errorf("packs %v, want at least 1", s1b.get("artmesh_blockstore_packs"))
	}

	resp := d.do(t, d.key, "GET", "/v1/artifacts/"+a.ID+"/content", nil)
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != size {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, n)
	}
	var u signedURL
	d.call(t, "POST", "/v1/artifacts/"+a.ID+"/signed-url", nil, 201, &u)
	capResp, err := http.Get(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, _ = io.Copy(io.Discard, capResp.Body)
	capResp.Body.Close()
	if capResp.StatusCode != 200 || n != size {
		t.Fatalf("signed URL download: %d, %d bytes", capResp.StatusCode, n)
	}
	code, refusal := d.status(t, "", "GET", "/v1/cap/not-a-token", nil)
	if code != 401 {
		t.Fatalf("a malformed token: %d, want 401", code)
	}
	s2 := scrapeMetrics(t, d)
	if got := s2.get("artmesh_http_requests_total", "route", contentRoute, "code", "200") - s1.get("artmesh_http_requests_total", "route", contentRoute, "code", "200"); got != 1 {
		t.Errorf("downloads with 200 counted %v, want 1", got)
	}
	if got := s2.get("artmesh_http_response_bytes_total", "route", contentRoute) - s1.get("artmesh_http_response_bytes_total", "route", contentRoute); got != size {
		t.Errorf("bytes out on the content route moved %v, want %d", got, size)
	}
	if got := s2.get("artmesh_http_response_bytes_total", "route", "GET /v1/cap/{token}") - s1.get("artmesh_http_response_bytes_total", "route", "GET /v1/cap/{token}"); got != float64(size+len(refusal)) {
		t.Errorf("bytes out on the capability route moved %v, want %d (the content and the 401's body)", got, size+len(refusal))
	}
	if got := s2.get("artmesh_tokens_verified_total", "action", "read") - s1.get("artmesh_tokens_verified_total", "action", "read"); got != 1 {
		t.Errorf("read tokens verified moved %v, want 1", got)
	}
	if got := s2.get("artmesh_tokens_refused_total", "reason", "unauthenticated") - s1.get("artmesh_tokens_refused_total", "reason", "unauthenticated"); got != 1 {
		t.Errorf("tokens refused as unauthenticated moved %v, want 1", got)
	}

	d.call(t, "DELETE", "/v1/artifacts/"+a.ID, nil, 204, nil)
	d.call(t, "POST", "/v1/repo/gc", nil, 200, nil)
	s3 := scrapeMetrics(t, d)
	if got := s3.get("artmesh_gc_runs_total", "result", "ok") - s2.get("artmesh_gc_runs_total", "result", "ok"); got < 1 {
		t.Errorf("collections moved %v, want at least 1", got)
	}
	if got := s3.get("artmesh_gc_removed_blocks_total") - s2.get("artmesh_gc_removed_blocks_total"); got < 2 {
		t.Errorf("blocks removed moved %v, want the artifact's blocks", got)
	}
	if got := s3.get("artmesh_gc_removed_bytes_total") - s2.get("artmesh_gc_removed_bytes_total"); got < size {
		t.Errorf("bytes removed moved %v, want at least %d", got, size)
	}
	if got := s3.get("artmesh_gc_duration_seconds") - s2.get("artmesh_gc_duration_seconds"); got < 1 {
		t.Errorf("collection durations observed %v, want at least 1", got)
	}
	if got := s3.get("artmesh_http_requests_total", "route", "POST /v1/repo/gc", "code", "200") - s2.get("artmesh_http_requests_total", "route", "POST /v1/repo/gc", "code", "200"); got != 1 {
		t.Errorf("gc requests counted %v, want 1", got)
	}
	// No series is labelled with an id or a token.
	for name, f := range s3 {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v := lp.GetValue(); strings.Contains(v, a.ID) || strings.Contains(v, u.Token) || strings.Contains(v, "not-a-token") {
					t.Errorf("%s has the label %s=%q", name, lp.GetName(), v)
				}
			}
		}
	}

	// The access log: JSON lines at info, no key, no token.
	logs := d.logs()
	for _, secret := range []string{d.key, u.Token} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the daemon's log holds a secret:\n%s", logs)
		}
	}
	var creates, caps int
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON (--log-format json): %q", line)
		}
		if m["msg"] != "http" || m["level"] != "INFO" {
			continue
		}
		switch m["route"] {
		case createRoute:
			if m["status"] == float64(201) && m["bytes_in"] == float64(size) && m["agent"] == "admin" {
				creates++
			}
		case "GET /v1/cap/{token}":
			if m["path"] == "/v1/cap/REDACTED" {
				caps++
			}
		}
	}
	if creates != 1 || caps != 2 {
		t.Errorf("access lines: %d creates (want 1), %d capability reads with the token redacted (want 2):\n%s", creates, caps, logs)
	}
}
